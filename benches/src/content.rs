//! The bytes a transfer must carry: deterministic upload content that any block can be
//! generated from its offset (so retransmissions need no copy of the file), and the
//! [`Verifier`] that checks a download block by block as it arrives.

use sha2::{Digest as _, Sha256};

use crate::spec::Expected;

/// Fills `out` with the upload content for `seed` at byte `offset` onwards. Byte `i` is byte
/// `i % 8` (little-endian) of a SplitMix64 hash of `i / 8`: cheap, seekable, and different
/// in every 8-byte word, so a misplaced block never matches by accident.
pub fn fill(seed: u64, offset: u64, out: &mut [u8]) {
    let mut word = word_at(seed, offset / 8).to_le_bytes();
    for (i, b) in (offset..).zip(out.iter_mut()) {
        if i.is_multiple_of(8) {
            word = word_at(seed, i / 8).to_le_bytes();
        }
        *b = word[(i % 8) as usize];
    }
}

fn word_at(seed: u64, index: u64) -> u64 {
    let mut x = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// How received bytes differ from the expected ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch {
    /// A wrong byte, a wrong digest, or more bytes than expected.
    Corrupt,
    /// The transfer ended before the expected size.
    Short,
}

/// Checks `data` against the upload content for `seed` and `size`.
pub fn check_generated(seed: u64, size: u64, data: &[u8]) -> Result<(), Mismatch> {
    let len = data.len() as u64;
    let mut chunk = [0u8; 4096];
    let mut offset = 0u64;
    for got in data.chunks(chunk.len()) {
        let want = &mut chunk[..got.len()];
        fill(seed, offset, want);
        if got != want {
            return Err(Mismatch::Corrupt);
        }
        offset += got.len() as u64;
    }
    match len.cmp(&size) {
        std::cmp::Ordering::Less => Err(Mismatch::Short),
        std::cmp::Ordering::Greater => Err(Mismatch::Corrupt),
        std::cmp::Ordering::Equal => Ok(()),
    }
}

/// Checks a download's bytes in order as they arrive.
#[derive(Debug)]
pub struct Verifier<'a> {
    expect: &'a Expected,
    offset: u64,
    hasher: Option<Sha256>,
    corrupt: bool,
}

impl<'a> Verifier<'a> {
    /// A verifier at offset 0.
    pub fn new(expect: &'a Expected) -> Self {
        Self {
            expect,
            offset: 0,
            hasher: matches!(expect, Expected::Digest { .. }).then(Sha256::new),
            corrupt: false,
        }
    }

    /// Bytes accepted so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Takes the next block's payload.
    pub fn feed(&mut self, data: &[u8]) {
        match self.expect {
            Expected::Bytes(want) => {
                let start = usize::try_from(self.offset).unwrap_or(usize::MAX);
                let matches = start
                    .checked_add(data.len())
                    .and_then(|end| want.get(start..end))
                    .is_some_and(|w| w == data);
                self.corrupt |= !matches;
            }
            Expected::Digest { .. } => {
                if let Some(h) = &mut self.hasher {
                    h.update(data);
                }
            }
        }
        self.offset += data.len() as u64;
    }

    /// The verdict once the last block has been fed (call it once: it consumes the digest).
    pub fn finish(&mut self) -> Result<(), Mismatch> {
        if self.corrupt {
            return Err(Mismatch::Corrupt);
        }
        if let Some(size) = self.expect.size() {
            if self.offset < size {
                return Err(Mismatch::Short);
            }
            if self.offset > size {
                return Err(Mismatch::Corrupt);
            }
        }
        if let (Expected::Digest { sha256, .. }, Some(h)) = (self.expect, self.hasher.take())
            && h.finalize().as_slice() != sha256.as_slice()
        {
            return Err(Mismatch::Corrupt);
        }
        Ok(())
    }
}

/// The SHA-256 of `data` (for building an [`Expected::Digest`]).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn generated(seed: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        fill(seed, 0, &mut v);
        v
    }

    #[test]
    fn content_at_any_offset_matches_the_whole() {
        let whole = generated(9, 1000);
        for (start, len) in [(0, 1), (3, 17), (8, 8), (511, 489)] {
            let mut part = vec![0; len];
            fill(9, start as u64, &mut part);
            assert_eq!(part, whole[start..start + len], "slice at {start}+{len}");
        }
        assert_ne!(whole, generated(10, 1000), "the seed changes the content");
    }

    #[test]
    fn generated_content_check_finds_each_fault() {
        let good = generated(5, 10_000);
        assert_eq!(check_generated(5, 10_000, &good), Ok(()));
        let mut bad = good.clone();
        bad[7777] ^= 1;
        assert_eq!(check_generated(5, 10_000, &bad), Err(Mismatch::Corrupt));
        assert_eq!(
            check_generated(5, 10_000, &good[..9000]),
            Err(Mismatch::Short)
        );
        assert_eq!(check_generated(5, 9000, &good), Err(Mismatch::Corrupt));
    }

    fn verify(expect: &Expected, blocks: &[&[u8]]) -> Result<(), Mismatch> {
        let mut v = Verifier::new(expect);
        for b in blocks {
            v.feed(b);
        }
        v.finish()
    }

    #[test]
    fn verifier_by_bytes_and_by_digest_agree() {
        let data = generated(1, 3000);
        let by_bytes = Expected::Bytes(Arc::from(data.as_slice()));
        let by_digest = Expected::Digest {
            sha256: sha256(&data),
            size: Some(3000),
        };
        let mut flipped = data[1000..1512].to_vec();
        flipped[100] ^= 0x80;
        for expect in [&by_bytes, &by_digest] {
            assert_eq!(
                verify(expect, &[&data[..1000], &data[1000..]]),
                Ok(()),
                "{expect:?}"
            );
            assert_eq!(
                verify(expect, &[&data[..1000], &flipped, &data[1512..]]),
                Err(Mismatch::Corrupt),
                "a flipped bit"
            );
            assert_eq!(
                verify(expect, &[&data[..2999]]),
                Err(Mismatch::Short),
                "one byte short"
            );
            assert_eq!(
                verify(expect, &[&data, b"x"]),
                Err(Mismatch::Corrupt),
                "one byte too many"
            );
        }
    }

    #[test]
    fn digest_without_size_still_catches_a_short_file_as_corrupt() {
        let data = generated(2, 100);
        let expect = Expected::Digest {
            sha256: sha256(&data),
            size: None,
        };
        assert_eq!(verify(&expect, &[&data]), Ok(()));
        assert_eq!(verify(&expect, &[&data[..99]]), Err(Mismatch::Corrupt));
    }
}
