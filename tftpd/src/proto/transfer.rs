//! What the read and write state machines share: their settings, how a transfer ends, and
//! its counters.

use std::time::Duration;

use super::Rollover;
use super::error::{ErrorCode, WireError};

/// The settings one transfer runs with, fixed when it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferConfig {
    /// Bytes per DATA block.
    pub blksize: u16,
    /// Blocks sent (or received) before an ACK is required.
    pub windowsize: u16,
    /// Time without progress before a retransmission.
    pub timeout: Duration,
    /// Retransmissions of the same packet before giving up.
    pub max_retries: u32,
    /// How block numbers continue after 65535.
    pub rollover: Rollover,
    /// The OACK to send first, if options were accepted.
    pub oack: Option<Vec<u8>>,
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
}

impl Outcome {
    /// A fixed label for logs and the `outcome` metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::PeerError { .. } => "peer_error",
            Self::TimedOut => "timed_out",
            Self::Aborted(_) => "aborted",
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

/// An encoded ERROR datagram.
pub fn error_datagram(err: &WireError) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + err.message.len());
    super::packet::encode_error(&mut out, err.code, err.message.as_bytes());
    out
}

/// The ERROR sent when retries run out, so the peer does not wait for its own timeout.
pub(crate) const TIMED_OUT: WireError = WireError::new(ErrorCode::NotDefined, "timed out");
