//! What the two transfer-machine targets share: the fuzz-chosen transfer settings, kept in
//! the ranges the server's config allows (small, so a run covers whole transfers).

use std::time::Duration;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use tftpd::proto::packet::{OP_ACK, OP_DATA, OP_ERROR, OP_OACK};
use tftpd::proto::{HalfOpen, Retransmit, Rollover, Transmit, TransmitKind, TransferConfig};

/// The settings of one fuzzed transfer.
#[derive(Debug, Arbitrary)]
pub struct Knobs {
    blksize: u8,
    windowsize: u8,
    max_retries: u8,
    half_open_retries: u8,
    max_duration_ms: Option<u16>,
    wrap_to_one: bool,
    /// The retransmission timeout adapts to the round trip (5 ms floor).
    adaptive: bool,
    /// The transfer starts with an OACK (`oack`, below) rather than DATA 1 or ACK 0.
    pub oack: bool,
}

impl Knobs {
    /// The machine's config: blksize 8..=64, a window of 1..=8 from the OACK or (`sliding`,
    /// downloads only, without an OACK) the server's default, 0..=5 retries, 0..=3 while
    /// half-open, and `oack` as the OACK datagram when there is one.
    pub fn config(&self, sliding: bool, oack: &[u8]) -> TransferConfig {
        let sliding = sliding && !self.oack;
        let windowsize = if self.oack || sliding {
            1 + u16::from(self.windowsize % 8)
        } else {
            1
        };
        TransferConfig {
            blksize: 8 + u16::from(self.blksize % 57),
            windowsize,
            timeout: Duration::from_millis(1000),
            retransmit: if self.adaptive {
                Retransmit::Adaptive {
                    floor: Duration::from_millis(5),
                }
            } else {
                Retransmit::Fixed
            },
            max_retries: u32::from(self.max_retries % 6),
            half_open: HalfOpen {
                timeout: Duration::from_millis(500),
                retries: u32::from(self.half_open_retries % 4),
            },
            max_duration: self
                .max_duration_ms
                .map(|ms| Duration::from_millis(u64::from(ms))),
            rollover: if self.wrap_to_one {
                Rollover::WrapToOne
            } else {
                Rollover::WrapToZero
            },
            oack: self.oack.then(|| oack.to_vec()),
            sliding,
        }
    }
}

/// The opcode of what the machine gave out, checked against what its kind says it is: the
/// shell counts and routes by the kind alone, so the two must never disagree.
pub fn opcode_of(t: &Transmit<'_>) -> u16 {
    let op = u16::from_be_bytes([t.datagram[0], t.datagram[1]]);
    let (expected, what) = match t.kind {
        TransmitKind::Oack => (OP_OACK, "OACK"),
        TransmitKind::Data { .. } => (OP_DATA, "DATA"),
        TransmitKind::Ack { block } => {
            assert_eq!(t.datagram, &[0, 4, (block >> 8) as u8, block as u8], "the ACK's block");
            (OP_ACK, "ACK")
        }
        TransmitKind::Error(code) => {
            assert_eq!(
                u16::from_be_bytes([t.datagram[2], t.datagram[3]]),
                code.as_u16(),
                "the ERROR's code"
            );
            (OP_ERROR, "ERROR")
        }
    };
    assert_eq!(op, expected, "a transmit of kind {what} carries opcode {op}");
    op
}
