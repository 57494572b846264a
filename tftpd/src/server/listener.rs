//! A listening socket's loop: take RRQ/WRQ datagrams, refuse what is malformed or over a
//! limit, and start a transfer task for the rest. Nothing here waits on a file or a client,
//! so one slow transfer never delays another's request.

use std::net::SocketAddr;
use std::sync::Arc;

use tracing::{debug, info, warn};

use crate::filter::{self, Role};
use crate::io::listen::{ListenSocket, Received, RecvBuffers, RecvMode};
use crate::io::transfer_socket::TransferSocket;
use crate::metrics::{DropReason, Kind, RequestOutcome};
use crate::proto::packet::{DecodeError, OP_ERROR, OP_RRQ, OP_WRQ, Packet, opcode};
use crate::proto::transfer::error_datagram;
use crate::proto::{ErrorCode, WireError};

use super::Shared;
use super::admission::Refusal;
use super::request::OwnedRequest;
use super::session::{self, UNKNOWN_TID};

const TOO_LARGE: WireError = WireError::new(ErrorCode::IllegalOperation, "request too large");
const MALFORMED: WireError = WireError::new(ErrorCode::IllegalOperation, "malformed request");
const MALFORMED_OPTIONS: WireError = WireError::new(ErrorCode::OptionRefused, "malformed options");
/// Datagrams a single-port transfer may have waiting: a full window of 64 and some.
const INBOX_DEPTH: usize = 128;
const BUSY: WireError = WireError::new(ErrorCode::NotDefined, "server busy, try again later");
const CLIENT_BUSY: WireError =
    WireError::new(ErrorCode::NotDefined, "too many transfers from this client");

