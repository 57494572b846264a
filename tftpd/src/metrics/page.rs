//! The page: every family of [`Metrics`] in the Prometheus text format (0.0.4), in a fixed
//! order, one `# HELP`/`# TYPE` head per family and a series for every label value from the
//! start. Reading the kernel's and the filters' counters happens here, at scrape time.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use super::*;
use crate::filter::{Breakdown, Path as FilterPath};

impl Metrics {
    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let head = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        head(&mut out, BUILD_INFO, "gauge", "Build information.");
        let _ = writeln!(
            out,
            "{BUILD_INFO}{{version=\"{}\",io_path=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION"),
            self.io_path
                .lock()
                .map_or_else(|e| *e.into_inner(), |p| *p)
                .label()
        );
        head(
            &mut out,
            REQUESTS_TOTAL,
            "counter",
            "Requests by kind and outcome.",
        );
        for (k, kind) in Kind::ALL.iter().enumerate() {
            for (o, outcome) in RequestOutcome::ALL.iter().enumerate() {
                let v = self.requests[k][o].load(Relaxed);
                let _ = writeln!(
                    out,
                    "{REQUESTS_TOTAL}{{kind=\"{}\",outcome=\"{}\"}} {v}",
                    kind.label(),
                    outcome.label()
                );
            }
        }
        for (name, help, v) in [
            (
                SENT_BYTES_TOTAL,
                "DATA payload bytes sent and acknowledged.",
                &self.sent_bytes,
            ),
            (
                RECEIVED_BYTES_TOTAL,
                "DATA payload bytes received in order.",
                &self.received_bytes,
            ),
            (
                RETRANSMITS_TOTAL,
                "Datagrams sent again after a timeout or go-back-N.",
                &self.retransmits,
            ),
        ] {
            head(&mut out, name, "counter", help);
            let _ = writeln!(out, "{name} {}", v.load(Relaxed));
        }
        head(
            &mut out,
            ACTIVE_TRANSFERS,
            "gauge",
            "Transfers running now.",
        );
        let _ = writeln!(out, "{ACTIVE_TRANSFERS} {}", self.active());
        head(
            &mut out,
            UPLOAD_BYTES_IN_FLIGHT,
            "gauge",
            "Bytes running uploads have written and not yet committed (uploads.max_in_flight).",
        );
        let _ = writeln!(
            out,
            "{UPLOAD_BYTES_IN_FLIGHT} {}",
            crate::fs::PROCESS_IN_FLIGHT.bytes()
        );
        self.admission.render(&mut out);
        head(
            &mut out,
            ERRORS_SENT_TOTAL,
            "counter",
            "ERROR packets sent, by code.",
        );
        for (i, v) in self.errors_sent.iter().enumerate() {
            let code = if i < ERROR_CODES {
                i.to_string()
            } else {
                "other".to_string()
            };
            let _ = writeln!(
                out,
                "{ERRORS_SENT_TOTAL}{{code=\"{code}\"}} {}",
                v.load(Relaxed)
            );
        }
        head(
            &mut out,
            DROPPED_PACKETS_TOTAL,
            "counter",
            "Datagrams that passed the filter but were dropped by a transfer, by reason.",
        );
        for (d, reason) in DropReason::ALL.iter().enumerate() {
            let _ = writeln!(
                out,
                "{DROPPED_PACKETS_TOTAL}{{reason=\"{}\"}} {}",
                reason.label(),
                self.dropped[d].load(Relaxed)
            );
        }
        let mut paths = vec![(
            FilterPath::Userspace,
            Breakdown::ByReason(self.filter_userspace.totals()),
        )];
        if let Some(f) = self.kernel_filter.get() {
            match f.counts() {
                Ok(b) => paths.push((f.path(), b)),
                Err(e) => tracing::warn!(error = %e, "reading the kernel filter's counters failed"),
            }
        }
        if let Some(x) = self.xdp.get() {
            match x.totals() {
                Ok(t) => paths.push((FilterPath::Xdp, Breakdown::ByReason(t))),
                Err(e) => tracing::warn!(error = %e, "reading the XDP counters failed"),
            }
        }
        crate::filter::counters::render(&paths, &mut out);
        head(
            &mut out,
            SEND_CALLS_TOTAL,
            "counter",
            "Send system calls of transfers, by method (gso: one call for a window of DATA; single: one datagram).",
        );
        for (i, method) in ["gso", "single"].iter().enumerate() {
            let _ = writeln!(
                out,
                "{SEND_CALLS_TOTAL}{{method=\"{method}\"}} {}",
                self.send_calls[i].load(Relaxed)
            );
        }
        head(
            &mut out,
            TRANSFERS_STARTED_TOTAL,
            "counter",
            "Transfers started, by lane: thread (a thread of its own, blocking socket calls; performance.cpu.transfer_threads) or async (the shared runtime).",
        );
        for (i, lane) in ["thread", "async"].iter().enumerate() {
            let _ = writeln!(
                out,
                "{TRANSFERS_STARTED_TOTAL}{{lane=\"{lane}\"}} {}",
                self.transfers_started[i].load(Relaxed)
            );
        }
        head(
            &mut out,
            DATAGRAMS_SENT_TOTAL,
            "counter",
            "Datagrams transfers handed to the kernel.",
        );
        let _ = writeln!(
            out,
            "{DATAGRAMS_SENT_TOTAL} {}",
            self.datagrams_sent.load(Relaxed)
        );
        head(
            &mut out,
            LISTENER_RECEIVE_CALLS_TOTAL,
            "counter",
            "Receive system calls on the listening sockets, by method (recvmmsg: a batch).",
        );
        for (i, method) in ["recvmmsg", "single"].iter().enumerate() {
            let _ = writeln!(
                out,
                "{LISTENER_RECEIVE_CALLS_TOTAL}{{method=\"{method}\"}} {}",
                self.receive_calls[i].load(Relaxed)
            );
        }
        head(
            &mut out,
            LISTENER_DATAGRAMS_TOTAL,
            "counter",
            "Datagrams the listening sockets received.",
        );
        let _ = writeln!(
            out,
            "{LISTENER_DATAGRAMS_TOTAL} {}",
            self.listener_datagrams.load(Relaxed)
        );
        head(
            &mut out,
            LISTENER_PINNED_DATAGRAMS_TOTAL,
            "counter",
            "Datagrams taken by listener threads pinned to a CPU (performance.cpu.affinity), by that CPU: how the kernel spreads requests over the pinned workers.",
        );
        for (cpu, c) in self
            .pinned_workers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "{LISTENER_PINNED_DATAGRAMS_TOTAL}{{cpu=\"{cpu}\"}} {}",
                c.load(Relaxed)
            );
        }
        let cache = self.file_cache.get().map(|c| c.counts());
        head(
            &mut out,
            FILE_CACHE_LOOKUPS_TOTAL,
            "counter",
            "Hot-file cache lookups of files it may hold, by result.",
        );
        for (result, v) in [
            ("hit", cache.map_or(0, |c| c.hits)),
            ("miss", cache.map_or(0, |c| c.misses)),
        ] {
            let _ = writeln!(out, "{FILE_CACHE_LOOKUPS_TOTAL}{{result=\"{result}\"}} {v}");
        }
        head(
            &mut out,
            FILE_CACHE_BYTES,
            "gauge",
            "Bytes of file contents the hot-file cache holds.",
        );
        let _ = writeln!(out, "{FILE_CACHE_BYTES} {}", cache.map_or(0, |c| c.bytes));
        head(
            &mut out,
            LOG_LINES_DROPPED_TOTAL,
            "counter",
            "Log lines dropped because stderr was not read as fast as they were written.",
        );
        let _ = writeln!(
            out,
            "{LOG_LINES_DROPPED_TOTAL} {}",
            crate::logging::dropped_lines()
        );
        self.endpoint.render(&mut out);
        process::render(&mut out);
        if cfg!(target_os = "linux") {
            kernel::render(
                self.listeners.get().map_or(&[][..], Vec::as_slice),
                &mut out,
            );
        }
        head(
            &mut out,
            TRANSFER_DURATION_SECONDS,
            "histogram",
            "Duration of finished transfers.",
        );
        for (k, kind) in Kind::ALL.iter().enumerate() {
            let h = &self.durations[k];
            let kind = kind.label();
            for (i, bound) in DURATION_BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{TRANSFER_DURATION_SECONDS}_bucket{{kind=\"{kind}\",le=\"{bound}\"}} {}",
                    h.buckets[i].load(Relaxed)
                );
            }
            let count = h.count.load(Relaxed);
            let sum = h.sum_micros.load(Relaxed) as f64 / 1e6;
            let _ = writeln!(
                out,
                "{TRANSFER_DURATION_SECONDS}_bucket{{kind=\"{kind}\",le=\"+Inf\"}} {count}\n\
                 {TRANSFER_DURATION_SECONDS}_sum{{kind=\"{kind}\"}} {sum}\n\
                 {TRANSFER_DURATION_SECONDS}_count{{kind=\"{kind}\"}} {count}"
            );
        }
        out
    }
}
