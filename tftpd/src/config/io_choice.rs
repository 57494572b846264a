//! `performance.io`: the one switch between the platform's datagram fast paths and the
//! portable path. `"auto"` (the default) uses each fast path its own key turns on (the
//! defaults are the ones that measured as wins); `"portable"` turns every one of them off in
//! one line, which is what an operator wants when asking "is it a fast path?": every
//! transfer on the async runtime through tokio's socket, one datagram per send and per
//! receive, on every platform the same.

use serde::Deserialize;

use super::PerformanceConfig;

/// `performance.io`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IoChoice {
    /// Each fast path as its key says.
    #[default]
    Auto,
    /// No platform fast path: the keys below are turned off whatever they say.
    Portable,
}

impl IoChoice {
    /// The value as written in the file.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Portable => "portable",
        }
    }
}

/// The fast-path keys `"portable"` turns off, as the start-up line names them (`recv_batch`
/// is set to 1: one datagram per receive call, no `recvmmsg`).
pub const PORTABLE_TURNS_OFF: [&str; 5] = [
    "performance.batching.gso",
    "performance.batching.recv_batch = 1",
    "performance.batching.transfer_recvmmsg",
    "performance.cpu.transfer_threads",
    "performance.memory.huge_pages",
];

impl PerformanceConfig {
    /// Applies `performance.io` to the keys it decides (called once, right after parsing, so
    /// everything that reads the config sees the paths really in use).
    pub(super) fn apply_io(&mut self) {
        if self.io == IoChoice::Portable {
            self.batching.gso = false;
            self.batching.recv_batch = 1;
            self.batching.transfer_recvmmsg = false;
            self.cpu.transfer_threads = 0;
            self.memory.huge_pages = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    #[test]
    fn portable_turns_every_datagram_fast_path_off_and_auto_leaves_the_keys_alone() {
        let on = "[performance.batching]\ngso = true\nrecv_batch = 64\ntransfer_recvmmsg = true\n\
                  [performance.cpu]\ntransfer_threads = 8\n[performance.memory]\nhuge_pages = true\n";
        let auto = Config::from_toml_str(on, None).expect("valid");
        let p = &auto.performance;
        assert_eq!(p.io, IoChoice::Auto, "the default");
        assert!(p.batching.gso && p.batching.listener_recvmmsg() && p.batching.transfer_recvmmsg);
        assert_eq!(p.batching.recv_batch, 64);
        assert_eq!(p.cpu.transfer_threads, 8);
        assert!(p.memory.huge_pages);
        let portable =
            Config::from_toml_str(&format!("[performance]\nio = \"portable\"\n{on}"), None)
                .expect("valid");
        let p = &portable.performance;
        assert!(!p.batching.gso && !p.batching.transfer_recvmmsg);
        assert_eq!(
            p.batching.recv_batch, 1,
            "one datagram per receive: no recvmmsg"
        );
        assert!(!p.batching.listener_recvmmsg());
        assert_eq!(p.cpu.transfer_threads, 0);
        assert!(!p.memory.huge_pages);
        assert_eq!(
            crate::metrics::build_info::IoPath::chosen(p, crate::fastpath::support()).label(),
            "portable",
            "the build_info label says so"
        );
    }

    #[test]
    fn a_bad_value_names_the_key_and_the_choices() {
        let e = Config::from_toml_str("[performance]\nio = \"uring\"\n", None)
            .expect_err("not a choice");
        let text = e.to_string();
        assert!(
            text.contains("performance.io") && text.contains("auto") && text.contains("portable"),
            "{text}"
        );
    }
}
