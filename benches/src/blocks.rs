//! Block numbers: the wire's 16 bits against the transfer's 64-bit block index, with the
//! rollover past 65535 to 0 (tftpd's default, tftp-hpa's and most PXE ROMs'). Shared by
//! the download, the upload and the raw ceiling, so all three wrap the same way.

use tftpd::proto::Rollover;

/// The wire number of block `index` (the first data block is index 1).
pub fn wire(index: u64) -> u16 {
    Rollover::WrapToZero.wire_block(index)
}

/// Where a received wire number lies relative to the block index `expected`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// It is `expected`.
    Expected,
    /// It is later: blocks in between were lost or reordered.
    Ahead,
    /// It is earlier: a duplicate or a retransmission.
    Behind,
}

/// Compares `block` with `expected`, modulo 2^16: half the number space counts as ahead,
/// the other half as behind, which holds while a window stays under 32768 blocks.
pub fn position(block: u16, expected: u64) -> Position {
    match block.wrapping_sub(wire(expected)) {
        0 => Position::Expected,
        d if d < 0x8000 => Position::Ahead,
        _ => Position::Behind,
    }
}

/// The index of `block`, a wire number [`Position::Behind`] the block index `expected`.
pub fn behind_index(block: u16, expected: u64) -> u64 {
    expected.saturating_sub(u64::from(wire(expected).wrapping_sub(block)))
}

/// The block index an ACK of wire number `block` stands for, given that blocks up to
/// `acked` are acknowledged and up to `sent` have been sent; `None` for an ACK that is
/// old (a duplicate) or acknowledges a block never sent.
pub fn acked_index(block: u16, acked: u64, sent: u64) -> Option<u64> {
    let delta = u64::from(block.wrapping_sub(wire(acked)));
    let index = acked + delta;
    (delta > 0 && index <= sent).then_some(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_numbers_wrap_to_zero_after_65535() {
        assert_eq!(
            [wire(1), wire(65535), wire(65536), wire(65537)],
            [1, 65535, 0, 1]
        );
    }

    #[test]
    fn position_holds_across_the_wrap() {
        assert_eq!(position(0, 65536), Position::Expected);
        assert_eq!(position(3, 65535), Position::Ahead, "3 comes after 65535");
        assert_eq!(
            position(65534, 65536),
            Position::Behind,
            "65534 came before 0"
        );
        assert_eq!(position(7, 8), Position::Behind);
        assert_eq!(behind_index(7, 8), 7);
        assert_eq!(behind_index(65534, 65536), 65534);
        assert_eq!(behind_index(65535, 65537), 65535);
    }

    #[test]
    fn acks_map_to_indices_across_the_wrap_and_old_ones_are_refused() {
        assert_eq!(acked_index(2, 65534, 65540), Some(65538));
        assert_eq!(acked_index(65534, 65534, 65540), None, "a duplicate ACK");
        assert_eq!(acked_index(65533, 65534, 65540), None, "an old ACK");
        assert_eq!(acked_index(10, 65534, 65540), None, "never sent");
    }
}
