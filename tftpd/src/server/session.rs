//! Drives one transfer: the one place where the protocol core meets sockets, files, timers,
//! logs and metrics. Each transfer runs in its own task, on its own socket (a new TID), in a
//! span that records its options, bytes, duration and outcome.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tracing::{Instrument as _, Span, debug, info, warn};

use crate::filter::{self, FilterCounters, Role};
use crate::io::alarms::Alarms;
use crate::io::batch::Batch;
use crate::io::datagram::{self, DatagramIo, Waited};
use crate::io::file::{BlockSource, UploadSink};
use crate::metrics::{DropReason, Kind, Metrics, RequestOutcome};
use crate::proto::options::OptionName;
use crate::proto::packet::DATA_HEADER_LEN;
use crate::proto::read::ReadTransfer;
use crate::proto::transfer::Transfer;
use crate::proto::write::WriteTransfer;
use crate::proto::{Outcome, Transmit};

use super::Shared;
use super::admission::Ticket;
use super::error_reply::{READ_FAILED, SHUTTING_DOWN, UNKNOWN_TID, send_error};
use super::half_open::{CLIENT_BUSY, HalfOpenGauge, Place};
use super::outcome::request_outcome;
use super::request::{OwnedRequest, Prepared, prepare, transfer_config};
use super::runtime::Runtime;
use super::transfer_filter::{ClosedTransfer, attach_filter};
use crate::logging::error_chain;

/// What the driver needs beyond the protocol machine: file work and datagram handling,
/// which differ between downloads and uploads.
trait Session {
    /// The protocol machine being driven.
    type Machine: Transfer;
    fn machine(&mut self) -> &mut Self::Machine;
    /// The largest datagram worth receiving whole: anything longer is wrong for this
    /// transfer anyway, and a small buffer keeps an idle transfer's memory small.
    fn recv_capacity(&self) -> usize;
    /// Does the file work the machine asks for (read blocks; nothing for uploads).
    fn prepare_output(&mut self, now: Instant);
    fn handle_datagram(&mut self, now: Instant, datagram: &[u8]);
    /// Takes this turn's datagrams from the machine into `batch`.
    fn collect(&mut self, batch: &mut Batch, metrics: &Metrics) {
        let m = self.machine();
        while let Some(t) = m.poll_transmit() {
            count_error(&t, metrics);
            batch.push(t.datagram);
        }
    }
}

struct ReadSession {
    machine: ReadTransfer,
    source: BlockSource,
}

/// A download only receives ACKs (4 bytes) and ERRORs; a longer ERROR text is cut, which
/// loses nothing that matters.
const READ_RECV_CAPACITY: usize = 1024;

impl Session for ReadSession {
    type Machine = ReadTransfer;
    fn machine(&mut self) -> &mut ReadTransfer {
        &mut self.machine
    }
    fn recv_capacity(&self) -> usize {
        READ_RECV_CAPACITY
    }
    fn prepare_output(&mut self, now: Instant) {
        while let Some(req) = self.machine.poll_block_request() {
            let buf = self.machine.take_buffer();
            match self.source.read_block_into(req.index, req.max_len, buf) {
                Ok(datagram) => self.machine.handle_block(now, datagram),
                Err(e) => {
                    warn!(error = %e, block = req.index, "reading the file failed");
                    self.machine.abort(READ_FAILED);
                    return;
                }
            }
        }
    }
    fn handle_datagram(&mut self, now: Instant, d: &[u8]) {
        self.machine.handle_datagram(now, d);
    }
}

struct WriteSession {
    machine: WriteTransfer,
    blksize: usize,
    /// Taken when committed; dropping an uncommitted sink removes its temp file.
    sink: Option<UploadSink>,
}

impl Session for WriteSession {
    type Machine = WriteTransfer;
    fn machine(&mut self) -> &mut WriteTransfer {
        &mut self.machine
    }
    fn recv_capacity(&self) -> usize {
        // One byte more than the largest valid DATA, so an oversized block is seen as such.
        self.blksize + DATA_HEADER_LEN + 1
    }
    fn prepare_output(&mut self, _now: Instant) {}
    fn handle_datagram(&mut self, now: Instant, d: &[u8]) {
        let Some(payload) = self.machine.handle_datagram(now, d) else {
            return;
        };
        let Some(sink) = self.sink.as_mut() else {
            return;
        };
        if let Err(e) = sink.write(payload) {
            warn!(error = %error_chain(&e), "writing the upload failed");
            self.machine.abort(e.wire_error());
            self.sink = None;
            return;
        }
        if self.machine.poll_upload_complete() {
            let Some(sink) = self.sink.take() else { return };
            // fsync + rename: slow, so off the async worker. The final ACK is only sent
            // after this succeeds, so the client is never told of an upload that was lost.
            match tokio::task::block_in_place(|| sink.commit()) {
                Ok(bytes) => info!(target: "tftpd::audit", bytes, "upload stored"),
                Err(e) => {
                    warn!(error = %error_chain(&e), "committing the upload failed");
                    self.machine.abort(e.wire_error());
                }
            }
        }
    }
}

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
    let duration = started.elapsed();
    metrics.bytes(kind, stats.bytes);
    metrics.retransmits(stats.retransmits);
    metrics.transfer_duration(kind, duration);
    metrics.dropped(DropReason::Ignored, stats.ignored);
    metrics.request(kind, request_outcome(&outcome));
    let duration_ms = duration.as_secs_f64() * 1e3;
    match &outcome {
        Outcome::Completed | Outcome::SizeProbe => info!(
            bytes = stats.bytes,
            retransmits = stats.retransmits,
            duration_ms,
            outcome = outcome.label(),
            "transfer finished"
        ),
        Outcome::PeerError { code, message } => info!(
            bytes = stats.bytes,
            duration_ms,
            outcome = outcome.label(),
            peer_code = code.as_u16(),
            peer_message = %message,
            "transfer finished"
        ),
        Outcome::TimedOut | Outcome::Aborted(_) => warn!(
            bytes = stats.bytes,
            retransmits = stats.retransmits,
            duration_ms,
            outcome = outcome.label(),
            "transfer finished"
        ),
        // Not a warning: under a flood of forged requests there is one per request.
        Outcome::Unanswered | Outcome::Evicted => {
            debug!(duration_ms, outcome = outcome.label(), "transfer finished")
        }
    }
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

