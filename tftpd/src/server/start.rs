//! Starting an admitted request: its transfer socket (a new TID) bound on the address the
//! client asked, and its task placed where it runs best (a thread of its own while few
//! transfers run, or the shared runtime), or, in single-port mode, its inbox
//! on the listening socket.

use std::net::SocketAddr;
use std::sync::Arc;

use tracing::{debug, warn};

use crate::io::blocking::BlockingSocket;
use crate::io::datagram::DatagramIo;
use crate::io::listen::ListenSocket;
use crate::io::owned_socket::OwnedSocket;
use crate::io::portable::PortableSocket;
use crate::io::shared_port::SharedPortSocket;
use crate::metrics::{Kind, RequestOutcome};
use crate::proto::{ErrorCode, WireError};

use super::Shared;
use super::admission::Ticket;
use super::error_reply::reply;
use super::request::OwnedRequest;
use super::runtime::Runtime;
use super::session;

/// Datagrams a single-port transfer may have waiting: a full window of 64 and some.
const INBOX_DEPTH: usize = 128;
/// Sent when no transfer socket can be bound (no port or file descriptor left).
const BUSY: WireError = WireError::new(ErrorCode::NotDefined, "server busy, try again later");

/// An admitted request, ready to start.
pub(super) struct Admitted {
    /// The request.
    pub(super) req: OwnedRequest,
    /// Its client.
    pub(super) peer: SocketAddr,
    /// The address it was sent to.
    pub(super) local: SocketAddr,
    /// Its place.
    pub(super) ticket: Ticket,
}

/// Binds the transfer's socket and spawns its task.
pub(super) async fn start(
    listener: &ListenSocket,
    admitted: Admitted,
    rt: Arc<Runtime>,
    shared: &Arc<Shared>,
) {
    let Admitted {
        req,
        peer,
        local,
        ticket,
    } = admitted;
    let kind = req.kind;
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
            .insert(peer, tx.clone());
        let transfer_socket = SharedPortSocket::new(listener.shared(), rx, peer);
        shared.metrics.transfer_started_on(transfer_socket.lane());
        let shared_for_task = shared.clone();
        shared.tracker.spawn(async move {
            let inboxes = shared_for_task.clone();
            session::serve(req, peer, transfer_socket, rt, shared_for_task, ticket).await;
            // Only its own inbox: a quiet half-open transfer is replaced when its client
            // asks again, and the new transfer's inbox is registered under the same TID.
            let mut map = inboxes
                .inboxes
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if map.get(&peer).is_some_and(|t| t.same_channel(&tx)) {
                map.remove(&peer);
            }
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
    // Transfers run on the shared runtime even when this listener has a thread of its own:
    // their sockets are registered, and their tasks spawned, there. The backend is chosen
    // here, once: the transfer's loop is compiled for each.
    let started = {
        let _transfers = shared.transfers.enter();
        match place {
            Some(place) => {
                bound(BlockingSocket::bind(local, ports), &rt, peer, kind, shared).map(|socket| {
                    let serve = session::serve(req, peer, socket, rt, shared.clone(), ticket);
                    // The transfer's futures never wait on the runtime (its socket blocks),
                    // except where a fast path sleeps; `block_on` drives those on this thread.
                    let runtime = tokio::runtime::Handle::current();
                    shared.tracker.spawn_blocking(move || {
                        let _place = place;
                        runtime.block_on(serve);
                    });
                })
            }
            None if transfer_recvmmsg(&rt.config) => {
                bound(OwnedSocket::bind(local, ports), &rt, peer, kind, shared).map(|socket| {
                    let serve = session::serve(req, peer, socket, rt, shared.clone(), ticket);
                    drop(shared.tracker.spawn(serve));
                })
            }
            None => {
                bound(PortableSocket::bind(local, ports), &rt, peer, kind, shared).map(|socket| {
                    let serve = session::serve(req, peer, socket, rt, shared.clone(), ticket);
                    drop(shared.tracker.spawn(serve));
                })
            }
        }
    };
    if started.is_none() {
        reply(listener, peer, &BUSY, shared).await;
    }
}

/// A transfer socket that was bound, with the configured buffers applied and its start
/// counted; `None` (counted as busy, logged) when none could be bound, for the caller to
/// answer "busy" from the listener.
fn bound<D: DatagramIo>(
    bound: std::io::Result<D>,
    rt: &Runtime,
    peer: SocketAddr,
    kind: Kind,
    shared: &Shared,
) -> Option<D> {
    match bound {
        Ok(s) => {
            let b = &rt.config.performance.socket;
            if let Some(fd) = s.own_fd()
                && let Err(e) = crate::io::buffers::apply(&fd, b.recv_buffer, b.send_buffer)
            {
                debug!(error = %e, "setting a transfer socket's buffers failed");
            }
            shared.metrics.transfer_started_on(s.lane());
            Some(s)
        }
        Err(e) => {
            shared.metrics.request(kind, RequestOutcome::Busy);
            warn!(%peer, error = %e, "no transfer socket could be bound; request refused");
            None
        }
    }
}

/// Whether an async transfer's socket receives with `recvmmsg`, registered for reading only
/// (`performance.batching.transfer_recvmmsg`, when the kernel has `recvmmsg`; elsewhere the
/// portable tokio socket).
fn transfer_recvmmsg(config: &crate::config::Config) -> bool {
    config.performance.batching.transfer_recvmmsg && crate::fastpath::support().recvmmsg
}

/// True when `req` asks for RFC 2090 multicast and the server offers it.
fn asks_multicast(req: &OwnedRequest, rt: &Runtime) -> bool {
    rt.config.multicast.enabled && crate::proto::options::requested_multicast(req.option_names())
}
