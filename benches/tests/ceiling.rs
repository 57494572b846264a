//! The raw ceiling moves exactly the bytes asked for, lock-step and windowed, including a
//! size that is a whole number of blocks (which ends with an empty block, as in TFTP).

use tftpd_benches::{CeilingSpec, ceiling};

#[test]
fn the_ceiling_moves_exactly_the_bytes_asked_for() {
    for (blksize, windowsize, bytes) in [
        (512, 1, 100_000),
        (1428, 8, 1_000_000),
        (8192, 16, 8192 * 40),
    ] {
        let r = ceiling(&CeilingSpec {
            blksize,
            windowsize,
            bytes,
        })
        .expect("a loopback ceiling run");
        let what = format!("blksize {blksize} windowsize {windowsize} bytes {bytes}");
        assert_eq!(r.bytes, bytes, "{what}");
        assert_eq!(r.blocks, bytes / u64::from(blksize) + 1, "{what}: blocks");
        assert!(r.wall_secs > 0.0 && r.blocks_per_s > 0.0, "{what}: {r:?}");
    }
}
