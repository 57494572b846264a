//! What `tftpd stats` found, and its two renderings: tables for a terminal (rows that are
//! not zero, so the answer fits a screen) and JSON for scripts (every row, zeros included).

use std::fmt::Write as _;
use std::net::SocketAddr;

use serde::Serialize;

use super::pinned::Pinned;
use super::scrape::Sample;
use crate::filter::counters::{FILTER_BYTES_TOTAL, FILTER_PACKETS_TOTAL};
use crate::metrics::{ACTIVE_TRANSFERS, BUILD_INFO, REQUESTS_TOTAL};

/// Everything found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// From the daemon's `/metrics`; `None` when it is off or did not answer.
    pub daemon: Option<DaemonCounts>,
    /// From the pinned maps; `None` when nothing is pinned.
    pub pinned: Option<Pinned>,
    /// What is missing, and which key would give it.
    pub notes: Vec<String>,
}

/// What the daemon's page says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DaemonCounts {
    /// The page read.
    pub url: String,
    /// `tftpd_build_info{version}`.
    pub version: String,
    /// `tftpd_build_info{io_path}`.
    pub io_path: String,
    /// `tftpd_active_transfers`.
    pub active_transfers: i64,
    /// `tftpd_requests_total`, every kind and outcome.
    pub requests: Vec<RequestCount>,
    /// `tftpd_filter_packets_total` and `_bytes_total`, every path, verdict and reason.
    pub filter: Vec<FilterCount>,
}

/// Requests of one kind that ended one way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestCount {
    /// `read` or `write`.
    pub kind: String,
    /// The outcome label.
    pub outcome: String,
    /// How many.
    pub count: u64,
}

/// One filter series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FilterCount {
    /// `userspace`, `socket`, `cbpf` or `xdp`.
    pub path: String,
    /// `pass` or `drop`.
    pub verdict: String,
    /// The reason label.
    pub reason: String,
    /// Datagrams.
    pub packets: u64,
    /// Payload bytes (`None` where the path has none: classic BPF's drops).
    pub bytes: Option<u64>,
}

impl DaemonCounts {
    /// The counts on a parsed page read from `addr`.
    pub fn from_samples(addr: SocketAddr, samples: &[Sample]) -> Self {
        let named = |name: &'static str| samples.iter().filter(move |s| s.name == name);
        let info = named(BUILD_INFO).next();
        // Counters are whole numbers; the text format writes them as floats.
        let count = |v: f64| v.max(0.0) as u64;
        let filter = named(FILTER_PACKETS_TOTAL)
            .map(|s| {
                let key = |x: &Sample| {
                    ["path", "verdict", "reason"]
                        .iter()
                        .all(|k| x.label(k) == s.label(k))
                };
                FilterCount {
                    path: s.label("path").to_string(),
                    verdict: s.label("verdict").to_string(),
                    reason: s.label("reason").to_string(),
                    packets: count(s.value),
                    bytes: named(FILTER_BYTES_TOTAL)
                        .find(|b| key(b))
                        .map(|b| count(b.value)),
                }
            })
            .collect();
        Self {
            url: format!("http://{addr}/metrics"),
            version: info
                .map(|s| s.label("version").to_string())
                .unwrap_or_default(),
            io_path: info
                .map(|s| s.label("io_path").to_string())
                .unwrap_or_default(),
            active_transfers: named(ACTIVE_TRANSFERS).next().map_or(0, |s| s.value as i64),
            requests: named(REQUESTS_TOTAL)
                .map(|s| RequestCount {
                    kind: s.label("kind").to_string(),
                    outcome: s.label("outcome").to_string(),
                    count: count(s.value),
                })
                .collect(),
            filter,
        }
    }
}

