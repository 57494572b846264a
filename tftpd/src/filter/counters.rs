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
    /// The eBPF socket filters.
    Socket,
    /// The classic BPF socket filters.
    Cbpf,
    /// The XDP program on the interfaces.
    Xdp,
}

impl Path {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::Userspace => "userspace",
            Self::Socket => "socket",
            Self::Cbpf => "cbpf",
            Self::Xdp => "xdp",
        }
    }

    /// The reasons this path can give: only XDP sees sources, fragments and a clock.
    pub fn reasons(self) -> &'static [Reason] {
        match self {
            Self::Xdp => &Reason::ALL,
            Self::Userspace | Self::Socket | Self::Cbpf => Reason::SOCKET,
        }
    }
}

const REASONS: usize = Reason::COUNT as usize;

/// One counter per reason, indexed by `Reason::index`.
pub type Totals = [Counter; REASONS];

/// The label of drops whose reason the filter could not record (classic BPF).
pub const UNCLASSIFIED: &str = "unclassified";

/// What one path knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "a few per scrape, on the stack: a box would cost more than the bytes"
)]
pub enum Breakdown {
    /// Every verdict by reason, with bytes.
    ByReason(Totals),
    /// Passes (with bytes) and a drop count without reason or bytes.
    Unclassified {
        /// What passed.
        passed: Counter,
        /// Datagrams dropped.
        dropped: u64,
    },
}

/// Appends both filter metric families, each as one group (the text format requires a
/// family's lines to be contiguous), with one series per path, verdict and reason.
pub fn render(paths: &[(Path, Breakdown)], out: &mut String) {
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
        let mut series = |path: Path, verdict: &str, reason: &str, value: u64| {
            let _ = writeln!(
                out,
                "{name}{{path=\"{}\",verdict=\"{verdict}\",reason=\"{reason}\"}} {value}",
                path.label()
            );
        };
        for (path, breakdown) in paths {
            match breakdown {
                Breakdown::ByReason(totals) => {
                    for &reason in path.reasons() {
                        let c = totals[reason.index() as usize];
                        let verdict = if reason.passes() { "pass" } else { "drop" };
                        let v = if bytes { c.bytes } else { c.packets };
                        series(*path, verdict, reason.label(), v);
                    }
                }
                Breakdown::Unclassified { passed, dropped } => {
                    if bytes {
                        series(*path, "pass", Reason::Passed.label(), passed.bytes);
                    } else {
                        series(*path, "pass", Reason::Passed.label(), passed.packets);
                        series(*path, "drop", UNCLASSIFIED, *dropped);
                    }
                }
            }
        }
    }
}

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

    /// A snapshot of every reason's counter.
    pub fn totals(&self) -> Totals {
        Reason::ALL.map(|r| self.get(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_family_is_one_contiguous_group_across_paths() {
        let user = FilterCounters::default();
        user.record(Reason::BadOpcode, 9);
        let mut kernel = user.totals();
        kernel[Reason::TooShort.index() as usize] = Counter {
            packets: 3,
            bytes: 3,
        };
        let mut out = String::new();
        render(
            &[
                (Path::Userspace, Breakdown::ByReason(user.totals())),
                (Path::Socket, Breakdown::ByReason(kernel)),
                (
                    Path::Cbpf,
                    Breakdown::Unclassified {
                        passed: Counter {
                            packets: 4,
                            bytes: 40,
                        },
                        dropped: 7,
                    },
                ),
            ],
            &mut out,
        );
        for name in [FILTER_PACKETS_TOTAL, FILTER_BYTES_TOTAL] {
            let lines: Vec<usize> = out
                .lines()
                .enumerate()
                .filter(|(_, l)| l.starts_with(&format!("{name}{{")))
                .map(|(i, _)| i)
                .collect();
            let cbpf = if name == FILTER_PACKETS_TOTAL { 2 } else { 1 };
            assert_eq!(
                lines.len(),
                2 * Reason::SOCKET.len() + cbpf,
                "{name}: a series per path and reason, and cbpf's pass and unclassified drop"
            );
            assert!(
                lines.windows(2).all(|w| w[1] == w[0] + 1),
                "{name}: the family's lines must be contiguous"
            );
            assert_eq!(
                out.matches(&format!("# TYPE {name} ")).count(),
                1,
                "{name}: one TYPE line"
            );
        }
        assert!(out.contains(
            "tftpd_filter_packets_total{path=\"socket\",verdict=\"drop\",reason=\"too_short\"} 3"
        ));
        assert!(out.contains(
            "tftpd_filter_bytes_total{path=\"userspace\",verdict=\"drop\",reason=\"bad_opcode\"} 9"
        ));
        assert!(out.contains(
            "tftpd_filter_packets_total{path=\"cbpf\",verdict=\"drop\",reason=\"unclassified\"} 7"
        ));
        assert!(out.contains(
            "tftpd_filter_bytes_total{path=\"cbpf\",verdict=\"pass\",reason=\"passed\"} 40"
        ));
        assert!(
            !out.contains("tftpd_filter_bytes_total{path=\"cbpf\",verdict=\"drop\""),
            "classic BPF drops have no byte count, so no series pretends one"
        );
    }
}
