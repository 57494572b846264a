//! A listening socket's loop: take RRQ/WRQ datagrams, refuse what is malformed or over a
//! limit, and start a transfer task for the rest. Nothing here waits on a file or a client,
//! so one slow transfer never delays another's request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, info};

use crate::filter::{self, Role};
use crate::io::listen::{ListenSocket, Received, RecvBuffers, RecvMode};
use crate::metrics::{DropReason, Kind, RequestOutcome};
use crate::proto::packet::{DecodeError, OP_ERROR, OP_RRQ, OP_WRQ, Packet, opcode};
use crate::proto::{ErrorCode, WireError};

use super::Shared;
use super::admission::Refusal;
use super::deferred::{Deferred, Held};
use super::error_reply::{UNKNOWN_TID, reply};
use super::request::OwnedRequest;
use super::runtime::Runtime;
use super::start::{Admitted, start};
use crate::io::alarms::sleep_until;

/// The number of datagrams a pinned listener took, for its metric.
pub type WorkerCounter = Arc<std::sync::atomic::AtomicU64>;

const TOO_LARGE: WireError = WireError::new(ErrorCode::IllegalOperation, "request too large");
const MALFORMED: WireError = WireError::new(ErrorCode::IllegalOperation, "malformed request");
const MALFORMED_OPTIONS: WireError = WireError::new(ErrorCode::OptionRefused, "malformed options");

/// Takes requests on `socket` until `stop` is cancelled; a pinned listener thread counts
/// what it takes in `pinned`.
pub async fn listen(socket: ListenSocket, shared: Arc<Shared>, pinned: Option<WorkerCounter>) {
    let mut bufs = RecvBuffers::default();
    // In single-port mode running transfers still receive through this socket while the
    // server drains: it then keeps routing and refuses only new requests (server::run ends
    // the task once the transfers are done).
    let mut draining = false;
    // Requests waiting for a place (server::deferred).
    let mut held = Deferred::default();
    loop {
        // Registered before the held requests try for a place, so a place freed while they
        // try is not missed.
        let freed = shared.admission.freed();
        tokio::pin!(freed);
        let mut expiry = None;
        if !held.is_empty() {
            freed.as_mut().enable();
            start_held(&socket, &mut held, &shared).await;
            expiry = held.next_expiry(queue_wait(&shared.runtime.borrow()));
        }
        let mode = recv_mode(&shared);
        let n = tokio::select! {
            () = shared.stop_intake.cancelled(), if !draining => {
                if !shared.single_port {
                    shared.metrics.admission.deferred(-(held.clear() as i64));
                    return;
                }
                draining = true;
                continue;
            }
            r = socket.recv_batch(&mut bufs, mode) => match r {
                Ok(n) => n,
                Err(e) => {
                    debug!(error = %e, "listener receive failed");
                    continue;
                }
            },
            () = &mut freed, if !held.is_empty() => continue,
            () = sleep_until(expiry), if expiry.is_some() => continue,
        };
        shared.metrics.listener_received(bufs.method(), n as u64);
        if let Some(c) = &pinned {
            c.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        }
        for i in 0..n {
            if let Some((r, d)) = bufs.get(i) {
                take(&socket, r, d, draining, &shared, &mut held).await;
            }
        }
    }
}

/// The receive path `[performance.batching]` asks for, where the kernel has it.
fn recv_mode(shared: &Shared) -> RecvMode {
    let rt = shared.runtime.borrow();
    let b = &rt.config.performance.batching;
    if b.listener_recvmmsg() && crate::fastpath::support().recvmmsg {
        RecvMode::Mmsg {
            batch: b.recv_batch,
            huge_pages: rt.config.performance.memory.huge_pages,
        }
    } else {
        RecvMode::Single
    }
}