/// Takes requests on `socket` until `stop` is cancelled; a pinned listener thread counts
/// what it takes in `pinned`.
pub async fn listen(
    socket: ListenSocket,
    shared: Arc<Shared>,
    pinned: Option<super::intake::WorkerCounter>,
) {
    let mut bufs = RecvBuffers::default();
    // In single-port mode running transfers still receive through this socket while the
    // server drains: it then keeps routing and refuses only new requests (server::run ends
    // the task once the transfers are done).
    let mut draining = false;
    loop {
        let mode = recv_mode(&shared);
        let n = tokio::select! {
            () = shared.stop_intake.cancelled(), if !draining => {
                if !shared.single_port {
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
        };
        shared.metrics.listener_received(bufs.method(), n as u64);
        if let Some(c) = &pinned {
            c.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        }
        for i in 0..n {
            if let Some((r, d)) = bufs.get(i) {
                take(&socket, r, d, draining, &shared).await;
            }
        }
    }
}

/// The receive path `[performance.batching]` asks for, where the kernel has it.
fn recv_mode(shared: &Shared) -> RecvMode {
    let rt = shared.runtime.borrow();
    let b = &rt.config.performance.batching;
    if b.recvmmsg && crate::fastpath::support().recvmmsg {
        RecvMode::Mmsg {
            batch: b.recv_batch,
            huge_pages: rt.config.performance.memory.huge_pages,
        }
    } else {
        RecvMode::Single
    }
}

/// One received datagram: routed to its transfer (single-port mode) or handled as a request.
async fn take(socket: &ListenSocket, r: Received, d: &[u8], draining: bool, shared: &Arc<Shared>) {
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
    handle(socket, r.local, d, peer, shared).await;
}

async fn handle(
    socket: &ListenSocket,
    local: SocketAddr,
    d: &[u8],
    peer: SocketAddr,
    shared: &Arc<Shared>,
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
    let limits = &rt.config.limits;
    let ticket = match shared.admission.admit(
        peer,
        limits.max_transfers,
        limits.max_transfers_per_client,
    ) {
        Ok(t) => t,
        Err(Refusal::Duplicate) => {
            // The client retransmitted its request; the running transfer answers it.
            debug!(%peer, "duplicate request ignored");
            metrics.request(kind, RequestOutcome::Duplicate);
            return;
        }
        Err(refusal) => {
            let wire = if refusal == Refusal::GlobalLimit {
                BUSY
            } else {
                CLIENT_BUSY
            };
            warn!(target: "tftpd::audit", %peer, ?refusal, "request refused: concurrency limit reached");
            metrics.request(kind, RequestOutcome::Busy);
            reply(socket, peer, &wire, shared).await;
            return;
        }
    };
    // The transfer's own socket (a new TID) on the address the client asked. Bound here, so
    // that when no port is free (a full port_range, or no file descriptors left) the client
    // hears so from the listener instead of waiting for a timeout.
    let ports = rt.config.port_range.map(|r| (r.lo, r.hi));
    if shared.single_port {
        // The inbox is registered before the transfer starts, so its first ACK finds it.
        let (tx, rx) = tokio::sync::mpsc::channel(INBOX_DEPTH);
        shared
            .inboxes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(peer, tx);
        let transfer_socket = TransferSocket::shared(socket.shared(), rx, peer);
        let shared_for_task = shared.clone();
        shared.tracker.spawn(async move {
            let inboxes = shared_for_task.clone();
            session::serve(req, peer, transfer_socket, rt, shared_for_task, ticket).await;
            inboxes
                .inboxes
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&peer);
        });
        return;
    }
    // A thread of its own while the daemon runs few transfers (not for a multicast request:
    // its group is served by the async runtime). A thread costs a context switch per block;
    // the runtime spreads its wake-ups over every transfer ready at once, which is cheaper
    // from a handful of concurrent transfers on (docs/adr/0026).
    let place = if asks_multicast(&req, &rt) {
        None
    } else {
        let max = usize::from(rt.config.performance.cpu.transfer_threads);
        if shared.admission.running() <= max {
            shared.transfer_threads.claim(max)
        } else {
            None
        }
    };
    // A download that is not on a thread of its own runs on a ring lane when
    // `performance.io_uring.shared_ring` asks for one (and one could start), else on the
    // shared runtime. Uploads stay there: their commit (fsync, rename) blocks, and on a lane
    // it would stall every transfer of the lane.
    #[cfg(all(target_os = "linux", feature = "io-uring"))]
    let lane = if place.is_none()
        && kind == Kind::Read
        && !asks_multicast(&req, &rt)
        && uses_shared_ring(&rt.config)
    {
        shared.ring_lanes.pick()
    } else {
        None
    };
    // Transfers run on the shared runtime even when this listener has a thread of its own:
    // their sockets are registered, and their tasks spawned, there.
    let bound = {
        let _transfers = shared.transfers.enter();
        match &place {
            Some(_) => TransferSocket::bind_blocking(local, ports, ring_settings(&rt.config)),
            None => {
                #[cfg(all(target_os = "linux", feature = "io-uring"))]
                if let Some((l, _)) = &lane {
                    TransferSocket::bind_shared_ring(local, ports, &l.ring)
                } else {
                    TransferSocket::bind(local, ports, transfer_recvmmsg(&rt.config))
                }
                #[cfg(not(all(target_os = "linux", feature = "io-uring")))]
                TransferSocket::bind(local, ports, transfer_recvmmsg(&rt.config))
            }
        }
    };
    let transfer_socket = match bound {
        Ok(s) => {
            let b = &rt.config.performance.socket;
            if let Some(fd) = s.own_fd()
                && let Err(e) = crate::io::buffers::apply(&fd, b.recv_buffer, b.send_buffer)
            {
                debug!(error = %e, "setting a transfer socket's buffers failed");
            }
            s
        }
        Err(e) => {
            metrics.request(kind, RequestOutcome::Busy);
            warn!(%peer, error = %e, "no transfer socket could be bound; request refused");
            reply(socket, peer, &BUSY, shared).await;
            return;
        }
    };
    let _transfers = shared.transfers.enter();
    metrics.transfer_started_on(transfer_socket.lane());
    let serve = session::serve(req, peer, transfer_socket, rt, shared.clone(), ticket);
    #[cfg(all(target_os = "linux", feature = "io-uring"))]
    if let Some((l, held)) = lane {
        // The lane's thread drives the transfer; its place is freed when the transfer ends.
        shared.tracker.spawn_on(
            async move {
                let _held = held;
                serve.await;
            },
            &l.handle,
        );
        return;
    }
    match place {
        Some(place) => {
            // The transfer's futures never wait on the runtime (its socket blocks), except
            // where a fast path sleeps; `block_on` drives those on this thread.
            let runtime = tokio::runtime::Handle::current();
            shared.tracker.spawn_blocking(move || {
                let _place = place;
                runtime.block_on(serve);
            });
        }
        None => {
            shared.tracker.spawn(serve);
        }
    }
}

/// Whether new async transfers go to ring lanes (`performance.io_uring.shared_ring`, where
/// the kernel has io_uring; a start-up line says when it has not).
#[cfg(all(target_os = "linux", feature = "io-uring"))]
fn uses_shared_ring(config: &crate::config::Config) -> bool {
    config.performance.io_uring.shared_ring && crate::fastpath::support().io_uring
}

/// Whether an async transfer's socket receives with `recvmmsg`, registered for reading only
/// (`performance.batching.transfer_recvmmsg`, when the kernel has `recvmmsg`; elsewhere the
/// portable tokio socket).
fn transfer_recvmmsg(config: &crate::config::Config) -> bool {
    config.performance.batching.transfer_recvmmsg && crate::fastpath::support().recvmmsg
}

/// The ring a transfer thread drives its socket with, when `[performance.io_uring]` is on
/// and the kernel has it (probed at start; a start-up line says when it has not).
fn ring_settings(
    config: &crate::config::Config,
) -> Option<crate::io::transfer_socket::RingSettings> {
    let u = &config.performance.io_uring;
    (u.enabled && crate::fastpath::support().io_uring).then_some(
        crate::io::transfer_socket::RingSettings {
            queue_depth: u.queue_depth,
            sqpoll_idle_ms: u.sqpoll.then_some(u.sqpoll_idle_ms),
        },
    )
}

/// True when `req` asks for RFC 2090 multicast and the server offers it.
fn asks_multicast(req: &OwnedRequest, rt: &super::runtime::Runtime) -> bool {
    rt.config.multicast.enabled
        && req
            .options
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(b"multicast"))
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
            reply(socket, peer, &UNKNOWN_TID, shared).await;
        }
    }
    false
}

async fn reply(socket: &ListenSocket, to: SocketAddr, err: &WireError, shared: &Shared) {
    shared.metrics.error_sent(err.code);
    if let Err(e) = socket.send_to(&error_datagram(err), to).await {
        debug!(error = %e, %to, "sending an ERROR failed");
    }
}
