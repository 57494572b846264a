//! Block source tests: read-ahead against a pread per block, recycled buffers, and the
//! sources read-ahead does not apply to.

use super::*;
use crate::fs::testdir_for_config as test_dir;
use proptest::prelude::*;

fn source_over(content: &[u8], read_ahead: usize) -> (impl Sized, BlockSource) {
    let dir = test_dir();
    let path = dir.path().join("f");
    std::fs::write(&path, content).expect("write");
    let mut s = BlockSource::new(File::open(&path).expect("open"), Mode::Octet);
    assert_eq!(
        s.read_ahead(read_ahead),
        read_ahead > 0,
        "applies to octet files"
    );
    (dir, s)
}

fn payload(s: &mut BlockSource, index: u64, blksize: usize) -> Vec<u8> {
    s.read_block(index, blksize).expect("read")[DATA_HEADER_LEN..].to_vec()
}

fn expected(content: &[u8], index: u64, blksize: usize) -> &[u8] {
    let start = ((index - 1) as usize * blksize).min(content.len());
    &content[start..(start + blksize).min(content.len())]
}

#[test]
fn read_ahead_serves_whole_blocks_and_the_empty_last_one() {
    let content: Vec<u8> = (0..2048u32).map(|i| (i % 251) as u8).collect();
    let (_d, mut s) = source_over(&content, 1000);
    for index in 1..=5 {
        assert_eq!(
            payload(&mut s, index, 512),
            expected(&content, index, 512),
            "block {index}"
        );
    }
    assert!(
        payload(&mut s, 5, 512).is_empty(),
        "a file of whole blocks ends empty"
    );
}

#[test]
fn read_ahead_does_not_apply_to_netascii_or_cached_files() {
    let dir = test_dir();
    let path = dir.path().join("f");
    std::fs::write(&path, b"a\nb").expect("write");
    let mut netascii = BlockSource::new(File::open(&path).expect("open"), Mode::Netascii);
    assert!(
        !netascii.read_ahead(65536),
        "netascii reads in chunks already"
    );
    let cache = Arc::new(FileCache::default());
    cache.configure(1 << 20, 1 << 20);
    let mut first = BlockSource::new(File::open(&path).expect("open"), Mode::Octet);
    let CacheUse::Load(loader) = first.use_cache(&cache).expect("cache") else {
        panic!("the first lookup loads");
    };
    assert!(
        first.read_ahead(65536),
        "the transfer that missed reads its file"
    );
    let loaded = loader.run().expect("load").expect("unchanged");
    // Or, when it ran the load itself, serves from what it loaded.
    first.use_loaded(loaded);
    assert!(!first.read_ahead(65536), "now in memory");
    let mut cached = BlockSource::new(File::open(&path).expect("open"), Mode::Octet);
    assert!(
        matches!(cached.use_cache(&cache).expect("cache"), CacheUse::Hit),
        "cached"
    );
    assert!(
        !cached.read_ahead(65536),
        "a cached file is in memory already"
    );
}

proptest! {
    /// A recycled buffer, whatever it held and however long it was, gives each block
    /// exactly the bytes and length a fresh one does (octet, with and without read-ahead,
    /// and netascii, whose blocks come out longer than the file's).
    #[test]
    fn a_recycled_buffer_gives_the_bytes_of_a_fresh_one(
        len in 0usize..5000,
        blksize in 1usize..700,
        junk_len in 0usize..1500,
        mode in 0u8..3,
    ) {
        let content: Vec<u8> = (0..len).map(|i| if i % 9 == 0 { b'\n' } else { (i * 7 % 256) as u8 }).collect();
        let open = || {
            let dir = test_dir();
            let path = dir.path().join("f");
            std::fs::write(&path, &content).expect("write");
            let m = if mode == 2 { Mode::Netascii } else { Mode::Octet };
            let mut s = BlockSource::new(File::open(&path).expect("open"), m);
            if mode == 1 {
                s.read_ahead(2048);
            }
            (dir, s)
        };
        let (_d1, mut fresh) = open();
        let (_d2, mut recycled) = open();
        let mut buf = vec![0xA5u8; junk_len];
        for index in 1..=(2 * len / blksize + 2) as u64 {
            let want = fresh.read_block(index, blksize).expect("fresh read");
            buf = recycled.read_block_into(index, blksize, buf).expect("recycled read");
            prop_assert_eq!(buf.len(), want.len());
            prop_assert_eq!(&buf[DATA_HEADER_LEN..], &want[DATA_HEADER_LEN..]);
            if want.len() < DATA_HEADER_LEN + blksize {
                break;
            }
        }
    }

    /// Whatever order the blocks are asked in (retransmissions go back), the bytes are
    /// the file's, as a `pread` per block would give.
    #[test]
    fn read_ahead_gives_the_bytes_of_a_pread_per_block(
        len in 0usize..6000,
        blksize in 1usize..700,
        read_ahead in 1usize..3000,
        steps in proptest::collection::vec(0u8..8, 1..60),
    ) {
        let content: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
        let (_d, mut s) = source_over(&content, read_ahead);
        let last = (len / blksize) as u64 + 1;
        let mut index = 1u64;
        for step in steps {
            prop_assert_eq!(payload(&mut s, index, blksize), expected(&content, index, blksize));
            // Mostly forward; sometimes back a few blocks, as a retransmission.
            index = match step {
                0 => index.saturating_sub(3).max(1),
                1 => index.saturating_sub(1).max(1),
                _ => (index + 1).min(last),
            };
        }
    }
}
