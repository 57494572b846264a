//! `tftpd_build_info`: the version, and the I/O path in use. The path is one value made
//! from the `[performance]` keys and what the kernel was probed to support at start
//! ([`crate::fastpath::support`]), and handed to [`super::Metrics::set_io_path`]: at start,
//! and again when SIGHUP swaps in a config (the fast-path switches apply to new transfers on
//! reload), so the label follows what new transfers use. The page never works it out itself.

use std::sync::Arc;

use tokio::sync::watch;

use super::Metrics;
use crate::config::PerformanceConfig;
use crate::fastpath::Support;
use crate::server::runtime::Runtime;

/// Build information (gauge, always 1).
pub const BUILD_INFO: &str = "tftpd_build_info";

/// The fast paths in use. Each is on when its key asks for it and the kernel has it, the
/// same condition the code that uses it applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoPath {
    /// Listeners read requests with `recvmmsg` (`performance.batching.recv_batch` ≥ 2).
    pub recvmmsg: bool,
    /// Transfer sockets on the runtime read with `recvmmsg`
    /// (`performance.batching.transfer_recvmmsg`).
    pub transfer_recvmmsg: bool,
    /// Windows go out as one UDP GSO send (`performance.batching.gso`).
    pub gso: bool,
    /// Few transfers run on threads of their own with blocking sockets
    /// (`performance.cpu.transfer_threads` > 0).
    pub transfer_threads: bool,
}

impl IoPath {
    /// What start-up turns on with `perf` on a kernel that supports `support`.
    pub fn chosen(perf: &PerformanceConfig, support: Support) -> Self {
        Self {
            recvmmsg: perf.batching.listener_recvmmsg() && support.recvmmsg,
            transfer_recvmmsg: perf.batching.transfer_recvmmsg && support.recvmmsg,
            gso: perf.batching.gso && support.gso,
            transfer_threads: perf.cpu.transfer_threads > 0,
        }
    }

    /// The `io_path` label: the fast paths in use joined by `+`, in a fixed order, or
    /// `portable` when none is (tokio sockets and `pread`, the path every platform has).
    pub fn label(self) -> String {
        let parts: Vec<&str> = [
            (self.recvmmsg, "recvmmsg"),
            (self.transfer_recvmmsg, "transfer_recvmmsg"),
            (self.gso, "gso"),
            (self.transfer_threads, "transfer_threads"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        if parts.is_empty() {
            "portable".to_string()
        } else {
            parts.join("+")
        }
    }
}

/// Sets the I/O path of the config in force now and after every reload, until the sender
/// (the daemon's reload handler) goes away.
pub async fn follow(metrics: Arc<Metrics>, mut config: watch::Receiver<Arc<Runtime>>) {
    loop {
        let path = IoPath::chosen(
            &config.borrow_and_update().config.performance,
            crate::fastpath::support(),
        );
        metrics.set_io_path(path);
        if config.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Support = Support {
        gso: true,
        recvmmsg: true,
        fadvise: true,
    };

    #[test]
    fn a_path_is_in_use_only_when_asked_for_and_supported() {
        let mut perf = PerformanceConfig::default();
        perf.batching.gso = true;
        perf.batching.recv_batch = 2;
        perf.batching.transfer_recvmmsg = false;
        perf.cpu.transfer_threads = 0;
        assert_eq!(
            IoPath::chosen(&perf, ALL).label(),
            "recvmmsg+gso",
            "asked for and supported"
        );
        let no_gso = Support { gso: false, ..ALL };
        assert_eq!(
            IoPath::chosen(&perf, no_gso).label(),
            "recvmmsg",
            "asked for, but the kernel has no GSO"
        );
        let none = Support {
            gso: false,
            recvmmsg: false,
            fadvise: false,
        };
        assert_eq!(IoPath::chosen(&perf, none).label(), "portable");
        perf.batching.recv_batch = 1;
        assert_eq!(
            IoPath::chosen(&perf, no_gso).label(),
            "portable",
            "recv_batch = 1 reads one datagram a call: no recvmmsg"
        );
        perf.batching.recv_batch = 32;
        perf.batching.transfer_recvmmsg = true;
        perf.cpu.transfer_threads = 16;
        assert_eq!(
            IoPath::chosen(&perf, ALL).label(),
            "recvmmsg+transfer_recvmmsg+gso+transfer_threads"
        );
        assert_eq!(IoPath::default().label(), "portable");
    }
}