/// Whether windows go out by UDP GSO: chosen from the transfer's config snapshot (so SIGHUP
/// applies to new transfers) and what the kernel supports.
fn gso(rt: &Runtime) -> bool {
    rt.config.performance.batching.gso && crate::fastpath::support().gso
}

/// The transfer loop: produce, send, then wait for a datagram, the deadline or the drain.
/// `gso`: windows of equal-size DATA go in one call, until the kernel refuses one.
async fn drive(
    s: &mut impl Session,
    socket: &impl DatagramIo,
    peer: SocketAddr,
    screen: Option<(Role, &FilterCounters)>,
    mut gso: bool,
    shared: &Shared,
    place: &mut Place<'_, '_>,
) {
    let mut buf = vec![0u8; s.recv_capacity()];
    let mut batch = Batch::default();
    let mut alarms = Alarms::new(place.signal());
    loop {
        let now = Instant::now();
        s.prepare_output(now);
        place.pay_for_turn(s.machine(), peer, now);
        // A turn with one datagram (every lock-step block, OACK, ACK and ERROR) goes straight
        // from the machine's buffer: no copy into the batch, which then holds no second copy
        // of an idle transfer's block.
        if s.machine().pending_transmits() == 1 {
            if let Some(t) = s.machine().poll_transmit() {
                count_error(&t, &shared.metrics);
                let report = datagram::send_one(socket, t.datagram, peer).await;
                shared.metrics.sends(&report);
                if let Some(e) = &report.failed {
                    debug!(error = %e, "send failed");
                }
            }
        } else {
            send_turn(s, socket, peer, &mut gso, &shared.metrics, &mut batch).await;
        }
        let m = s.machine();
        if m.is_finished() {
            return;
        }
        let deadline = m.poll_timeout();
        match socket.wait(&mut buf, deadline, &mut alarms).await {
            Waited::Datagram(n, _)
                if screen.is_some_and(|(r, c)| !filter::admit(r, &buf[..n], c)) => {}
            Waited::Datagram(n, from) if from == peer => {
                let now = Instant::now();
                s.handle_datagram(now, &buf[..n]);
                place.after_datagram(s.machine(), now);
            }
            Waited::Datagram(_, from) => {
                // Another TID: answer it and carry on; the transfer is not disturbed. A
                // source the config does not serve ([access], ebpf.xdp_deny) gets nothing.
                debug!(%from, "datagram from an unknown TID");
                shared.metrics.dropped(DropReason::UnknownTid, 1);
                if shared.runtime.borrow().config.serves(from.ip()) {
                    send_error(socket, from, &UNKNOWN_TID, &shared.metrics).await;
                }
            }
            // ICMP errors (e.g. port unreachable) surface here on some systems; the
            // retransmit timer decides whether the client is gone.
            Waited::Failed(e) => debug!(error = %e, "receive failed"),
            Waited::Deadline => {
                s.machine().handle_timeout(Instant::now());
                place.after_timeout(s.machine());
            }
            Waited::Abort => place.on_abort(s.machine(), SHUTTING_DOWN),
        }
    }
}

/// Sends one turn's datagrams through the batch (a window in GSO runs while `gso`).
async fn send_turn(
    s: &mut impl Session,
    socket: &impl DatagramIo,
    peer: SocketAddr,
    gso: &mut bool,
    metrics: &Metrics,
    batch: &mut Batch,
) {
    batch.clear();
    s.collect(batch, metrics);
    if batch.is_empty() {
        return;
    }
    let report = datagram::send_batch(socket, batch, peer, *gso).await;
    metrics.sends(&report);
    if let Some(e) = &report.gso_refused {
        warn!(error = %e, "the kernel refused a UDP GSO send; this transfer sends one datagram per call");
        *gso = false;
    }
    // A failed send is like a lost datagram: the retransmit timer covers it.
    if let Some(e) = &report.failed {
        debug!(error = %e, "send failed");
    }
}

/// Counts an ERROR about to be sent, by its code.
fn count_error(t: &Transmit<'_>, metrics: &Metrics) {
    if let Some(code) = t.error_code() {
        metrics.error_sent(code);
    }
}
