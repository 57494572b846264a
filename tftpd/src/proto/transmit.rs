//! What the core hands the shell to send: the datagram, and what it is. The shell counts,
//! logs and routes from the kind, never by parsing bytes the core has just encoded
//! (quinn-proto's `poll_transmit` hands out a `Transmit` in the same spirit).

use super::error::ErrorCode;

/// What a datagram the core gives out is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransmitKind {
    /// An OACK (RFC 2347).
    Oack,
    /// DATA of block `block` (1-based, counted past rollover: never wrapped).
    Data {
        /// The block's index.
        block: u64,
    },
    /// An ACK of the wire block number `block`.
    Ack {
        /// The block number on the wire.
        block: u16,
    },
    /// An ERROR with this code.
    Error(ErrorCode),
}

/// A datagram to send to the transfer's client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit<'a> {
    /// The encoded datagram.
    pub datagram: &'a [u8],
    /// What it is.
    pub kind: TransmitKind,
}

impl<'a> Transmit<'a> {
    pub(crate) fn new(datagram: &'a [u8], kind: TransmitKind) -> Self {
        Self { datagram, kind }
    }

    /// The ERROR code when this is an ERROR.
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self.kind {
            TransmitKind::Error(code) => Some(code),
            _ => None,
        }
    }
}
