//! The daemon's metrics: names as constants, values as atomics, rendered in the Prometheus
//! text format by [`Metrics::render`] and served by [`http`]. Every label value comes from a
//! small closed set; client addresses and file names belong in logs, never in labels.

pub mod admission;
pub mod endpoint;
pub mod http;
pub mod kernel;
pub mod request;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use std::sync::{Arc, OnceLock};

use crate::filter::xdp::XdpFilter;
use crate::filter::{Breakdown, FilterCounters, KernelFilter, Path as FilterPath};
use crate::proto::ErrorCode;
pub use endpoint::METRICS_CONNECTIONS_TOTAL;

/// Requests by kind and outcome (counter).
pub const REQUESTS_TOTAL: &str = "tftpd_requests_total";
/// DATA payload bytes sent and acknowledged (counter).
pub const SENT_BYTES_TOTAL: &str = "tftpd_sent_bytes_total";
/// DATA payload bytes received in order (counter).
pub const RECEIVED_BYTES_TOTAL: &str = "tftpd_received_bytes_total";
/// Transfers running now (gauge).
pub const ACTIVE_TRANSFERS: &str = "tftpd_active_transfers";
/// Datagrams sent again after a timeout or a go-back-N restart (counter).
pub const RETRANSMITS_TOTAL: &str = "tftpd_retransmits_total";
/// ERROR packets sent, by code (counter).
pub const ERRORS_SENT_TOTAL: &str = "tftpd_errors_sent_total";
/// Datagrams that passed the filter but were dropped by a transfer, by reason (counter).
pub const DROPPED_PACKETS_TOTAL: &str = "tftpd_dropped_packets_total";
/// Duration of finished transfers, by kind (histogram).
pub const TRANSFER_DURATION_SECONDS: &str = "tftpd_transfer_duration_seconds";
/// Build information (gauge, always 1).
pub const BUILD_INFO: &str = "tftpd_build_info";
/// Send system calls by method (counter).
pub const SEND_CALLS_TOTAL: &str = "tftpd_send_calls_total";
/// Transfers started, by where they run: on a thread of their own, or on the async runtime
/// (counter).
pub const TRANSFERS_STARTED_TOTAL: &str = "tftpd_transfers_started_total";
/// Datagrams handed to the kernel by transfers (counter).
pub const DATAGRAMS_SENT_TOTAL: &str = "tftpd_datagrams_sent_total";
/// Receive system calls on the listening sockets, by method (counter).
pub const LISTENER_RECEIVE_CALLS_TOTAL: &str = "tftpd_listener_receive_calls_total";
/// Datagrams the listening sockets received (counter).
pub const LISTENER_DATAGRAMS_TOTAL: &str = "tftpd_listener_datagrams_total";
/// Datagrams taken by listener threads pinned to a CPU, by that CPU (counter).
pub const LISTENER_PINNED_DATAGRAMS_TOTAL: &str = "tftpd_listener_pinned_datagrams_total";
/// Hot-file cache lookups of files it may hold, by result: hit or miss (counter).
pub const FILE_CACHE_LOOKUPS_TOTAL: &str = "tftpd_file_cache_lookups_total";
/// Bytes of file contents the hot-file cache holds (gauge).
pub const FILE_CACHE_BYTES: &str = "tftpd_file_cache_bytes";
/// Bytes running uploads have written and not yet committed or discarded, the count
/// `uploads.max_in_flight` caps (gauge).
pub const UPLOAD_BYTES_IN_FLIGHT: &str = "tftpd_upload_bytes_in_flight";
/// Log lines dropped because stderr was not read as fast as they were written (counter).
pub const LOG_LINES_DROPPED_TOTAL: &str = "tftpd_log_lines_dropped_total";

/// What a request was: a download or an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// RRQ.
    Read,
    /// WRQ.
    Write,
}

impl Kind {
    const ALL: [Self; 2] = [Self::Read, Self::Write];
    fn label(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }
}

/// How a request ended, as counted in `tftpd_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    /// Every byte delivered.
    Completed,
    /// The client sent an ERROR.
    PeerError,
    /// The client stopped answering.
    TimedOut,
    /// We ended a running transfer (I/O error, shutdown, oversized block).
    Aborted,
    /// Refused before transfer: file not found.
    NotFound,
    /// Refused: path security, write policy, permissions.
    Denied,
    /// Refused: bad mode, bad options, too large.
    BadRequest,
    /// Refused: a concurrency limit was reached.
    Busy,
    /// A retransmitted request for a transfer already running; not started twice.
    Duplicate,
    /// From a client `[access]` does not serve; not answered.
    ClientRefused,
    /// The client never answered the first datagram (maybe a forged request); ended
    /// without an ERROR.
    Unanswered,
    /// Ended while half-open to make room for a newer request.
    Evicted,
    /// Held while every place was taken, and dropped when the queue was full or the wait
    /// too long; not answered (the client's retry comes back).
    Overloaded,
}

