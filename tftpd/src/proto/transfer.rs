//! What the read and write state machines share: their settings, how a transfer ends, and
//! its counters.

use std::time::{Duration, Instant};

use super::Rollover;
use super::error::{ErrorCode, WireError};
use super::rtt::{Retransmit, RttEstimator};

/// The settings one transfer runs with, fixed when it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferConfig {
    /// Bytes per DATA block.
    pub blksize: u16,
    /// Blocks sent (or received) before an ACK is required.
    pub windowsize: u16,
    /// Time without progress before a retransmission: the fixed timeout, or the ceiling of
    /// an adaptive one (see `retransmit`).
    pub timeout: Duration,
    /// Whether the retransmission timeout adapts to the measured round trip once the peer
    /// has answered; until then the half-open timing applies either way.
    pub retransmit: Retransmit,
    /// Retransmissions of the same packet before giving up, once the peer has answered.
    pub max_retries: u32,
    /// How the transfer treats its peer until the peer first answers.
    pub half_open: HalfOpen,
    /// The longest the whole transfer may take (`limits.max_transfer_secs`); `None`: no
    /// limit. Counted from the machine's creation, so a client that keeps a transfer barely
    /// alive (one ACK just before each timeout) still ends.
    pub max_duration: Option<Duration>,
    /// How block numbers continue after 65535.
    pub rollover: Rollover,
    /// The OACK to send first, if options were accepted.
    pub oack: Option<Vec<u8>>,
    /// The window is the server's default, not negotiated (`protocol.default_windowsize`):
    /// the client does not know of it and acknowledges every block, so an ACK inside the
    /// window slides it forward. RFC 7440's rule (an ACK short of the window's end restarts
    /// the window after it) would resend, on every ACK, blocks the client already has.
    pub sliding: bool,
}

/// A transfer is half-open from its first datagram until the peer answers it (an ACK of the
/// OACK or of DATA 1; DATA 1 after a WRQ's ACK 0 or OACK), like a TCP connection before the
/// SYN's answer. Any source may be spoofed, so until then the server spends little on the
/// peer: its own timeout (never the one the client asked for), few retransmissions, and no
/// ERROR when they run out, so a forged request earns its "source" at most
/// `1 + retries` datagrams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HalfOpen {
    /// Time before the first datagram is sent again (the server's `protocol.timeout_ms`).
    pub timeout: Duration,
    /// Retransmissions of the first datagram (`limits.half_open_retries`). After them the
    /// transfer waits in silence, as long as a confirmed one would wait for a silent peer
    /// (`max_retries` timeouts), so a real client whose answer was lost can still answer
    /// late; then it ends without an ERROR.
    pub retries: u32,
}

/// How a transfer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every block was delivered and acknowledged.
    Completed,
    /// The peer sent an ERROR.
    PeerError {
        /// The peer's code.
        code: ErrorCode,
        /// The peer's message, lossily decoded.
        message: String,
    },
    /// The peer stopped answering: retries ran out.
    TimedOut,
    /// We ended it and told the peer with this ERROR.
    Aborted(WireError),
    /// The peer never answered the first datagram and its retransmission: ended without an
    /// ERROR, since the request may have been forged (see [`HalfOpen`]).
    Unanswered,
    /// Ended while half-open to make room for a newer request (the half-open pool was full);
    /// nothing is sent.
    Evicted,
    /// A size probe: the client asked for `tsize`, had the OACK that answered it, and ended
    /// with ERROR 8 before acknowledging any DATA. UEFI firmware (EDK2's MTFTP, as in OVMF)
    /// asks each boot file's size this way before fetching it in a second request; the peer
    /// got what it asked for, so this is not a failed transfer. Only a download ends so.
    SizeProbe,
}

impl Outcome {
    /// A fixed label for logs and the `outcome` metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::PeerError { .. } => "peer_error",
            Self::TimedOut => "timed_out",
            Self::Aborted(_) => "aborted",
            Self::Unanswered => "unanswered",
            Self::Evicted => "evicted",
            Self::SizeProbe => "size_probe",
        }
    }
}