impl Report {
    /// One pretty-printed JSON object and a newline.
    pub fn json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_else(|e| {
            // Only a map with non-string keys can fail, and the report has none.
            format!("{{\"error\":\"{e}\"}}")
        });
        s.push('\n');
        s
    }

    /// Tables for a terminal.
    pub fn table(&self) -> String {
        let mut out = String::new();
        if let Some(d) = &self.daemon {
            let _ = writeln!(
                out,
                "tftpd {} at {} (io_path {})\nactive transfers: {}\n",
                d.version, d.url, d.io_path, d.active_transfers
            );
            let total: u64 = d.requests.iter().map(|r| r.count).sum();
            let _ = writeln!(
                out,
                "requests ({total} in all)\n{:<6} {:<15} {:>12}",
                "kind", "outcome", "count"
            );
            let mut any = false;
            for r in d.requests.iter().filter(|r| r.count > 0) {
                any = true;
                let _ = writeln!(out, "{:<6} {:<15} {:>12}", r.kind, r.outcome, r.count);
            }
            if !any {
                out.push_str("(none yet)\n");
            }
            let _ = writeln!(
                out,
                "\npacket filter\n{:<9} {:<8} {:<23} {:>12} {:>14}",
                "path", "verdict", "reason", "packets", "bytes"
            );
            let mut any = false;
            for f in d.filter.iter().filter(|f| f.packets > 0) {
                any = true;
                let bytes = f.bytes.map_or_else(|| "-".to_string(), |b| b.to_string());
                let _ = writeln!(
                    out,
                    "{:<9} {:<8} {:<23} {:>12} {:>14}",
                    f.path, f.verdict, f.reason, f.packets, bytes
                );
            }
            if !any {
                out.push_str("(no datagram seen yet)\n");
            }
        }
        if let Some(p) = &self.pinned {
            if self.daemon.is_some() {
                out.push('\n');
            }
            let holder = p.holder_pid.map_or_else(
                || "held by no running tftpd".to_string(),
                |pid| format!("held by pid {pid}"),
            );
            let _ = writeln!(
                out,
                "eBPF filter counters pinned at {} ({holder}), summed over CPUs\n{:<9} {:<8} {:<23} {:>12} {:>14}",
                p.dir.display(),
                "socket",
                "verdict",
                "reason",
                "packets",
                "bytes"
            );
            for r in &p.rows {
                let _ = writeln!(
                    out,
                    "{:<9} {:<8} {:<23} {:>12} {:>14}",
                    r.socket, r.verdict, r.reason, r.packets, r.bytes
                );
            }
        }
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Kind, Metrics, RequestOutcome};

    fn report_of(m: &Metrics) -> Report {
        let samples = super::super::scrape::parse(&m.render());
        Report {
            daemon: Some(DaemonCounts::from_samples(
                "127.0.0.1:9169".parse().expect("an address"),
                &samples,
            )),
            pinned: None,
            notes: vec!["a note".into()],
        }
    }

    #[test]
    fn the_table_shows_what_happened_and_leaves_out_zeros() {
        let m = Metrics::default();
        m.request(Kind::Read, RequestOutcome::Completed);
        m.request(Kind::Read, RequestOutcome::Completed);
        m.request(Kind::Write, RequestOutcome::Denied);
        m.filter_userspace
            .record(tftp_ebpf_common::Reason::BadOpcode, 9);
        let _running = m.transfer_started();
        let table = report_of(&m).table();
        for line in [
            "active transfers: 1",
            "requests (3 in all)",
            "read   completed                  2",
            "write  denied                     1",
            "userspace drop     bad_opcode                         1              9",
            "note: a note",
        ] {
            assert!(table.lines().any(|l| l == line), "{line:?} in:\n{table}");
        }
        assert!(
            !table.contains("peer_error"),
            "zero rows are left out:\n{table}"
        );
    }

    #[test]
    fn the_json_has_every_series_zeros_included() {
        let m = Metrics::default();
        m.request(Kind::Read, RequestOutcome::SizeProbe);
        let v: serde_json::Value = serde_json::from_str(&report_of(&m).json()).expect("valid JSON");
        let d = &v["daemon"];
        assert_eq!(d["active_transfers"], 0);
        assert_eq!(d["io_path"], "portable");
        let requests = d["requests"].as_array().expect("an array");
        assert_eq!(requests.len(), 2 * 14, "every kind and outcome");
        assert!(
            requests
                .iter()
                .any(|r| r["outcome"] == "size_probe" && r["count"] == 1)
        );
        assert!(
            d["filter"]
                .as_array()
                .expect("an array")
                .iter()
                .all(|f| f["path"] == "userspace" && f["bytes"].is_u64()),
            "{d}"
        );
        assert!(v["pinned"].is_null());
    }
}