impl RequestOutcome {
    const ALL: [Self; 13] = [
        Self::Completed,
        Self::PeerError,
        Self::TimedOut,
        Self::Aborted,
        Self::NotFound,
        Self::Denied,
        Self::BadRequest,
        Self::Busy,
        Self::Duplicate,
        Self::ClientRefused,
        Self::Unanswered,
        Self::Evicted,
        Self::Overloaded,
    ];
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::PeerError => "peer_error",
            Self::TimedOut => "timed_out",
            Self::Aborted => "aborted",
            Self::NotFound => "not_found",
            Self::Denied => "denied",
            Self::BadRequest => "bad_request",
            Self::Busy => "busy",
            Self::Duplicate => "duplicate",
            Self::ClientRefused => "client_refused",
            Self::Unanswered => "unanswered",
            Self::Evicted => "evicted",
            Self::Overloaded => "overloaded",
        }
    }
}

/// Why a transfer dropped a datagram that passed the packet filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// From an address other than the transfer's client (answered with ERROR 5).
    UnknownTid,
    /// Ignored by the transfer: a duplicate, a stale ACK, or a packet out of place.
    Ignored,
}

impl DropReason {
    const ALL: [Self; 2] = [Self::UnknownTid, Self::Ignored];
    fn label(self) -> &'static str {
        match self {
            Self::UnknownTid => "unknown_tid",
            Self::Ignored => "ignored",
        }
    }
}

/// Upper bounds of the transfer duration histogram, in seconds.
const DURATION_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0, 1800.0,
];

/// Error codes we send get their own series; anything else is counted under "other".
const ERROR_CODES: usize = 9;

#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; DURATION_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

/// All of the daemon's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: [[AtomicU64; RequestOutcome::ALL.len()]; 2],
    sent_bytes: AtomicU64,
    received_bytes: AtomicU64,
    active: AtomicI64,
    retransmits: AtomicU64,
    errors_sent: [AtomicU64; ERROR_CODES + 1],
    dropped: [AtomicU64; DropReason::ALL.len()],
    /// The userspace packet filter's counters.
    pub filter_userspace: FilterCounters,
    /// The admission defences' gauges and counters.
    pub admission: admission::AdmissionMetrics,
    /// The kernel filter, whose counters are read from its maps at scrape time.
    kernel_filter: OnceLock<Arc<KernelFilter>>,
    /// The XDP program, whose counters are read from its map at scrape time.
    xdp: OnceLock<Arc<XdpFilter>>,
    /// The hot-file cache, whose counters are read at scrape time.
    file_cache: OnceLock<Arc<crate::io::cache::FileCache>>,
    /// The listening addresses, for the kernel's per-socket drop counters.
    listeners: OnceLock<Vec<std::net::SocketAddr>>,
    durations: [Histogram; 2],
    /// Send calls: GSO, one datagram.
    send_calls: [AtomicU64; 2],
    datagrams_sent: AtomicU64,
    /// Transfers started: on a transfer thread, on the runtime.
    transfers_started: [AtomicU64; 2],
    /// Listener receive calls: recvmmsg, one datagram.
    receive_calls: [AtomicU64; 2],
    listener_datagrams: AtomicU64,
    /// Datagrams of the listener threads pinned to each CPU (performance.cpu.intake_threads
    /// with affinity), registered at start.
    pinned_workers: std::sync::Mutex<Vec<(usize, Arc<AtomicU64>)>>,
    /// How connections to the endpoint itself ended.
    pub endpoint: endpoint::EndpointCounters,
}

fn kind_index(kind: Kind) -> usize {
    Kind::ALL.iter().position(|k| *k == kind).unwrap_or(0)
}

impl Metrics {
    /// Counts a request's outcome.
    pub fn request(&self, kind: Kind, outcome: RequestOutcome) {
        let o = RequestOutcome::ALL
            .iter()
            .position(|x| *x == outcome)
            .unwrap_or(0);
        self.requests[kind_index(kind)][o].fetch_add(1, Relaxed);
    }

    /// Counts bytes sent (downloads) or received (uploads).
    pub fn bytes(&self, kind: Kind, n: u64) {
        match kind {
            Kind::Read => self.sent_bytes.fetch_add(n, Relaxed),
            Kind::Write => self.received_bytes.fetch_add(n, Relaxed),
        };
    }

    /// Counts retransmissions.
    pub fn retransmits(&self, n: u64) {
        self.retransmits.fetch_add(n, Relaxed);
    }

    /// Counts an ERROR packet sent.
    pub fn error_sent(&self, code: ErrorCode) {
        let i = usize::from(code.as_u16()).min(ERROR_CODES);
        self.errors_sent[i].fetch_add(1, Relaxed);
    }

