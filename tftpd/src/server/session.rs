//! Drives one transfer: the one place where the protocol core meets sockets, files, timers,
//! logs and metrics. Each transfer runs in its own task, on its own socket (a new TID), in a
//! span that records its options, bytes, duration and outcome.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tracing::{Instrument as _, Span, debug, info, warn};

use crate::filter::Role;
use crate::io::datagram::DatagramIo;
use crate::metrics::{Kind, RequestOutcome};
use crate::proto::Outcome;
use crate::proto::options::OptionName;
use crate::proto::read::ReadTransfer;
use crate::proto::write::WriteTransfer;

use super::Shared;
use super::admission::Ticket;
use super::drive::{ReadSession, WriteSession, drive, gso};
use super::error_reply::{SHUTTING_DOWN, send_error};
use super::half_open::{CLIENT_BUSY, HalfOpenGauge, Place};
use super::outcome::record_end;
use super::request::{OwnedRequest, Prepared, prepare, transfer_config};
use super::runtime::Runtime;
use super::transfer_filter::{ClosedTransfer, attach_filter};

/// Serves one admitted request to the end on its own transfer socket (a new TID, bound by the
/// listener to the address the client asked).
pub async fn serve(
    req: OwnedRequest,
    peer: SocketAddr,
    socket: impl DatagramIo,
    rt: Arc<Runtime>,
    shared: Arc<Shared>,
    ticket: Ticket,
) {
    let op = match req.kind {
        Kind::Read => "read",
        Kind::Write => "write",
    };
    let span = tracing::info_span!(
        "transfer",
        %peer,
        file = %req.filename_lossy(),
        op,
        mode = tracing::field::Empty,
        blksize = tracing::field::Empty,
        windowsize = tracing::field::Empty,
        window = tracing::field::Empty,
        tsize = tracing::field::Empty,
    );
    serve_in_span(req, peer, socket, rt, shared, ticket)
        .instrument(span)
        .await;
}

