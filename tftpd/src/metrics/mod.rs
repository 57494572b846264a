//! The daemon's metrics: names as constants, values as atomics, rendered in the Prometheus
//! text format by [`Metrics::render`] and served by [`http`]. Every label value comes from a
//! small closed set; client addresses and file names belong in logs, never in labels.

pub mod admission;
pub mod build_info;
pub mod endpoint;
pub mod http;
pub mod kernel;
mod labels;
mod page;
pub mod process;
pub mod request;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::filter::xdp::XdpFilter;
use crate::filter::{FilterCounters, KernelFilter};
use crate::proto::ErrorCode;
pub use build_info::{BUILD_INFO, IoPath};
pub use endpoint::METRICS_CONNECTIONS_TOTAL;
pub use labels::{DropReason, Kind, RequestOutcome};

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
    /// The I/O path start-up chose, for `tftpd_build_info`.
    io_path: std::sync::Mutex<IoPath>,
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

    /// Names the I/O path in use in `tftpd_build_info` (until it is first set, the page says
    /// `portable`).
    pub fn set_io_path(&self, path: IoPath) {
        *self
            .io_path
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = path;
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