    /// The datagram counter of the listener threads pinned to `cpu` (one series per CPU:
    /// listeners of several addresses pinned to one CPU share it).
    pub fn pinned_worker(&self, cpu: usize) -> Arc<AtomicU64> {
        let mut workers = self
            .pinned_workers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, c)) = workers.iter().find(|(c, _)| *c == cpu) {
            return c.clone();
        }
        let counter = Arc::new(AtomicU64::new(0));
        workers.push((cpu, counter.clone()));
        workers.sort_by_key(|(c, _)| *c);
        counter
    }

    /// Adds the kernel's drop counters of these listening sockets to every scrape.
    pub fn set_listeners(&self, addrs: Vec<std::net::SocketAddr>) {
        let _ = self.listeners.set(addrs);
    }

    /// Adds the kernel filter's counters to every scrape.
    pub fn set_kernel_filter(&self, f: Arc<KernelFilter>) {
        let _ = self.kernel_filter.set(f);
    }

    /// Adds the hot-file cache's counters to every scrape.
    pub fn set_file_cache(&self, c: Arc<crate::io::cache::FileCache>) {
        let _ = self.file_cache.set(c);
    }

    /// Adds the XDP program's counters to every scrape.
    pub fn set_xdp(&self, x: Arc<XdpFilter>) {
        let _ = self.xdp.set(x);
    }

    /// Counts what a batch send did.
    pub fn sends(&self, r: &crate::io::datagram::SendReport) {
        self.send_calls[0].fetch_add(r.gso_calls, Relaxed);
        self.send_calls[1].fetch_add(r.single_calls, Relaxed);
        self.datagrams_sent.fetch_add(r.datagrams, Relaxed);
    }

    /// Counts a transfer started on `lane`.
    pub fn transfer_started_on(&self, lane: crate::io::datagram::Lane) {
        use crate::io::datagram::Lane;
        let i = match lane {
            Lane::Thread => 0,
            Lane::Async => 1,
        };
        self.transfers_started[i].fetch_add(1, Relaxed);
    }

    /// Counts one listener receive call and the datagrams it returned.
    pub fn listener_received(&self, method: crate::io::listen::RecvMethod, datagrams: u64) {
        let i = match method {
            crate::io::listen::RecvMethod::Recvmmsg => 0,
            crate::io::listen::RecvMethod::Single => 1,
        };
        self.receive_calls[i].fetch_add(1, Relaxed);
        self.listener_datagrams.fetch_add(datagrams, Relaxed);
    }

    /// Counts datagrams a transfer dropped.
    pub fn dropped(&self, reason: DropReason, n: u64) {
        let d = DropReason::ALL
            .iter()
            .position(|x| *x == reason)
            .unwrap_or(0);
        self.dropped[d].fetch_add(n, Relaxed);
    }

    /// Marks a transfer started; the guard marks it finished when dropped.
    pub fn transfer_started(&self) -> ActiveGuard<'_> {
        self.active.fetch_add(1, Relaxed);
        ActiveGuard(self)
    }

    /// Records a finished transfer's duration.
    pub fn transfer_duration(&self, kind: Kind, d: Duration) {
        let h = &self.durations[kind_index(kind)];
        let secs = d.as_secs_f64();
        for (i, bound) in DURATION_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.buckets[i].fetch_add(1, Relaxed);
            }
        }
        h.count.fetch_add(1, Relaxed);
        h.sum_micros
            .fetch_add(d.as_micros().min(u128::from(u64::MAX)) as u64, Relaxed);
    }

    /// Transfers running now.
    pub fn active(&self) -> i64 {
        self.active.load(Relaxed)
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let head = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        head(&mut out, BUILD_INFO, "gauge", "Build information.");
        let _ = writeln!(
            out,
            "{BUILD_INFO}{{version=\"{}\",io_path=\"portable\"}} 1",
            env!("CARGO_PKG_VERSION")
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
        if cfg!(linux) {
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

/// Decrements the active-transfer gauge when dropped, however the transfer ends.
#[derive(Debug)]
pub struct ActiveGuard<'a>(&'a Metrics);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_shows_counted_values_with_closed_labels() {
        let m = Metrics::default();
        m.request(Kind::Read, RequestOutcome::Completed);
        m.request(Kind::Write, RequestOutcome::Denied);
        m.bytes(Kind::Read, 1428);
        m.error_sent(ErrorCode::FileNotFound);
        m.error_sent(ErrorCode::Other(99));
        m.transfer_duration(Kind::Read, Duration::from_millis(20));
        let guard = m.transfer_started();
        let text = m.render();
        for line in [
            "tftpd_requests_total{kind=\"read\",outcome=\"completed\"} 1",
            "tftpd_requests_total{kind=\"write\",outcome=\"denied\"} 1",
            "tftpd_sent_bytes_total 1428",
            "tftpd_errors_sent_total{code=\"1\"} 1",
            "tftpd_errors_sent_total{code=\"other\"} 1",
            "tftpd_active_transfers 1",
            "# TYPE tftpd_upload_bytes_in_flight gauge",
            "tftpd_transfer_duration_seconds_bucket{kind=\"read\",le=\"0.01\"} 0",
            "tftpd_transfer_duration_seconds_bucket{kind=\"read\",le=\"0.05\"} 1",
            "tftpd_transfer_duration_seconds_count{kind=\"read\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing line {line:?} in:\n{text}"
            );
        }
        drop(guard);
        assert_eq!(m.active(), 0, "the guard decrements the gauge");
    }
}
