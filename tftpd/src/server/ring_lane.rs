//! Ring lanes (`performance.io_uring.shared_ring`, Linux with the `io-uring` feature;
//! docs/adr/0028): threads, one per CPU, each with a single-threaded runtime and one
//! io_uring that every transfer on the thread sends and receives through
//! (`fastpath/shared_ring.rs`). Transfers that would run on the shared async runtime run on
//! the lane with the fewest transfers instead.
//!
//! Started the first time a transfer asks for one (at start, or after a SIGHUP turned the
//! key on), so a daemon with the key off has no such threads. A lane the kernel refuses (no
//! io_uring, out of memory) is said once, and transfers stay on the async runtime.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tokio_util::sync::CancellationToken;

/// Submission entries per lane's ring: a storm's turn of sends and receives (it submits
/// early when full, so more transfers only cost more `io_uring_enter` calls).
#[cfg(all(target_os = "linux", feature = "io-uring"))]
const DEPTH: u32 = 4096;

/// The lanes, started on first use.
#[derive(Debug, Default)]
pub struct RingLanes {
    lanes: OnceLock<Option<Lanes>>,
}

#[derive(Debug)]
struct Lanes {
    threads: Vec<Lane>,
    /// Cancelled by [`RingLanes::finish`], or when the daemon's shared state goes: each
    /// lane thread then sends what its transfers queued and ends.
    stop: CancellationToken,
}

/// One lane thread: where to spawn its transfers and the ring their sockets join.
#[derive(Debug)]
pub struct Lane {
    pub handle: tokio::runtime::Handle,
    #[cfg(all(target_os = "linux", feature = "io-uring"))]
    pub ring: Arc<crate::fastpath::shared_ring::SharedRing>,
    running: Arc<AtomicUsize>,
    /// Cancelled when the lane's thread ends (however it ends).
    ended: CancellationToken,
}

/// A transfer's place on a lane; dropping it frees the place.
#[derive(Debug)]
pub struct LanePlace {
    running: Arc<AtomicUsize>,
}

impl Drop for LanePlace {
    fn drop(&mut self) {
        self.running.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for Lanes {
    fn drop(&mut self) {
        // Not joined: the last holder of the shared state may be a transfer on a lane.
        self.stop.cancel();
    }
}

impl RingLanes {
    /// The lane with the fewest transfers, and a place on it; `None` where lanes could not
    /// start (said once, at warn level).
    pub fn pick(&self) -> Option<(&Lane, LanePlace)> {
        let lanes = self.lanes.get_or_init(start).as_ref()?;
        let lane = lanes
            .threads
            .iter()
            .min_by_key(|l| l.running.load(Ordering::Acquire))?;
        lane.running.fetch_add(1, Ordering::AcqRel);
        Some((
            lane,
            LanePlace {
                running: lane.running.clone(),
            },
        ))
    }

    /// Stops the lanes and waits, until `deadline`, for their threads to end: the daemon is
    /// exiting, and what the last transfers queued (the drain's ERRORs) must reach the
    /// kernel before the process goes. Nothing to do where no lane started.
    pub async fn finish(&self, deadline: tokio::time::Instant) {
        let Some(lanes) = self.lanes.get().and_then(Option::as_ref) else {
            return;
        };
        lanes.stop.cancel();
        for lane in &lanes.threads {
            if tokio::time::timeout_at(deadline, lane.ended.cancelled())
                .await
                .is_err()
            {
                tracing::warn!("a ring lane thread did not end in time; exiting anyway");
                return;
            }
        }
    }

    /// How many lane threads run (0 before the first use, or where they could not start).
    pub fn threads(&self) -> usize {
        self.lanes
            .get()
            .and_then(Option::as_ref)
            .map_or(0, |l| l.threads.len())
    }
}

#[cfg(all(target_os = "linux", feature = "io-uring"))]
fn start() -> Option<Lanes> {
    let n = std::thread::available_parallelism().map_or(1, usize::from);
    let stop = CancellationToken::new();
    let mut threads = Vec::with_capacity(n);
    for i in 0..n {
        match start_one(i, stop.clone()) {
            Ok(lane) => threads.push(lane),
            Err(e) => {
                tracing::warn!(error = %e, "starting a shared io_uring lane failed; transfers stay on the async runtime (performance.io_uring.shared_ring)");
                stop.cancel();
                return None;
            }
        }
    }
    tracing::info!(
        threads = n,
        "shared io_uring lanes started: async transfers send and receive through one ring per thread"
    );
    Some(Lanes { threads, stop })
}

#[cfg(not(all(target_os = "linux", feature = "io-uring")))]
fn start() -> Option<Lanes> {
    // The config refuses the key here; nothing asks.
    None
}

#[cfg(all(target_os = "linux", feature = "io-uring"))]
fn start_one(index: usize, stop: CancellationToken) -> std::io::Result<Lane> {
    use crate::fastpath::shared_ring::SharedRing;
    let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<Lane>>(1);
    std::thread::Builder::new()
        .name(format!("tftpd-ring-{index}"))
        .spawn(move || {
            let made = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .and_then(|rt| SharedRing::new(DEPTH).map(|ring| (rt, ring)));
            let (runtime, ring) = match made {
                Ok(m) => m,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let running = Arc::new(AtomicUsize::new(0));
            let ended = CancellationToken::new();
            // Cancels `ended` as the thread ends, after the runtime and its transfers, or in
            // a panic's unwinding.
            let _ended = ended.clone().drop_guard();
            let _ = tx.send(Ok(Lane {
                handle: runtime.handle().clone(),
                ring: ring.clone(),
                running,
                ended,
            }));
            runtime.block_on(ring.drive(stop));
            drop(runtime);
        })?;
    rx.recv()
        .map_err(|_| std::io::Error::other("the ring lane thread ended before it started"))?
}