/// Counters of one transfer, read by the shell for logs and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransferStats {
    /// Payload bytes delivered in order (sent and acknowledged, or received).
    pub bytes: u64,
    /// Datagrams sent again after a timeout or a go-back-N restart.
    pub retransmits: u64,
    /// Datagrams from the peer that were ignored (duplicates, stale ACKs, junk).
    pub ignored: u64,
}

/// What the read and write machines have in common, so the shell drives both with one loop.
pub trait Transfer {
    /// Handles the passing of time; call it when `poll_timeout` has passed.
    fn handle_timeout(&mut self, now: Instant);
    /// The next datagram to send to the client.
    fn poll_transmit(&mut self) -> Option<super::Transmit<'_>>;
    /// At most how many datagrams `poll_transmit` will give out now (an entry may turn out
    /// stale and be skipped): with 1, the shell can send the one datagram straight from the
    /// machine's buffer instead of gathering a batch.
    fn pending_transmits(&self) -> usize;
    /// The bytes of the datagrams `poll_transmit` would give out now.
    fn pending_len(&self) -> usize;
    /// Drops what is queued to send, as if lost; the retransmit timer resends it.
    fn discard_transmits(&mut self);
    /// When `handle_timeout` must next be called; `None` when nothing is outstanding.
    fn poll_timeout(&self) -> Option<Instant>;
    /// True once the transfer has ended and everything queued has been sent.
    fn is_finished(&self) -> bool;
    /// Ends the transfer with an ERROR to the client.
    fn abort(&mut self, error: WireError);
    /// True once the peer has answered (see [`HalfOpen`]).
    fn is_confirmed(&self) -> bool;
    /// True once a half-open transfer has sent all it may and only waits for an answer.
    fn is_quiet(&self) -> bool;
    /// Ends a half-open transfer without a word ([`Outcome::Evicted`]); a confirmed one
    /// is left alone (false).
    fn evict(&mut self) -> bool;
    /// The transfer's counters so far.
    fn stats(&self) -> TransferStats;
    /// How the transfer ended, once it has.
    fn outcome(&self) -> Option<&Outcome>;
}

/// Implements [`Transfer`] by forwarding to the type's inherent methods of the same names.
macro_rules! impl_transfer {
    ($t:ty) => {
        impl $crate::proto::transfer::Transfer for $t {
            fn handle_timeout(&mut self, now: std::time::Instant) {
                <$t>::handle_timeout(self, now)
            }
            fn poll_transmit(&mut self) -> Option<$crate::proto::Transmit<'_>> {
                <$t>::poll_transmit(self)
            }
            fn pending_transmits(&self) -> usize {
                <$t>::pending_transmits(self)
            }
            fn pending_len(&self) -> usize {
                <$t>::pending_len(self)
            }
            fn discard_transmits(&mut self) {
                <$t>::discard_transmits(self)
            }
            fn poll_timeout(&self) -> Option<std::time::Instant> {
                <$t>::poll_timeout(self)
            }
            fn is_finished(&self) -> bool {
                <$t>::is_finished(self)
            }
            fn abort(&mut self, error: $crate::proto::WireError) {
                <$t>::abort(self, error)
            }
            fn is_confirmed(&self) -> bool {
                <$t>::is_confirmed(self)
            }
            fn is_quiet(&self) -> bool {
                <$t>::is_quiet(self)
            }
            fn evict(&mut self) -> bool {
                <$t>::evict(self)
            }
            fn stats(&self) -> $crate::proto::TransferStats {
                <$t>::stats(self)
            }
            fn outcome(&self) -> Option<&$crate::proto::Outcome> {
                <$t>::outcome(self)
            }
        }
    };
}
pub(crate) use impl_transfer;

/// An encoded ERROR datagram.
pub fn error_datagram(err: &WireError) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + err.message.len());
    super::packet::encode_error(&mut out, err.code, err.message.as_bytes());
    out
}

/// The ERROR sent when retries run out, so the peer does not wait for its own timeout.
pub(crate) const TIMED_OUT: WireError = WireError::new(ErrorCode::NotDefined, "timed out");

