//! The read-request (download) state machine: RFC 1350 with the RFC 1123 §4.2.3.1 fix, OACK
//! (RFC 2347) and windows with go-back-N (RFC 7440), or a sliding window when the window is
//! the server's default rather than negotiated (see [`TransferConfig::sliding`]).
//!
//! The shell drives it: it hands in datagrams from the client's TID (`handle_datagram`),
//! timeouts (`handle_timeout`) and file blocks (`handle_block`, after `poll_block_request`),
//! and sends whatever `poll_transmit` gives out. The machine keeps the datagrams of the
//! unacknowledged window so a retransmission never re-reads or re-converts the file.
//! The input side is here; what goes out, and when, is in `output.rs`.

use std::collections::VecDeque;
use std::time::Instant;

use super::error::ErrorCode;
use super::error::WireError;
use super::packet::{DATA_HEADER_LEN, Packet, data_header};
use super::transfer::{
    OnTimeout, Outcome, Pacing, TIMED_OUT, TOO_LONG, TransferConfig, TransferStats, error_datagram,
};

/// The ERROR for an ACK of a block not sent yet: no real client can send one, so it comes
/// from someone predicting block numbers blind (a spoofer pulling DATA towards a victim).
const ACK_AHEAD: WireError = WireError::new(
    ErrorCode::IllegalOperation,
    "acknowledgement of a block not sent",
);

/// The shell's next job: read block `index` (1-based) of at most `max_len` payload bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRequest {
    /// Which block, counting the first as 1 (never wraps).
    pub index: u64,
    /// The payload size to read: exactly this many bytes unless the file ends first.
    pub max_len: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// An OACK was sent; waiting for ACK 0.
    AwaitOackAck,
    /// Sending DATA.
    Sending,
    /// Finished; `outcome` says how.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Oack,
    Block(u64),
    Error,
}

/// One download, from the first OACK or DATA to the final ACK.
#[derive(Debug)]
pub struct ReadTransfer {
    cfg: TransferConfig,
    phase: Phase,
    /// Encoded DATA datagrams of blocks `base .. base + window.len()`.
    window: VecDeque<Vec<u8>>,
    /// When each block of `window` was handed in to be sent, while it has been sent at most
    /// once: its ACK is a round-trip sample. `None` once resent (Karn's rule).
    sent_at: VecDeque<Option<Instant>>,
    /// When the OACK was first queued, until it is resent: ACK 0 is then a sample.
    oack_at: Option<Instant>,
    /// The blocks a sliding window may have in flight now (≤ `windowsize`): halved by a
    /// timeout, grown by one for each window's worth of blocks acknowledged (AIMD).
    cwnd: u16,
    /// Blocks acknowledged since `cwnd` last grew.
    acked_since_growth: u64,
    /// The oldest unacknowledged block.
    base: u64,
    /// The highest block transmitted so far (0: none).
    highest_sent: u64,
    /// The final (short) block, once the shell has handed it in.
    last: Option<u64>,
    pending: VecDeque<Pending>,
    /// The ERROR to send, with its code.
    error: Option<(ErrorCode, Vec<u8>)>,
    deadline: Option<Instant>,
    retries: u32,
    pacing: Pacing,
    outcome: Option<Outcome>,
    stats: TransferStats,
    /// Buffers of acknowledged blocks (at most a window's worth), for the shell to read the
    /// next blocks into instead of allocating one per block.
    spent: Vec<Vec<u8>>,
    /// `poll_transmit` has given out the OACK at least once.
    oack_sent: bool,
    /// The OACK answers `tsize`: the client learns the file's size from it.
    oack_tells_size: bool,
}

impl ReadTransfer {
    /// Starts a download. With an OACK configured it is sent first and DATA waits for ACK 0;
    /// otherwise DATA 1 goes out as soon as the shell hands in block 1.
    pub fn new(cfg: TransferConfig, now: Instant) -> Self {
        let pacing = Pacing::new(&cfg, now);
        let oack_tells_size = cfg.oack.as_deref().is_some_and(probe::tells_size);
        let (phase, pending, deadline) = if cfg.oack.is_some() {
            let pending = VecDeque::from([Pending::Oack]);
            (
                Phase::AwaitOackAck,
                pending,
                Some(now + pacing.timeout(&cfg)),
            )
        } else {
            (Phase::Sending, VecDeque::new(), None)
        };
        Self {
            window: VecDeque::with_capacity(usize::from(cfg.windowsize)),
            sent_at: VecDeque::with_capacity(usize::from(cfg.windowsize)),
            oack_at: cfg.oack.is_some().then_some(now),
            cwnd: cfg.windowsize,
            acked_since_growth: 0,
            cfg,
            phase,
            base: 1,
            highest_sent: 0,
            last: None,
            pending,
            error: None,
            deadline,
            retries: 0,
            pacing,
            outcome: None,
            stats: TransferStats::default(),
            spent: Vec::new(),
            oack_sent: false,
            oack_tells_size,
        }
    }

