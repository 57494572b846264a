//! The write-request (upload) state machine: RFC 1350 with OACK (RFC 2347), windows
//! (RFC 7440) and a dally after the final ACK.
//!
//! The shell hands in datagrams from the client's TID; `handle_datagram` returns the payload
//! of each new in-order block for the shell to write. ACKs are queued at once but sent only
//! when the shell drains `poll_transmit`, so a failed write (or a failed commit after
//! `poll_upload_complete`) can still be turned into an ERROR with `abort` before the client
//! is told the data arrived.

use std::collections::VecDeque;
use std::time::Instant;

use super::error::{ErrorCode, WireError};
use super::packet::{Packet, ack};
use super::transfer::{
    OnTimeout, Outcome, Pacing, TIMED_OUT, TOO_LONG, TransferConfig, TransferStats, error_datagram,
};
use super::transmit::{Transmit, TransmitKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Receiving DATA.
    Receiving,
    /// The final block has arrived and been acknowledged; re-ACK it if the client resends
    /// it because our ACK was lost, until the dally deadline.
    Dallying,
    /// Finished.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Oack,
    Ack(u16),
    Error,
}

/// The ERROR for a DATA block larger than the negotiated block size.
const OVERSIZED_BLOCK: WireError =
    WireError::new(ErrorCode::IllegalOperation, "block larger than blksize");

/// One upload, from the first ACK 0 or OACK to the end of the dally.
#[derive(Debug)]
pub struct WriteTransfer {
    cfg: TransferConfig,
    phase: Phase,
    /// The next block expected, counting the first as 1.
    expected: u64,
    /// In-order blocks received since the last ACK.
    in_window: u16,
    /// An out-of-order block was already answered since the last progress (window > 1).
    gap_acked: bool,
    upload_complete: bool,
    pending: VecDeque<Pending>,
    ack_buf: [u8; 4],
    /// The ERROR to send, with its code.
    error: Option<(ErrorCode, Vec<u8>)>,
    deadline: Option<Instant>,
    /// When the last ACK that asked for new DATA was queued, while it has been sent once:
    /// the next in-order DATA is then a round-trip sample. `None` once resent (Karn's rule).
    ack_at: Option<Instant>,
    retries: u32,
    pacing: Pacing,
    outcome: Option<Outcome>,
    stats: TransferStats,
}

impl WriteTransfer {
    /// Starts an upload: the first datagram out is the OACK, or ACK 0 without options.
    pub fn new(cfg: TransferConfig, now: Instant) -> Self {
        let first = if cfg.oack.is_some() {
            Pending::Oack
        } else {
            Pending::Ack(0)
        };
        let pacing = Pacing::new(&cfg, now);
        Self {
            deadline: Some(now + pacing.timeout(&cfg)),
            pacing,
            cfg,
            phase: Phase::Receiving,
            expected: 1,
            in_window: 0,
            gap_acked: false,
            upload_complete: false,
            pending: VecDeque::from([first]),
            ack_buf: [0; 4],
            error: None,
            ack_at: Some(now),
            retries: 0,
            outcome: None,
            stats: TransferStats::default(),
        }
    }

