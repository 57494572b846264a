//! A listening socket's loop: take RRQ/WRQ datagrams, refuse what is malformed or over a
//! limit, and start a transfer task for the rest. Nothing here waits on a file or a client,
//! so one slow transfer never delays another's request.

use std::net::SocketAddr;
use std::sync::Arc;

use tracing::{debug, info, warn};

use crate::filter::{self, Role};
use crate::io::listen::ListenSocket;
use crate::io::socket::TransferSocket;
use crate::metrics::{Kind, RequestOutcome};
use crate::proto::packet::{DecodeError, OP_WRQ, Packet, opcode};
use crate::proto::transfer::error_datagram;
use crate::proto::{ErrorCode, WireError};

use super::Shared;
use super::admission::Refusal;
use super::request::OwnedRequest;
use super::session;

const TOO_LARGE: WireError = WireError::new(ErrorCode::IllegalOperation, "request too large");
const MALFORMED: WireError = WireError::new(ErrorCode::IllegalOperation, "malformed request");
const MALFORMED_OPTIONS: WireError = WireError::new(ErrorCode::OptionRefused, "malformed options");
const BUSY: WireError = WireError::new(ErrorCode::NotDefined, "server busy, try again later");
const CLIENT_BUSY: WireError =
    WireError::new(ErrorCode::NotDefined, "too many transfers from this client");

/// Takes requests on `socket` until `stop` is cancelled.
pub async fn listen(socket: ListenSocket, shared: Arc<Shared>) {
    // One byte more than the largest datagram possible, so nothing is silently truncated.
    let mut buf = vec![0u8; 65536];
    loop {
        let r = tokio::select! {
            () = shared.stop_intake.cancelled() => return,
            r = socket.recv(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    debug!(error = %e, "listener receive failed");
                    continue;
                }
            },
        };
        // A v4 request on a dual-stack socket is answered from an IPv4 transfer socket bound
        // to the address it was sent to, so the client is addressed as plain IPv4 too.
        let peer = if r.local.is_ipv4() {
            SocketAddr::new(r.peer.ip().to_canonical(), r.peer.port())
        } else {
            r.peer
        };
        handle(&socket, r.local, &buf[..r.len], peer, &shared).await;
    }
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
    let counters = match &shared.kernel_filter {
        None => Some(&metrics.filter_userspace),
        Some(f) => f.daemon_counters(),
    };
    if let Some(c) = counters
        && !filter::admit(Role::Listener, d, c)
    {
        return;
    }
    let kind = if opcode(d) == Some(OP_WRQ) {
        Kind::Write
    } else {
        Kind::Read
    };
    if !rt.config.access.permits(peer.ip()) {
        // No answer: an ERROR to a spoofed source would make this server a reflector.
        debug!(target: "tftpd::audit", %peer, "request from a client [access] refuses");
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
    let transfer_socket = match TransferSocket::bind(local, ports) {
        Ok(s) => {
            let b = &rt.config.performance.socket;
            if let Err(e) = crate::io::buffers::apply(&s, b.recv_buffer, b.send_buffer) {
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
    let shared_for_task = shared.clone();
    shared.tracker.spawn(session::serve(
        req,
        peer,
        transfer_socket,
        rt,
        shared_for_task,
        ticket,
    ));
}

async fn reply(socket: &ListenSocket, to: SocketAddr, err: &WireError, shared: &Shared) {
    shared.metrics.error_sent(err.code);
    if let Err(e) = socket.send_to(&error_datagram(err), to).await {
        debug!(error = %e, %to, "sending an ERROR failed");
    }
}