    /// A buffer to read the next block into: one an acknowledged block used, when there is
    /// one (no allocation), else a new empty one. A used one still holds that block's bytes,
    /// for the reader to overwrite: emptying it here would have the reader zero the whole
    /// block again before its read fills it.
    pub fn take_buffer(&mut self) -> Vec<u8> {
        self.spent.pop().unwrap_or_default()
    }

    /// The block the shell should read next, if the window has room for it.
    pub fn poll_block_request(&self) -> Option<BlockRequest> {
        // One block until the client has answered: a server default window (`sliding`, no
        // OACK first) must not send a forged request's "source" a whole window. A
        // negotiated window waits for the ACK of its OACK anyway.
        let window = match (self.cfg.sliding, self.pacing.confirmed) {
            (true, false) => 1,
            (true, true) => self.cwnd,
            (false, _) => self.cfg.windowsize,
        };
        let room = self.window.len() < usize::from(window);
        (self.phase == Phase::Sending && self.last.is_none() && room).then(|| BlockRequest {
            index: self.base + self.window.len() as u64,
            max_len: usize::from(self.cfg.blksize),
        })
    }

    /// Hands in the block last asked for. `datagram[..4]` is room for the header, which is
    /// filled in here; the rest is the payload. A payload shorter than blksize (possibly
    /// empty) is the final block.
    pub fn handle_block(&mut self, now: Instant, mut datagram: Vec<u8>) {
        let Some(request) = self.poll_block_request() else {
            return;
        };
        // Defensive: a shell bug must not put a malformed DATA on the wire.
        datagram.resize(
            datagram
                .len()
                .clamp(DATA_HEADER_LEN, DATA_HEADER_LEN + request.max_len),
            0,
        );
        let wire = self.cfg.rollover.wire_block(request.index);
        datagram[..DATA_HEADER_LEN].copy_from_slice(&data_header(wire));
        if datagram.len() - DATA_HEADER_LEN < request.max_len {
            self.last = Some(request.index);
        }
        self.window.push_back(datagram);
        self.sent_at.push_back(Some(now));
        self.pending.push_back(Pending::Block(request.index));
        let timeout = self.pacing.timeout(&self.cfg);
        self.deadline.get_or_insert(now + timeout);
    }

