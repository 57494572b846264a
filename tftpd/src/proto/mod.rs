//! The TFTP protocol core: codec, option negotiation, netascii and the transfer state
//! machines. Pure: nothing here opens a socket or a file, spawns a task or reads the clock;
//! the current time is always passed in. `server::session` drives it.

#[cfg(test)]
mod adaptive_tests;
pub mod error;
pub mod mode;
pub mod multicast;
pub mod netascii;
pub mod options;
pub mod packet;
pub mod read;
pub mod rtt;
#[cfg(test)]
mod sim;
pub mod transfer;
pub mod transmit;
pub mod write;

pub use error::{ErrorCode, WireError};
pub use packet::{DecodeError, Packet, Request};
pub use rtt::Retransmit;
pub use transfer::{HalfOpen, Outcome, TransferConfig, TransferStats};
pub use transmit::{Transmit, TransmitKind};

/// How block numbers continue after 65535 (RFC 1350 has no rule; clients differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rollover {
    /// 65535 is followed by 0 (tftp-hpa, atftp, curl, most PXE ROMs).
    #[default]
    WrapToZero,
    /// 65535 is followed by 1 (some older clients).
    WrapToOne,
}

impl Rollover {
    /// The wire block number of the `index`-th data block, counting the first as 1.
    pub fn wire_block(self, index: u64) -> u16 {
        match self {
            Self::WrapToZero => (index % 65536) as u16,
            Self::WrapToOne => {
                if index == 0 {
                    0
                } else {
                    ((index - 1) % 65535 + 1) as u16
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Rollover;

    #[test]
    fn rollover_wraps_to_zero_or_one() {
        let z = Rollover::WrapToZero;
        assert_eq!(
            [
                z.wire_block(1),
                z.wire_block(65535),
                z.wire_block(65536),
                z.wire_block(65537)
            ],
            [1, 65535, 0, 1]
        );
        let o = Rollover::WrapToOne;
        assert_eq!(
            [
                o.wire_block(1),
                o.wire_block(65535),
                o.wire_block(65536),
                o.wire_block(65537)
            ],
            [1, 65535, 1, 2]
        );
    }
}