    /// Handles a datagram from the client's TID. Returns the payload of a new in-order block,
    /// which the shell must write before draining `poll_transmit`.
    pub fn handle_datagram<'a>(&mut self, now: Instant, datagram: &'a [u8]) -> Option<&'a [u8]> {
        if self.phase == Phase::Done {
            self.stats.ignored += 1;
            return None;
        }
        match Packet::decode(datagram) {
            Ok(Packet::Data { block, data }) => self.handle_data(now, block, data),
            Ok(Packet::Error { code, message }) => {
                // After the final ACK the upload is already in place; a late ERROR from the
                // client cannot undo it.
                let outcome = if self.phase == Phase::Dallying {
                    Outcome::Completed
                } else {
                    Outcome::PeerError {
                        code,
                        message: String::from_utf8_lossy(message).into_owned(),
                    }
                };
                self.finish(outcome);
                None
            }
            _ => {
                self.stats.ignored += 1;
                None
            }
        }
    }

    fn handle_data<'a>(&mut self, now: Instant, block: u16, data: &'a [u8]) -> Option<&'a [u8]> {
        let wire = |i: u64| self.cfg.rollover.wire_block(i);
        if self.phase == Phase::Dallying {
            if block == wire(self.expected - 1) {
                self.pending.push_back(Pending::Ack(block));
            } else {
                self.stats.ignored += 1;
            }
            return None;
        }
        if block != wire(self.expected) {
            self.stats.ignored += 1;
            // With an adaptive timer a lock-step upload re-sends its ACK on that timer, a few
            // round trips after it, so a duplicate needs no answer; answering each would let
            // a client that resends DATA on a repeated ACK (the Sorcerer's Apprentice, RFC
            // 1123 §4.2.3.1) turn every early expiry into a doubled stream for good.
            if self.cfg.windowsize == 1 && self.pacing.adapts(&self.cfg) {
                return None;
            }
            // A duplicate or a gap: tell the client where we are. In lock-step every
            // duplicate is answered (RFC 1350: our ACK was lost); with a window only the
            // first, so a retransmitted window does not cause a burst of ACKs (RFC 7440 §4).
            if self.cfg.windowsize == 1 || !self.gap_acked {
                self.gap_acked = true;
                self.in_window = 0;
                self.queue_last_ack();
            }
            return None;
        }
        if data.len() > usize::from(self.cfg.blksize) {
            self.abort(OVERSIZED_BLOCK);
            return None;
        }
        self.expected += 1;
        self.pacing.confirmed = true;
        self.pacing.sample(self.ack_at.take(), now);
        self.stats.bytes += data.len() as u64;
        self.retries = 0;
        self.gap_acked = false;
        self.in_window += 1;
        self.deadline = Some(now + self.pacing.timeout(&self.cfg));
        if data.len() < usize::from(self.cfg.blksize) {
            // Two timeouts: a client whose retransmit timer equals ours resends the final
            // DATA one timeout after it sent it, which arrives just as a one-timeout dally
            // ends; over a lossy link that race lost a final ACK to every twentieth upload.
            self.deadline = Some(now + 2 * self.cfg.timeout);
            self.phase = Phase::Dallying;
            self.upload_complete = true;
            self.pending.clear();
            self.pending.push_back(Pending::Ack(block));
        } else if self.in_window >= self.cfg.windowsize {
            self.in_window = 0;
            self.pending.clear();
            self.pending.push_back(Pending::Ack(block));
            self.ack_at = Some(now);
        }
        Some(data)
    }

    /// Queues an ACK of the last in-order block, or the first packet again if none arrived.
    fn queue_last_ack(&mut self) {
        self.ack_at = None;
        let next = if self.expected == 1 && self.cfg.oack.is_some() {
            Pending::Oack
        } else {
            Pending::Ack(self.cfg.rollover.wire_block(self.expected - 1))
        };
        if self.pending.back() != Some(&next) {
            self.pending.push_back(next);
        }
    }

    /// Handles the passing of time; call it when `poll_timeout` has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase == Phase::Receiving && self.pacing.expired(now) {
            self.fail(TOO_LONG, Outcome::Aborted(TOO_LONG));
            return;
        }
        let Some(deadline) = self.deadline else {
            return;
        };
        if now < deadline {
            return;
        }
        match self.phase {
            Phase::Receiving => {
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
                self.in_window = 0;
                self.stats.retransmits += 1;
                self.queue_last_ack();
                self.deadline = Some(now + self.pacing.timeout(&self.cfg));
            }
            Phase::Dallying => self.finish(Outcome::Completed),
            Phase::Done => {}
        }
    }

    /// True once, when the final block has been handed out: the shell must now commit the
    /// upload, and call `abort` if that fails, before draining `poll_transmit`.
    pub fn poll_upload_complete(&mut self) -> bool {
        std::mem::take(&mut self.upload_complete)
    }

    /// Ends the transfer with an ERROR to the client (a failed write or commit, a limit).
    /// Still possible while dallying (the commit may fail after the final block); an ended
    /// upload is left alone: its outcome stands, and a peer it left without a word
    /// (unanswered, evicted: the request may have been forged) gets no ERROR now either.
    pub fn abort(&mut self, error: WireError) {
        if self.phase == Phase::Done {
            return;
        }
        self.fail(error.clone(), Outcome::Aborted(error));
    }

    /// True once the client has sent DATA 1.
    pub fn is_confirmed(&self) -> bool {
        self.pacing.confirmed
    }

    /// True once the unconfirmed upload has sent all it may and only waits.
    pub fn is_quiet(&self) -> bool {
        self.phase != Phase::Done && self.pacing.is_quiet(&self.cfg, self.retries)
    }

    /// Ends a half-open upload without sending anything; false (and nothing changes) once
    /// the client has sent data or the transfer has ended.
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
        self.upload_complete = false;
        self.pending.retain(|p| *p == Pending::Error);
        self.outcome.get_or_insert(outcome);
    }

    /// At most how many datagrams [`poll_transmit`](Self::poll_transmit) gives out now.
    pub fn pending_transmits(&self) -> usize {
        self.pending.len()
    }

    /// The bytes of the datagrams [`poll_transmit`](Self::poll_transmit) would give out now.
    pub fn pending_len(&self) -> usize {
        self.pending
            .iter()
            .map(|p| match p {
                Pending::Oack => self.cfg.oack.as_ref().map_or(0, Vec::len),
                Pending::Error => self.error.as_ref().map_or(0, |(_, d)| d.len()),
                Pending::Ack(_) => 4,
            })
            .sum()
    }

    /// Drops what is queued to send, as if it were lost on the way: the retransmit timer
    /// sends it again later (the shell does this when the reflection budget is spent).
    pub fn discard_transmits(&mut self) {
        self.pending.clear();
    }

    /// The next datagram to send to the client.
    pub fn poll_transmit(&mut self) -> Option<Transmit<'_>> {
        match self.pending.pop_front()? {
            Pending::Oack => Some(Transmit::new(self.cfg.oack.as_deref()?, TransmitKind::Oack)),
            Pending::Error => {
                let (code, d) = self.error.as_ref()?;
                Some(Transmit::new(d, TransmitKind::Error(*code)))
            }
            Pending::Ack(block) => {
                self.ack_buf = ack(block);
                Some(Transmit::new(&self.ack_buf, TransmitKind::Ack { block }))
            }
        }
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Receiving => self.pacing.next(self.deadline),
            Phase::Dallying => self.deadline,
            Phase::Done => None,
        }
    }

    /// How the transfer ended, once it has.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// True once the transfer has ended and everything queued has been sent.
    pub fn is_finished(&self) -> bool {
        self.outcome.is_some() && self.pending.is_empty()
    }

    /// True when every byte has arrived (the transfer may still be dallying).
    pub fn is_complete(&self) -> bool {
        matches!(self.phase, Phase::Dallying) || self.outcome == Some(Outcome::Completed)
    }

    /// The transfer's counters so far.
    pub fn stats(&self) -> TransferStats {
        self.stats
    }
}

super::transfer::impl_transfer!(WriteTransfer);

#[cfg(test)]
mod tests;