    /// Handles a datagram from the client's TID.
    pub fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) {
        if self.phase == Phase::Done {
            self.stats.ignored += 1;
            return;
        }
        match Packet::decode(datagram) {
            Ok(Packet::Ack { block }) => self.handle_ack(now, block),
            Ok(Packet::Error { code, .. })
                if code == ErrorCode::OptionRefused && self.size_told() =>
            {
                self.finish(Outcome::SizeProbe);
            }
            Ok(Packet::Error { code, message }) => {
                self.finish(Outcome::PeerError {
                    code,
                    message: String::from_utf8_lossy(message).into_owned(),
                });
            }
            // Anything else from the client is not part of a download; drop it.
            _ => self.stats.ignored += 1,
        }
    }

    fn handle_ack(&mut self, now: Instant, block: u16) {
        if self.phase == Phase::AwaitOackAck {
            if block == 0 {
                self.phase = Phase::Sending;
                self.pacing.confirmed = true;
                self.pacing.sample(self.oack_at.take(), now);
                self.pending.clear();
                self.retries = 0;
                self.deadline = None;
            } else {
                self.stats.ignored += 1;
            }
            return;
        }
        // Only an ACK of a block we have sent moves the window. Anything else, in
        // particular a duplicate ACK of the block before the window, is ignored: answering
        // it would start the Sorcerer's Apprentice (RFC 1123 §4.2.3.1).
        let sent_in_window = self.highest_sent.saturating_sub(self.base - 1);
        let Some(k) = (0..sent_in_window.min(self.window.len() as u64))
            .find(|&k| self.cfg.rollover.wire_block(self.base + k) == block)
        else {
            if self.acks_unsent(block) {
                self.abort(ACK_AHEAD);
            } else {
                self.stats.ignored += 1;
            }
            return;
        };
        let acked = self.base + k;
        self.pacing.confirmed = true;
        self.pacing
            .sample(self.sent_at.get(k as usize).copied().flatten(), now);
        self.sent_at.drain(..=k as usize);
        self.grow_window(k + 1);
        let keep = usize::from(self.cfg.windowsize);
        for d in self.window.drain(..=k as usize) {
            self.stats.bytes += (d.len() - DATA_HEADER_LEN) as u64;
            if self.spent.len() < keep {
                self.spent.push(d);
            }
        }
        self.base = acked + 1;
        self.retries = 0;
        if self.last == Some(acked) {
            self.finish(Outcome::Completed);
            return;
        }
        if self.cfg.sliding {
            // The client ACKs every block: the blocks after `acked` are in flight already,
            // and the room just freed is filled through `poll_block_request`.
            self.deadline = Some(now + self.pacing.timeout(&self.cfg));
            return;
        }
        // RFC 7440 §4: an ACK short of the window's end starts a new window after it, so
        // blocks already sent beyond it go out again, in order.
        self.pending.clear();
        self.queue_sent_window();
        self.deadline = Some(now + self.pacing.timeout(&self.cfg));
    }

    /// Additive increase: a sliding window grows by one block for each window's worth of
    /// blocks acknowledged, back up to `windowsize`.
    fn grow_window(&mut self, acked: u64) {
        if self.cwnd >= self.cfg.windowsize {
            return;
        }
        self.acked_since_growth += acked;
        if self.acked_since_growth >= u64::from(self.cwnd) {
            self.acked_since_growth = 0;
            self.cwnd += 1;
        }
    }

    /// True when `block` is the wire number of one of the next `windowsize` blocks after
    /// the highest sent, which the client cannot have. Only one window ahead is compared,
    /// so a block number that rolled over cannot alias an old one.
    fn acks_unsent(&self, block: u16) -> bool {
        let ahead = u64::from(self.cfg.windowsize);
        (self.highest_sent + 1..=self.highest_sent + ahead)
            .any(|b| self.cfg.rollover.wire_block(b) == block)
    }

    /// Handles the passing of time; call it when `poll_timeout` has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase == Phase::Done {
            return;
        }
        if self.pacing.expired(now) {
            self.fail(TOO_LONG, Outcome::Aborted(TOO_LONG));
            return;
        }
        let Some(deadline) = self.deadline else {
            return;
        };
        if now < deadline {
            return;
        }
        match self.pacing.expire(&self.cfg, &mut self.retries) {
            OnTimeout::TimedOut => return self.fail(TIMED_OUT, Outcome::TimedOut),
            OnTimeout::Unanswered => return self.finish(Outcome::Unanswered),
            // Maybe a forged request: its "source" gets no third datagram.
            OnTimeout::Quiet => {
                self.deadline = Some(now + self.pacing.timeout(&self.cfg));
                return;
            }
            OnTimeout::Retransmit => {}
        }
        self.pending.clear();
        match self.phase {
            Phase::AwaitOackAck => {
                self.oack_at = None;
                self.pending.push_back(Pending::Oack);
            }
            // Go-back-N: resend the whole unacknowledged window (RFC 7440 §4).
            Phase::Sending => {
                // Multiplicative decrease: a loss on the path halves what a sliding window
                // puts on it. A negotiated window cannot shrink: its client acknowledges
                // only after `windowsize` blocks, and would wait out its own timer.
                // Only with adaptation on: off, the fixed timer behaves exactly as before.
                let adaptive = matches!(self.cfg.retransmit, super::Retransmit::Adaptive { .. });
                if self.cfg.sliding && adaptive {
                    self.cwnd = (self.cwnd / 2).max(1);
                    self.acked_since_growth = 0;
                }
                self.queue_sent_window();
            }
            Phase::Done => {}
        }
        self.deadline = Some(now + self.pacing.timeout(&self.cfg));
    }

    fn queue_sent_window(&mut self) {
        let end = self.base + self.window.len() as u64;
        self.pending.extend((self.base..end).map(Pending::Block));
    }

    /// Ends the transfer with an ERROR to the client, e.g. when reading the file failed. An
    /// ended transfer is left alone: its outcome stands, and a peer it left without a word
    /// (unanswered, evicted: the request may have been forged) gets no ERROR now either.
    pub fn abort(&mut self, error: WireError) {
        if self.phase == Phase::Done {
            return;
        }
        self.fail(error.clone(), Outcome::Aborted(error));
    }

    /// True once the client has acknowledged the OACK or a DATA block.
    pub fn is_confirmed(&self) -> bool {
        self.pacing.confirmed
    }

    /// True once the unconfirmed download has sent all it may and only waits.
    pub fn is_quiet(&self) -> bool {
        self.phase != Phase::Done && self.pacing.is_quiet(&self.cfg, self.retries)
    }

    /// Ends a half-open download without sending anything; false (and nothing changes)
    /// once the client has answered or the transfer has ended.
    pub fn evict(&mut self) -> bool {
        if self.pacing.confirmed || self.phase == Phase::Done {
            return false;
        }
        self.pending.clear();
        self.finish(Outcome::Evicted);
        true
    }

    fn fail(&mut self, error: WireError, outcome: Outcome) {
        self.pending.clear();
        self.error = Some((error.code, error_datagram(&error)));
        self.pending.push_back(Pending::Error);
        self.finish(outcome);
    }

    fn finish(&mut self, outcome: Outcome) {
        self.phase = Phase::Done;
        self.deadline = None;
        self.window.clear();
        self.sent_at.clear();
        self.pending.retain(|p| *p == Pending::Error);
        self.outcome.get_or_insert(outcome);
    }
}

super::transfer::impl_transfer!(ReadTransfer);

mod output;
mod probe;
#[cfg(test)]
mod size_probe;
#[cfg(test)]
mod tests;