async fn serve_in_span(
    req: OwnedRequest,
    peer: SocketAddr,
    socket: impl DatagramIo,
    rt: Arc<Runtime>,
    shared: Arc<Shared>,
    ticket: Ticket,
) {
    let metrics = &shared.metrics;
    let counters = attach_filter(&socket, &shared);
    let _collect = ClosedTransfer {
        filter: shared.kernel_filter.as_deref(),
        fd: socket.own_fd(),
    };
    let started = Instant::now();
    // Never past what the kernel filters were loaded to keep (a reload may have raised
    // max_blksize since), nor past the path MTU.
    let filter_cap = shared.kernel_filter.as_ref().map(|f| f.data_limit());
    let cap = match (blksize_cap(peer, &req, &rt), filter_cap) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let prepared = match prepare(&req, peer.ip(), cap, &rt, &shared.file_cache) {
        Ok(p) => p,
        Err(refused) => {
            // Count before answering, so whoever sees the ERROR also sees it counted.
            metrics.request(req.kind, refused.outcome);
            if refused.audit {
                warn!(target: "tftpd::audit", reason = %refused.detail, code = refused.wire.code.as_u16(), "request refused");
            } else {
                info!(reason = %refused.detail, code = refused.wire.code.as_u16(), "request refused");
            }
            send_error(&socket, peer, &refused.wire, metrics).await;
            return;
        }
    };
    let role = Role::Transfer {
        max_blksize: rt.config.protocol.largest_data(),
    };
    let screen = counters.map(|c| (role, c));
    let mut half_open = HalfOpenGauge::new(metrics);
    let mut ticket = Some(ticket);
    let prepared = match prepared {
        Prepared::Multicast {
            key,
            source,
            negotiated,
            blocks,
        } => {
            record_options(&Span::current(), "octet", &negotiated);
            // A group answers its members by the group's own rules; a multicast request
            // takes a confirmed place at once (multicast is off by default; see
            // docs/security.md).
            if ticket
                .as_mut()
                .is_some_and(|t| t.confirm(Instant::now()).is_err())
            {
                metrics.request(req.kind, RequestOutcome::Busy);
                send_error(&socket, peer, &CLIENT_BUSY, metrics).await;
                return;
            }
            half_open.end();
            let request = super::multicast::Request {
                key,
                source,
                negotiated,
                blocks,
                peer,
                ticket: ticket.take(),
            };
            match super::multicast::serve(request, &socket, screen, &rt, &shared).await {
                Ok(()) => return,
                // No group could be made: the same answer without `multicast`, by unicast.
                Err(fallback) => {
                    ticket = fallback.ticket;
                    Prepared::Read {
                        config: transfer_config(&fallback.negotiated, &rt, Kind::Read),
                        source: fallback.source,
                        negotiated: fallback.negotiated,
                        mode: crate::proto::mode::Mode::Octet,
                    }
                }
            }
        }
        p => p,
    };
    // Held to the end: the transfer's place under the concurrency limits.
    let Some(mut ticket) = ticket else { return };
    let _active = metrics.transfer_started();
    let span = Span::current();
    let now = Instant::now();
    let (kind, stats, outcome) = match prepared {
        Prepared::Read {
            config,
            mut source,
            negotiated,
            mode,
        } => {
            record_options(&span, mode.as_str(), &negotiated);
            if config.sliding {
                // The window the transfer really runs with: the server's default.
                span.record("windowsize", config.windowsize);
                span.record("window", "default");
            }
            info!("transfer started");
            super::file_io::prepare_source(&mut source, &rt.config.performance.file_io, &shared);
            let mut s = ReadSession {
                machine: ReadTransfer::new(config, now),
                source,
            };
            let mut place = Place::new(&mut ticket, &mut half_open);
            drive(&mut s, &socket, peer, screen, gso(&rt), &shared, &mut place).await;
            (Kind::Read, s.machine.stats(), s.machine.outcome().cloned())
        }
        Prepared::Write {
            config,
            sink,
            negotiated,
            mode,
        } => {
            record_options(&span, mode.as_str(), &negotiated);
            info!(target: "tftpd::audit", "upload started");
            let mut s = WriteSession {
                blksize: usize::from(config.blksize),
                machine: WriteTransfer::new(config, now),
                sink: Some(sink),
            };
            let mut place = Place::new(&mut ticket, &mut half_open);
            drive(&mut s, &socket, peer, screen, gso(&rt), &shared, &mut place).await;
            (Kind::Write, s.machine.stats(), s.machine.outcome().cloned())
        }
        // Served by its group above, or turned into a unicast read there.
        Prepared::Multicast { .. } => return,
    };
    let outcome = outcome.unwrap_or(Outcome::Aborted(SHUTTING_DOWN));
    record_end(metrics, kind, stats, &outcome, started.elapsed());
}

/// The largest block that fits the path MTU to `peer` (when `protocol.blksize_path_mtu`).
/// Not looked up for a request without `blksize`: the cap only bounds that option's answer,
/// and the default 512-byte block is what RFC 1350 clients get whatever the path.
fn blksize_cap(peer: SocketAddr, req: &OwnedRequest, rt: &Runtime) -> Option<u16> {
    let asks_blksize = crate::proto::options::requested(req.option_names(), OptionName::Blksize);
    if !rt.config.protocol.blksize_path_mtu || !asks_blksize {
        return None;
    }
    match crate::io::path_mtu::path_mtu(peer) {
        Ok(Some(mtu)) => {
            let block = crate::io::path_mtu::max_block(mtu, peer);
            // Below the RFC 2348 minimum the path is odd; leave the configured cap alone.
            u16::try_from(block)
                .ok()
                .filter(|b| *b >= 8)
                .or(Some(u16::MAX))
        }
        Ok(None) => None,
        Err(e) => {
            debug!(error = %e, "path MTU unknown; blksize not clamped");
            None
        }
    }
}

fn record_options(span: &Span, mode: &str, n: &crate::proto::options::Negotiated) {
    span.record("mode", mode);
    span.record("blksize", n.blksize);
    span.record("windowsize", n.windowsize);
    if let Some(t) = n.tsize {
        span.record("tsize", t);
    }
}