/// The ERROR sent when a transfer reaches `limits.max_transfer_secs`.
pub(crate) const TOO_LONG: WireError =
    WireError::new(ErrorCode::NotDefined, "transfer time limit reached");

/// What a timeout calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnTimeout {
    /// Send again.
    Retransmit,
    /// Send nothing (a half-open transfer out of retransmissions), wait one more timeout.
    Quiet,
    /// Give up with ERROR "timed out".
    TimedOut,
    /// Give up without a word: the peer never answered.
    Unanswered,
}

/// The clock and retry rules both machines share: the server's half-open timing until the
/// peer answers, the transfer's own after (fixed or adaptive), and the whole-transfer limit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pacing {
    /// Whether the peer has answered.
    pub(crate) confirmed: bool,
    /// When the whole transfer must end, if it must.
    pub(crate) ends_at: Option<Instant>,
    /// The round-trip estimate, for an adaptive timeout.
    rtt: RttEstimator,
}

impl Pacing {
    pub(crate) fn new(cfg: &TransferConfig, now: Instant) -> Self {
        Self {
            confirmed: false,
            ends_at: cfg.max_duration.map(|d| now + d),
            rtt: RttEstimator::new(),
        }
    }

    /// The retransmit timeout now.
    pub(crate) fn timeout(&self, cfg: &TransferConfig) -> Duration {
        if self.confirmed {
            self.rtt.timeout(cfg.retransmit, cfg.timeout)
        } else {
            cfg.half_open.timeout
        }
    }

    /// A round trip measured on a datagram sent once (Karn's rule is the caller's: a
    /// retransmitted datagram's answer is no sample).
    pub(crate) fn sample(&mut self, sent: Option<Instant>, now: Instant) {
        if let Some(sent) = sent {
            self.rtt.sample(now.saturating_duration_since(sent));
        }
    }

    /// The retransmit timer expired: counts the expiry in `retries` and says what it calls
    /// for. An adaptive timer's quick expiries, below the full `timeout`, are not counted,
    /// and it backs off to that full timeout within a few expiries: so a silent peer is
    /// given up on after `max_retries` full timeouts, as long as with the fixed timer.
    pub(crate) fn expire(&mut self, cfg: &TransferConfig, retries: &mut u32) -> OnTimeout {
        if !self.confirmed || self.timeout(cfg) >= cfg.timeout {
            *retries += 1;
        }
        if self.confirmed {
            self.rtt.back_off();
        }
        self.on_timeout(cfg, *retries)
    }

    /// True when the transfer retransmits on its own adaptive timer, which then does what
    /// answering a duplicate would (see the write machine).
    pub(crate) fn adapts(&self, cfg: &TransferConfig) -> bool {
        self.confirmed && matches!(cfg.retransmit, Retransmit::Adaptive { .. })
    }

    /// What the `retries`-th timeout in a row calls for.
    fn on_timeout(&self, cfg: &TransferConfig, retries: u32) -> OnTimeout {
        if self.confirmed {
            if retries > cfg.max_retries {
                OnTimeout::TimedOut
            } else {
                OnTimeout::Retransmit
            }
        } else if retries > cfg.max_retries.max(cfg.half_open.retries) {
            OnTimeout::Unanswered
        } else if retries > cfg.half_open.retries {
            OnTimeout::Quiet
        } else {
            OnTimeout::Retransmit
        }
    }

    /// True once a half-open transfer has used its retransmissions and only waits.
    pub(crate) fn is_quiet(&self, cfg: &TransferConfig, retries: u32) -> bool {
        !self.confirmed && retries > cfg.half_open.retries
    }

    /// The earlier of the retransmit deadline and the whole-transfer limit.
    pub(crate) fn next(&self, deadline: Option<Instant>) -> Option<Instant> {
        match (deadline, self.ends_at) {
            (Some(d), Some(e)) => Some(d.min(e)),
            (d, e) => d.or(e),
        }
    }

    /// True once the whole-transfer limit has passed.
    pub(crate) fn expired(&self, now: Instant) -> bool {
        self.ends_at.is_some_and(|e| now >= e)
    }
}
