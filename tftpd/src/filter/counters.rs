//! Filter counters by reason, and their rendering as `tftpd_filter_packets_total` and
//! `tftpd_filter_bytes_total` with the labels `path`, `verdict` and `reason`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use tftp_ebpf_common::{Counter, Reason};

/// Datagrams seen by the filters, by path, verdict and reason (counter).
pub const FILTER_PACKETS_TOTAL: &str = "tftpd_filter_packets_total";
/// Payload bytes seen by the filters, by path, verdict and reason (counter).
pub const FILTER_BYTES_TOTAL: &str = "tftpd_filter_bytes_total";

/// Where a filter ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// In the daemon, after the kernel delivered the datagram.
    Userspace,
}

impl Path {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::Userspace => "userspace",
        }
    }
}

const REASONS: usize = Reason::COUNT as usize;

/// Counters indexed by reason.
#[derive(Debug, Default)]
pub struct FilterCounters {
    packets: [AtomicU64; REASONS],
    bytes: [AtomicU64; REASONS],
}

impl FilterCounters {
    /// Counts one datagram of `bytes` bytes.
    pub fn record(&self, reason: Reason, bytes: u64) {
        let i = reason.index() as usize;
        self.packets[i].fetch_add(1, Relaxed);
        self.bytes[i].fetch_add(bytes, Relaxed);
    }

    /// The counter for `reason`.
    pub fn get(&self, reason: Reason) -> Counter {
        let i = reason.index() as usize;
        Counter {
            packets: self.packets[i].load(Relaxed),
            bytes: self.bytes[i].load(Relaxed),
        }
    }

    /// Appends the Prometheus lines for these counters under `path`.
    pub fn render(&self, path: Path, out: &mut String) {
        for (name, help, bytes) in [
            (
                FILTER_PACKETS_TOTAL,
                "Datagrams seen by the packet filters.",
                false,
            ),
            (
                FILTER_BYTES_TOTAL,
                "Payload bytes seen by the packet filters.",
                true,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for reason in Reason::ALL {
                let c = self.get(reason);
                let verdict = if reason == Reason::Passed {
                    "pass"
                } else {
                    "drop"
                };
                let _ = writeln!(
                    out,
                    "{name}{{path=\"{}\",verdict=\"{verdict}\",reason=\"{}\"}} {}",
                    path.label(),
                    reason.label(),
                    if bytes { c.bytes } else { c.packets }
                );
            }
        }
    }
}
