//! The transfer loop, the same for every transfer and every backend: produce what the
//! protocol machine asks for (file blocks, an upload's writes), send what it gives out (one
//! datagram straight from its buffer, or a window through the batch in GSO runs), then wait
//! for a datagram, the deadline or the drain. Generic over the backend ([`DatagramIo`]) and
//! over the two kinds of transfer ([`Session`]).

use std::net::SocketAddr;
use std::time::Instant;

use tracing::{debug, info, warn};

use crate::filter::{self, FilterCounters, Role};
use crate::io::alarms::Alarms;
use crate::io::batch::Batch;
use crate::io::datagram::{self, DatagramIo, Waited};
use crate::io::file::{BlockSource, UploadSink};
use crate::logging::error_chain;
use crate::metrics::{DropReason, Kind, Metrics};
use crate::proto::Transmit;
use crate::proto::packet::DATA_HEADER_LEN;
use crate::proto::read::ReadTransfer;
use crate::proto::transfer::Transfer;
use crate::proto::write::WriteTransfer;

use super::Shared;
use super::error_reply::{READ_FAILED, SHUTTING_DOWN, UNKNOWN_TID, send_error};
use super::half_open::Place;
use super::runtime::Runtime;

/// What the driver needs beyond the protocol machine: file work and datagram handling,
/// which differ between downloads and uploads.
pub(super) trait Session {
    /// Downloads or uploads, as the metrics name them.
    const KIND: Kind;
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

pub(super) struct ReadSession {
    pub(super) machine: ReadTransfer,
    pub(super) source: BlockSource,
}

/// A download only receives ACKs (4 bytes) and ERRORs; a longer ERROR text is cut, which
/// loses nothing that matters.
const READ_RECV_CAPACITY: usize = 1024;

impl Session for ReadSession {
    const KIND: Kind = Kind::Read;
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

pub(super) struct WriteSession {
    pub(super) machine: WriteTransfer,
    pub(super) blksize: usize,
    /// Taken when committed; dropping an uncommitted sink removes its temp file.
    pub(super) sink: Option<UploadSink>,
}

impl Session for WriteSession {
    const KIND: Kind = Kind::Write;
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

/// Whether windows go out by UDP GSO: chosen from the transfer's config snapshot (so SIGHUP
/// applies to new transfers) and what the kernel supports.
pub(super) fn gso(rt: &Runtime) -> bool {
    rt.config.performance.batching.gso && crate::fastpath::support().gso
}

/// The transfer loop: produce, send, then wait for a datagram, the deadline or the drain.
/// `gso`: windows of equal-size DATA go in one call, until the kernel refuses one.
pub(super) async fn drive<S: Session>(
    s: &mut S,
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
    // Payload bytes already added to the byte counters.
    let mut counted = 0;
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
                // The byte counters move as blocks are acknowledged (or received), not when
                // the transfer ends: a 40 MiB boot image shows up in the rate while it runs.
                let delivered = s.machine().stats().bytes;
                if delivered > counted {
                    shared.metrics.bytes(S::KIND, delivered - counted);
                    counted = delivered;
                }
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
