//! The I/O shell: listeners, one task per transfer, limits, reload and drain.
//!
//! [`run`] takes sockets that are already bound (by `main`, or later by socket activation),
//! so privileged ports, port-0 tests and adopted sockets share one entry point.

pub mod admission;
mod deferred;
mod drive;
mod error_reply;
pub mod file_io;
mod half_open;
pub mod intake;
pub mod listener;
pub mod multicast;
mod outcome;
pub mod reload;
pub mod request;
pub mod runtime;
pub mod session;
mod start;
pub mod threads;
mod transfer_filter;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::daemon::systemd::Notifier;
use crate::filter::KernelFilter;
use crate::io::cache::FileCache;
use crate::io::listen::ListenSocket;
use crate::metrics::Metrics;

use self::admission::Admission;
use self::runtime::Runtime;

/// How long transfers get, after the grace period, to send their final ERROR and stop.
const ABORT_GRACE: Duration = Duration::from_secs(2);

/// What every listener and transfer task shares.
#[derive(Debug)]
pub struct Shared {
    /// The current configuration; replaced on reload. Transfers keep the one they began with.
    pub runtime: watch::Receiver<Arc<Runtime>>,
    /// The daemon's metrics.
    pub metrics: Arc<Metrics>,
    /// Running transfers and the limits on them.
    pub admission: Arc<Admission>,
    /// Cancelled to stop taking requests (drain begins).
    pub stop_intake: CancellationToken,
    /// Cancelled when the drain deadline passes: transfers send ERROR 0 and end.
    pub abort: crate::io::alarms::AbortSignal,
    /// Every transfer task, so the drain can wait for them.
    pub tracker: TaskTracker,
    /// The kernel packet filter, when attached; otherwise the userspace rules apply.
    pub kernel_filter: Option<Arc<KernelFilter>>,
    /// Single-port mode (fixed at start): transfers are answered from the listening socket.
    pub single_port: bool,
    /// Single-port mode: where each running transfer's client datagrams go.
    pub inboxes: std::sync::Mutex<std::collections::HashMap<SocketAddr, Inbox>>,
    /// The running RFC 2090 multicast groups and their members.
    pub multicast: multicast::Groups,
    /// Small files kept in memory for all transfers (`performance.file_io.cache_size`); it
    /// outlives reloads, which only change its bounds.
    pub file_cache: Arc<FileCache>,
    /// Transfers on threads of their own (`performance.cpu.transfer_threads`).
    pub transfer_threads: threads::TransferThreads,
    /// The async runtime transfers run on (listener threads start theirs there).
    pub transfers: tokio::runtime::Handle,
}

/// The listener's end of a single-port transfer's inbox.
pub type Inbox = tokio::sync::mpsc::Sender<Vec<u8>>;

/// Serves on `listeners` until `shutdown` is cancelled, then drains: no new requests,
/// running transfers get the configured grace period, then are told the server is going.
pub async fn run(
    listeners: Vec<std::net::UdpSocket>,
    runtime: watch::Receiver<Arc<Runtime>>,
    metrics: Arc<Metrics>,
    kernel_filter: Option<Arc<KernelFilter>>,
    notifier: Option<Arc<Notifier>>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let runtime_single_port = runtime.borrow().config.single_port;
    let file_cache = Arc::new(FileCache::default());
    metrics.set_file_cache(file_cache.clone());
    let shared = Arc::new(Shared {
        runtime,
        metrics,
        admission: Arc::new(Admission::default()),
        stop_intake: CancellationToken::new(),
        abort: crate::io::alarms::AbortSignal::new(),
        tracker: TaskTracker::new(),
        kernel_filter,
        single_port: runtime_single_port,
        inboxes: std::sync::Mutex::default(),
        multicast: multicast::Groups::default(),
        file_cache,
        transfer_threads: threads::TransferThreads::default(),
        transfers: tokio::runtime::Handle::current(),
    });
    let mut listener_tasks: Vec<tokio::task::JoinHandle<()>> = Vec::new();
    let (threads, affinity, numa) = {
        let rt = shared.runtime.borrow();
        let p = &rt.config.performance;
        (p.cpu.intake_threads, p.cpu.affinity.clone(), p.memory.numa)
    };
    if threads && shared.single_port {
        info!(
            "performance.cpu.intake_threads: single-port mode serves transfers from the \
             listening socket, so its listener stays on the async runtime"
        );
    }
    let pinned = threads && !shared.single_port && !affinity.is_empty();
    let node_of = intake::numa_nodes(numa, pinned);
    // Each address with how many of its sockets are set up so far: a reuseport group is
    // several sockets on one address, named once and numbered within.
    let mut groups: Vec<(SocketAddr, usize)> = Vec::new();
    for l in listeners {
        let local = l.local_addr()?;
        let index = match groups.iter_mut().find(|(a, _)| *a == local) {
            Some((_, n)) => {
                *n += 1;
                *n - 1
            }
            None => {
                groups.push((local, 1));
                0
            }
        };
        let task = if threads && !shared.single_port {
            let cpu = intake::cpu_for(&affinity, index);
            let node = cpu.and_then(|c| node_of.as_ref().and_then(|f| f(c)));
            intake::start(l, shared.clone(), intake::Placement { cpu, node })?
        } else {
            tokio::spawn(listener::listen(
                ListenSocket::new(l)?,
                shared.clone(),
                None,
            ))
        };
        listener_tasks.push(task);
    }
    let addrs: Vec<SocketAddr> = groups.iter().map(|(a, _)| *a).collect();
    shared.metrics.set_listeners(addrs.clone());
    let fields: Vec<String> = addrs.iter().map(|a| format!("listen={a}")).collect();
    info!("tftpd ready {}", fields.join(" "));
    if let Some(n) = &notifier {
        n.notify(&format!("READY=1\nSTATUS=serving on {}", fields.join(" ")));
    }

    shutdown.cancelled().await;
    let grace = Duration::from_secs(shared.runtime.borrow().config.shutdown.grace_period_secs);
    let running = shared.admission.running();
    info!(
        running,
        grace_secs = grace.as_secs(),
        "shutting down: no new requests, draining"
    );
    if let Some(n) = &notifier {
        n.notify("STOPPING=1\nSTATUS=draining");
    }
    shared.stop_intake.cancel();
    if !shared.single_port {
        for t in listener_tasks.drain(..) {
            let _ = t.await;
        }
    }
    shared.tracker.close();
    if tokio::time::timeout(grace, shared.tracker.wait())
        .await
        .is_err()
    {
        warn!(
            running = shared.admission.running(),
            "drain deadline passed; ending the remaining transfers"
        );
        shared.abort.raise();
        if tokio::time::timeout(ABORT_GRACE, shared.tracker.wait())
            .await
            .is_err()
        {
            warn!("transfers did not stop in time; exiting anyway");
        }
    }
    // Single-port listeners routed for the transfers until now.
    for t in listener_tasks {
        t.abort();
    }
    info!("tftpd stopped");
    Ok(())
}