/// One received datagram: routed to its transfer (single-port mode) or handled as a request.
async fn take(
    socket: &ListenSocket,
    r: Received,
    d: &[u8],
    draining: bool,
    shared: &Arc<Shared>,
    held: &mut Deferred,
) {
    // A v4 request on a dual-stack socket is answered from an IPv4 transfer socket bound
    // to the address it was sent to, so the client is addressed as plain IPv4 too.
    let peer = if r.local.is_ipv4() {
        SocketAddr::new(r.peer.ip().to_canonical(), r.peer.port())
    } else {
        r.peer
    };
    if shared.single_port && !single_port_request(socket, d, peer, shared).await || draining {
        return;
    }
    handle(socket, r.local, d, peer, shared, held).await;
}

/// Checks a request (filter, access, size, decoding) and admits it, or holds it.
async fn handle(
    socket: &ListenSocket,
    local: SocketAddr,
    d: &[u8],
    peer: SocketAddr,
    shared: &Arc<Shared>,
    held: &mut Deferred,
) {
    let rt = shared.runtime.borrow().clone();
    let metrics = &shared.metrics;
    // Junk dies here (or already died in the kernel), counted by reason, without an
    // answer: no reflection off port 69.
    // (In single-port mode the datagram was screened on arrival, by the single-port rule.)
    if !shared.single_port && !screen(Role::Listener, d, shared) {
        return;
    }
    let kind = if opcode(d) == Some(OP_WRQ) {
        Kind::Write
    } else {
        Kind::Read
    };
    if !rt.config.serves(peer.ip()) {
        // No answer: an ERROR to a spoofed source would make this server a reflector.
        debug!(target: "tftpd::audit", %peer, "request from a client [access] or ebpf.xdp_deny refuses");
        metrics.request(kind, RequestOutcome::ClientRefused);
        return;
    }
    if d.len() > rt.config.limits.max_request_size {
        info!(%peer, len = d.len(), "request over limits.max_request_size refused");
        metrics.request(kind, RequestOutcome::BadRequest);
        reply(socket, peer, &TOO_LARGE, shared).await;
        return;
    }
    let req = match Packet::decode(d) {
        Ok(Packet::Rrq(r) | Packet::Wrq(r)) => OwnedRequest::new(kind, &r),
        Ok(_) => return,
        Err(e) => {
            let wire = match e {
                DecodeError::OptionWithoutValue => MALFORMED_OPTIONS,
                _ => MALFORMED,
            };
            info!(%peer, error = %e, "malformed request refused");
            metrics.request(kind, RequestOutcome::BadRequest);
            reply(socket, peer, &wire, shared).await;
            return;
        }
    };
    if kind == Kind::Read && shared.multicast.rejoin(peer) {
        // A multicast member asked again (its OACK was lost): its group answers it.
        debug!(%peer, "request from a multicast member passed to its group");
        metrics.request(kind, RequestOutcome::Duplicate);
        return;
    }
    if held.holds(peer) {
        // Asked again while held: it keeps its place in the queue.
        debug!(%peer, "duplicate of a held request ignored");
        metrics.request(kind, RequestOutcome::Duplicate);
        return;
    }
    let h = Held {
        req,
        peer,
        local,
        at: Instant::now(),
    };
    if !held.is_empty() {
        // Others wait already: this one waits behind them.
        hold(h, held, &rt, shared);
        return;
    }
    if let Some(h) = admit(socket, h, rt.clone(), shared).await {
        hold(h, held, &rt, shared);
    }
}

/// Admits `h` and starts it (or settles it otherwise: a duplicate, a client over its
/// limit); gives it back when no place is free.
async fn admit(
    socket: &ListenSocket,
    h: Held,
    rt: Arc<Runtime>,
    shared: &Arc<Shared>,
) -> Option<Held> {
    let metrics = &shared.metrics;
    let kind = h.req.kind;
    let peer = h.peer;
    match shared
        .admission
        .admit(peer, Instant::now(), &rt.admission_limits, &shared.abort)
    {
        Ok(ticket) => {
            let admitted = Admitted {
                req: h.req,
                peer,
                local: h.local,
                ticket,
            };
            start(socket, admitted, rt, shared).await;
            None
        }
        Err(Refusal::Duplicate) => {
            // The client retransmitted its request; the running transfer answers it.
            debug!(%peer, "duplicate request ignored");
            metrics.request(kind, RequestOutcome::Duplicate);
            None
        }
        // No place now, in all or for this client: it waits for one (an ERROR would make
        // PXE firmware give up).
        Err(Refusal::Full | Refusal::ClientLimit) => Some(h),
    }
}

