//! The filter rules, written once over a byte accessor so the same code runs on a slice in
//! userspace and on a socket buffer in the kernel. They keep what a TFTP server can use and
//! drop what it certainly cannot; anything subtler (option values, file names) is judged by
//! the daemon, which can answer with an ERROR.
//!
//! Loops are bounded by constants so the eBPF verifier accepts them.

use crate::counters::Reason;

/// RRQ opcode.
const OP_RRQ: u16 = 1;
/// WRQ opcode.
const OP_WRQ: u16 = 2;
/// DATA opcode.
const OP_DATA: u16 = 3;
/// ACK opcode.
const OP_ACK: u16 = 4;
/// ERROR opcode.
const OP_ERROR: u16 = 5;

/// How far back from the end a request is scanned for the NUL before its final one. That
/// NUL ends the mode or the last option value, which are short, so it is always near the end
/// of a real request, however long the file name. The bound keeps the eBPF loop verifiable.
pub const REQUEST_SCAN_LIMIT: usize = 512;

/// A datagram's UDP payload, read byte by byte.
pub trait Datagram {
    /// Payload length in bytes.
    fn len(&self) -> usize;
    /// The byte at `offset`, if inside the payload.
    fn byte(&self, offset: usize) -> Option<u8>;
    /// True when the payload is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// `value` unchanged. The XDP program passes it through a map, so the eBPF verifier
    /// forgets which parser path computed it (see `xdp::decide`); elsewhere it is free.
    fn opaque(&self, value: usize) -> usize {
        value
    }
}

impl Datagram for [u8] {
    fn len(&self) -> usize {
        <[u8]>::len(self)
    }
    fn byte(&self, offset: usize) -> Option<u8> {
        self.get(offset).copied()
    }
}

/// Keep or drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Hand the datagram to the daemon.
    Pass,
    /// Drop it, for this reason.
    Drop(Reason),
}

impl Verdict {
    /// The counter this verdict increments.
    pub const fn reason(self) -> Reason {
        match self {
            Self::Pass => Reason::Passed,
            Self::Drop(r) => r,
        }
    }
}

fn opcode<D: Datagram + ?Sized>(d: &D) -> Option<u16> {
    Some(u16::from_be_bytes([d.byte(0)?, d.byte(1)?]))
}

/// The rule for a listening socket: only an RRQ or WRQ whose payload ends in a NUL and has
/// another NUL before it (file name NUL mode NUL, options after). The size limit is not a
/// filter rule: an over-long request is answered by the daemon with an ERROR.
pub fn classify_request<D: Datagram + ?Sized>(d: &D) -> Verdict {
    let len = d.len();
    // Opcode, an (empty) file name's NUL and an (empty) mode's NUL.
    if len < 4 {
        return Verdict::Drop(Reason::TooShort);
    }
    match opcode(d) {
        Some(OP_RRQ | OP_WRQ) => {}
        _ => return Verdict::Drop(Reason::BadOpcode),
    }
    if d.byte(len - 1) != Some(0) {
        return Verdict::Drop(Reason::MalformedRequest);
    }
    // Backwards from the byte before the final NUL, never into the opcode.
    let mut back = 2;
    while back <= REQUEST_SCAN_LIMIT {
        if back > len - 2 {
            break;
        }
        if d.byte(len - back) == Some(0) {
            return Verdict::Pass;
        }
        back += 1;
    }
    // A single field: a file name without a mode, or no NUL near the end at all.
    Verdict::Drop(Reason::MalformedRequest)
}

/// The rule for a transfer socket: only what a client may send during a transfer. An ACK of
/// exactly 4 bytes, DATA of at most `max_blksize` bytes, or an ERROR.
pub fn classify_transfer<D: Datagram + ?Sized>(d: &D, max_blksize: usize) -> Verdict {
    let len = d.len();
    if len < 4 {
        return Verdict::Drop(Reason::TooShort);
    }
    match opcode(d) {
        Some(OP_ACK) if len == 4 => Verdict::Pass,
        Some(OP_ACK) => Verdict::Drop(Reason::BadAckLength),
        Some(OP_DATA) if len - 4 <= max_blksize => Verdict::Pass,
        Some(OP_DATA) => Verdict::Drop(Reason::Oversized),
        Some(OP_ERROR) => Verdict::Pass,
        _ => Verdict::Drop(Reason::BadOpcode),
    }
}

