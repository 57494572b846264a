//! What the read machine gives out, the `poll_*` side of the sans-IO contract: the
//! datagrams to send (with the shell's views of that queue), when to call `handle_timeout`
//! next, how the download ended and its counters.

use std::time::Instant;

use super::{Pending, Phase, ReadTransfer};
use crate::proto::transfer::{Outcome, TransferStats};
use crate::proto::transmit::{Transmit, TransmitKind};

impl ReadTransfer {
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
                Pending::Block(i) => i
                    .checked_sub(self.base)
                    .and_then(|o| self.window.get(usize::try_from(o).ok()?))
                    .map_or(0, Vec::len),
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
        loop {
            match self.pending.pop_front()? {
                Pending::Oack => {
                    let oack = self.cfg.oack.as_deref()?;
                    self.oack_sent = true;
                    return Some(Transmit::new(oack, TransmitKind::Oack));
                }
                Pending::Error => {
                    let (code, d) = self.error.as_ref()?;
                    return Some(Transmit::new(d, TransmitKind::Error(*code)));
                }
                Pending::Block(index) => {
                    let Some(offset) = index.checked_sub(self.base) else {
                        continue;
                    };
                    if offset >= self.window.len() as u64 {
                        continue;
                    }
                    if index <= self.highest_sent {
                        self.stats.retransmits += 1;
                        // Karn's rule: this block's ACK no longer times one trip.
                        if let Some(at) = self.sent_at.get_mut(offset as usize) {
                            *at = None;
                        }
                    } else {
                        self.highest_sent = index;
                    }
                    let d = self.window.get(offset as usize)?;
                    return Some(Transmit::new(d, TransmitKind::Data { block: index }));
                }
            }
        }
    }

    /// When `handle_timeout` must next be called; `None` when nothing is outstanding.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase == Phase::Done {
            return None;
        }
        self.pacing.next(self.deadline)
    }

    /// How the transfer ended, once it has.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// True once the transfer has ended and everything queued has been sent.
    pub fn is_finished(&self) -> bool {
        self.outcome.is_some() && self.pending.is_empty()
    }

    /// The transfer's counters so far.
    pub fn stats(&self) -> TransferStats {
        self.stats
    }
}