/// Holds a request that found no place, or drops it (no answer) when the queue is full.
fn hold(h: Held, held: &mut Deferred, rt: &Runtime, shared: &Shared) {
    let kind = h.req.kind;
    let peer = h.peer;
    if held.push(h, rt.config.limits.max_queued) {
        debug!(%peer, held = held.len(), "every transfer place is taken; request held");
        shared.metrics.admission.deferred(1);
    } else {
        debug!(%peer, "every transfer place is taken and limits.max_queued requests are held; request dropped");
        shared.metrics.request(kind, RequestOutcome::Overloaded);
    }
}

/// Starts held requests, oldest first, while places are free; drops those held longer than
/// `limits.max_queue_wait_ms`, or all of them once the drain has begun.
async fn start_held(socket: &ListenSocket, held: &mut Deferred, shared: &Arc<Shared>) {
    let metrics = &shared.metrics;
    if shared.stop_intake.is_cancelled() {
        metrics.admission.deferred(-(held.clear() as i64));
        return;
    }
    let rt = shared.runtime.borrow().clone();
    for (kind, n) in held.expire(Instant::now(), queue_wait(&rt)) {
        for _ in 0..n {
            metrics.request(kind, RequestOutcome::Overloaded);
        }
        metrics.admission.deferred(-(n as i64));
    }
    while let Some(h) = held.pop() {
        metrics.admission.deferred(-1);
        if let Some(h) = admit(socket, h, rt.clone(), shared).await {
            // Still no place: it keeps its turn.
            held.unpop(h);
            metrics.admission.deferred(1);
            return;
        }
    }
}

fn queue_wait(rt: &Runtime) -> Duration {
    Duration::from_millis(rt.config.limits.max_queue_wait_ms)
}

/// Applies the filter rule for `role` where the kernel has not (counted by reason); true
/// when the datagram may be used.
fn screen(role: Role, d: &[u8], shared: &Shared) -> bool {
    let counters = match &shared.kernel_filter {
        None => Some(&shared.metrics.filter_userspace),
        Some(f) => f.daemon_counters(),
    };
    counters.is_none_or(|c| filter::admit(role, d, c))
}

/// Single-port mode: screens a datagram and, unless it is a request (true: the caller handles
/// it as one), hands it to its transfer. A datagram from a client without a transfer gets
/// ERROR 5, as a stranger on a transfer socket would, and disturbs nothing.
async fn single_port_request(
    socket: &ListenSocket,
    d: &[u8],
    peer: SocketAddr,
    shared: &Arc<Shared>,
) -> bool {
    let max_blksize = shared.runtime.borrow().config.protocol.largest_data();
    if !screen(Role::SinglePort { max_blksize }, d, shared) {
        return false;
    }
    if matches!(opcode(d), Some(OP_RRQ | OP_WRQ)) {
        return true;
    }
    let inbox = shared
        .inboxes
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&peer)
        .cloned();
    match inbox {
        Some(tx) => {
            if tx.try_send(d.to_vec()).is_err() {
                // A full inbox is a burst the transfer has not read yet: like a loss.
                shared.metrics.dropped(DropReason::Ignored, 1);
            }
        }
        None if opcode(d) == Some(OP_ERROR) => {}
        None => {
            debug!(%peer, "datagram from an unknown TID (single-port)");
            shared.metrics.dropped(DropReason::UnknownTid, 1);
            if shared.runtime.borrow().config.serves(peer.ip()) {
                reply(socket, peer, &UNKNOWN_TID, shared).await;
            }
        }
    }
    false
}
