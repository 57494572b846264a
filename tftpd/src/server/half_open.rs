//! A transfer's side of admission while it runs: charging what it sends to a half-open peer
//! to the reflection budget, moving to the confirmed pool when the peer answers, and ending
//! quietly when evicted. `session::drive` calls these once per turn; the policy itself
//! lives in `admission`.

use std::net::SocketAddr;
use std::time::Instant;

use tracing::debug;

use crate::metrics::Metrics;
use crate::proto::transfer::Transfer;
use crate::proto::{ErrorCode, WireError};

use super::admission::{Refusal, Ticket};

/// Sent when a client's answer would put it over `limits.max_transfers_per_client`.
pub(super) const CLIENT_BUSY: WireError =
    WireError::new(ErrorCode::NotDefined, "too many transfers from this client");

/// IP and UDP header bytes of one datagram to `peer`: the budget counts what reaches the
/// wire, as an amplification factor does.
fn header_bytes(peer: SocketAddr) -> usize {
    if peer.ip().to_canonical().is_ipv4() {
        28
    } else {
        48
    }
}

/// Counts the transfer in `tftpd_half_open_transfers` until it is confirmed or ends.
#[derive(Debug)]
pub(super) struct HalfOpenGauge<'a> {
    metrics: &'a Metrics,
    counted: bool,
}

impl<'a> HalfOpenGauge<'a> {
    pub(super) fn new(metrics: &'a Metrics) -> Self {
        metrics.admission.half_open(1);
        Self {
            metrics,
            counted: true,
        }
    }

    /// The transfer is half-open no longer.
    pub(super) fn end(&mut self) {
        if std::mem::take(&mut self.counted) {
            self.metrics.admission.half_open(-1);
        }
    }
}

impl Drop for HalfOpenGauge<'_> {
    fn drop(&mut self) {
        self.end();
    }
}

/// A running transfer's admission ticket and its half-open gauge.
pub(super) struct Place<'t, 'm> {
    ticket: &'t mut Ticket,
    gauge: &'t mut HalfOpenGauge<'m>,
    /// The ticket was told the transfer is quiet.
    quiet: bool,
}

impl<'t, 'm> Place<'t, 'm> {
    pub(super) fn new(ticket: &'t mut Ticket, gauge: &'t mut HalfOpenGauge<'m>) -> Self {
        Self {
            ticket,
            gauge,
            quiet: false,
        }
    }

    /// The signal the transfer's waits end on.
    pub(super) fn signal(&self) -> &crate::io::alarms::AbortSignal {
        self.ticket.signal()
    }

    /// After a timeout: a half-open transfer that has sent all it may tells admission, so
    /// its client asking again replaces it instead of being ignored as a duplicate.
    pub(super) fn after_timeout(&mut self, m: &impl Transfer) {
        if !self.quiet && m.is_quiet() {
            self.quiet = true;
            self.ticket.mark_quiet();
        }
    }

    /// Before a turn's datagrams leave: while the peer has not answered, they are paid for
    /// from its prefix's budget, or dropped like a loss (the retransmit timer tries again).
    pub(super) fn pay_for_turn(&mut self, m: &mut impl Transfer, peer: SocketAddr, now: Instant) {
        if self.ticket.is_confirmed() {
            return;
        }
        let count = m.pending_transmits();
        if count == 0 {
            return;
        }
        let bytes = m.pending_len() + count * header_bytes(peer);
        if !self.ticket.charge(bytes as u64, now) {
            debug!(
                bytes,
                "reflection budget of the client's prefix spent; not sent"
            );
            self.gauge.metrics.admission.budget_dropped(count as u64);
            m.discard_transmits();
        }
    }

    /// After a datagram from the peer: once the machine says the peer answered, the
    /// transfer moves to the confirmed pool (or is told it may not, and ends).
    pub(super) fn after_datagram(&mut self, m: &mut impl Transfer, now: Instant) {
        if self.ticket.is_confirmed() || !m.is_confirmed() {
            return;
        }
        match self.ticket.confirm(now) {
            Ok(()) => self.gauge.end(),
            Err(Refusal::ClientLimit) => {
                self.gauge.end();
                m.abort(CLIENT_BUSY);
            }
            // Evicted meanwhile: it is ending; the eviction signal ends the wait.
            Err(_) => {
                m.evict();
            }
        }
    }

    /// The transfer's wait ended on its signal: evicted (ends without a word), or the
    /// drain (ERROR 0 to the client).
    pub(super) fn on_abort(&mut self, m: &mut impl Transfer, shutting_down: WireError) {
        if self.ticket.is_evicted() && m.evict() {
            return;
        }
        m.abort(shutting_down);
    }
}