/// The rule for a listening socket in single-port mode, which also carries every transfer:
/// a request by the request rule, anything else by the transfer rule.
pub fn classify_single_port<D: Datagram + ?Sized>(d: &D, max_blksize: usize) -> Verdict {
    match opcode(d) {
        Some(OP_RRQ | OP_WRQ) => classify_request(d),
        _ => classify_transfer(d, max_blksize),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn rules_never_panic_and_pass_only_plausible_packets(
            d in proptest::collection::vec(any::<u8>(), 0..1200),
            max in 0usize..70000,
        ) {
            if classify_request(&d[..]) == Verdict::Pass {
                prop_assert!(d.len() >= 4 && matches!(d[1], 1 | 2) && d[0] == 0);
                prop_assert_eq!(d[d.len() - 1], 0);
            }
            if classify_transfer(&d[..], max) == Verdict::Pass {
                prop_assert!(d.len() >= 4 && d[0] == 0 && matches!(d[1], 3..=5));
            }
        }
    }

    #[test]
    fn single_port_keeps_requests_and_transfer_packets() {
        for d in [
            &b"\x00\x01f\x00octet\x00"[..],
            b"\x00\x04\x00\x01",
            b"\x00\x03\x00\x01abc",
            b"\x00\x05\x00\x00",
        ] {
            assert_eq!(classify_single_port(d, 512), Verdict::Pass, "{d:?}");
        }
        assert_eq!(
            classify_single_port(&b"\x00\x01only-one-nul\x00"[..], 512),
            Verdict::Drop(Reason::MalformedRequest)
        );
        assert_eq!(
            classify_single_port(&b"\x00\x04\x00\x01\x00"[..], 512),
            Verdict::Drop(Reason::BadAckLength)
        );
        assert_eq!(
            classify_single_port(&b"\x00\x06x\x00"[..], 512),
            Verdict::Drop(Reason::BadOpcode)
        );
    }

    #[test]
    fn listener_keeps_only_well_formed_requests() {
        let cases: &[(&[u8], Verdict)] = &[
            (b"\x00\x01f\x00octet\x00", Verdict::Pass),
            (b"\x00\x02f\x00octet\x00blksize\x001428\x00", Verdict::Pass),
            (b"\x00\x01\x00\x00", Verdict::Pass),
            (b"\x00\x01f\x00octet\x00\x00\x00", Verdict::Pass),
            (b"", Verdict::Drop(Reason::TooShort)),
            (b"\x00\x01\x00", Verdict::Drop(Reason::TooShort)),
            (b"\x00\x03\x00\x01data", Verdict::Drop(Reason::BadOpcode)),
            (b"\x00\x04\x00\x01", Verdict::Drop(Reason::BadOpcode)),
            (b"\x00\x05\x00\x01x\x00", Verdict::Drop(Reason::BadOpcode)),
            (b"\xff\xffjunk", Verdict::Drop(Reason::BadOpcode)),
            (
                b"\x00\x01no-terminator",
                Verdict::Drop(Reason::MalformedRequest),
            ),
            (
                b"\x00\x01only-one-nul\x00",
                Verdict::Drop(Reason::MalformedRequest),
            ),
        ];
        for (d, want) in cases {
            assert_eq!(classify_request(*d), *want, "{d:?}");
        }
    }

    #[test]
    fn long_names_pass_but_a_lone_field_does_not() {
        // 0x00 0x01, 697 name bytes, one NUL: a name and no mode.
        let mut d = [b'a'; 700];
        d[0] = 0;
        d[1] = 1;
        d[699] = 0;
        assert_eq!(
            classify_request(&d[..]),
            Verdict::Drop(Reason::MalformedRequest)
        );
        // The same with "octet" as the mode: a long name is the daemon's size limit to judge.
        d[693] = 0;
        d[694..699].copy_from_slice(b"octet");
        assert_eq!(
            classify_request(&d[..]),
            Verdict::Pass,
            "a long name with a mode"
        );
        // A NUL only far from the end (beyond the scan) is not enough.
        let mut far = [b'x'; 700];
        far[0] = 0;
        far[1] = 1;
        far[10] = 0;
        far[699] = 0;
        assert_eq!(
            classify_request(&far[..]),
            Verdict::Drop(Reason::MalformedRequest)
        );
    }

    #[test]
    fn transfer_socket_keeps_acks_bounded_data_and_errors() {
        let mut big = [0u8; 4 + 1429];
        big[1] = 3;
        let cases: &[(&[u8], Verdict)] = &[
            (b"\x00\x04\x00\x01", Verdict::Pass),
            (b"\x00\x03\x00\x01", Verdict::Pass),
            (b"\x00\x03\x00\x01abc", Verdict::Pass),
            (b"\x00\x05\x00\x00", Verdict::Pass),
            (b"\x00\x05\x00\x01oops\x00", Verdict::Pass),
            (b"\x00\x04\x00\x01\x00", Verdict::Drop(Reason::BadAckLength)),
            (b"\x00\x01f\x00octet\x00", Verdict::Drop(Reason::BadOpcode)),
            (
                b"\x00\x06blksize\x00512\x00",
                Verdict::Drop(Reason::BadOpcode),
            ),
            (b"\x00\x04\x00", Verdict::Drop(Reason::TooShort)),
            (&big, Verdict::Drop(Reason::Oversized)),
            (&big[..4 + 1428], Verdict::Pass),
        ];
        for (d, want) in cases {
            assert_eq!(
                classify_transfer(*d, 1428),
                *want,
                "{:?}",
                &d[..d.len().min(12)]
            );
        }
    }
}
