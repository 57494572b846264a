//! The `[performance.file_io]` fast paths move the right bytes: the hot-file cache and the
//! `posix_fadvise` hints, each with hand-made packets at the sizes where blocks begin and
//! end, and with real clients; the metrics show which path ran. A file that still sets the
//! removed `sendfile` and `[performance.zerocopy]` keys starts, says they do nothing, and
//! serves. Speed is the benchmarks' business.

mod harness;

use std::time::Duration;

use harness::clients::{Client, Opts, get};
use harness::raw::Raw;
use harness::{
    Daemon, TempDir, metric, pattern, scrape_metrics, start_with_metrics, wait_for_metrics,
};

const REPLY: Duration = Duration::from_secs(5);

fn start(file_io: &str) -> (Daemon, u16) {
    start_with_metrics(format!("[performance.file_io]\n{file_io}"))
}

/// Sizes around 512- and 1428-byte block boundaries, exact multiples and short last blocks.
const SIZES: [usize; 10] = [0, 1, 511, 512, 513, 1024, 1427, 1428, 1429, 3 * 1428 + 5];

fn download_every_size(d: &Daemon, tag: &str, blksize: Option<&str>) {
    for (i, len) in SIZES.into_iter().chain([70_000, 200_000]).enumerate() {
        let content = pattern(len, 40 + i as u64);
        let name = format!("{tag}-{len}.bin");
        d.put_file(&name, &content);
        let opts: Vec<(&str, &str)> = blksize.map(|b| ("blksize", b)).into_iter().collect();
        let got = Raw::new(d.addr())
            .download(&name, &opts, REPLY)
            .unwrap_or_else(|e| panic!("{tag}: {len} bytes, blksize {blksize:?}: {e:?}"));
        assert!(
            got == content,
            "{tag}: {len} bytes at blksize {blksize:?} arrive intact (got {} bytes)",
            got.len()
        );
    }
}

#[test]
fn a_file_with_the_removed_send_paths_starts_says_so_and_serves() {
    let (d, _) = start(
        "sendfile = true\nsendfile_threshold = 0\ncache_size = 0\n\
         [performance.zerocopy]\nenabled = true\n[performance.io_uring]\nenabled = true\n",
    );
    for key in [
        "performance.file_io.sendfile (true) does nothing",
        "performance.file_io.sendfile_threshold (0) does nothing",
        "[performance.zerocopy] (enabled = true) does nothing",
        "[performance.io_uring] (enabled = true) does nothing",
    ] {
        d.wait_for_log(key, REPLY);
    }
    download_every_size(&d, "old", None);
    download_every_size(&d, "old1428", Some("1428"));
}

#[test]
fn the_cache_serves_hits_and_new_content_after_the_file_changes() {
    let (d, port) = start("cache_size = 1048576\ncache_max_file = 65536\n");
    let lookups = |result: &str| {
        metric(
            &scrape_metrics(port),
            &format!("tftpd_file_cache_lookups_total{{result=\"{result}\"}}"),
        )
    };
    let get = |name: &str| {
        Raw::new(d.addr())
            .download(name, &[("blksize", "1428")], REPLY)
            .expect("download")
    };
    // The transfer that misses is served from its file while a thread loads the cache:
    // wait for the bytes before counting on a hit.
    let held = |bytes: u64| {
        wait_for_metrics(port, &[&format!("tftpd_file_cache_bytes {bytes}")], REPLY);
    };
    let v1 = pattern(10_000, 4);
    let path = d.put_file("boot.img", &v1);
    assert_eq!(get("boot.img"), v1);
    held(10_000);
    assert_eq!(get("boot.img"), v1);
    assert_eq!(
        (lookups("hit"), lookups("miss")),
        (1, 1),
        "loaded once, then served"
    );
    assert_eq!(
        metric(&scrape_metrics(port), "tftpd_file_cache_bytes"),
        10_000
    );

    // Rewritten in place: same inode, same size, new bytes.
    let v2 = pattern(10_000, 5);
    std::fs::write(&path, &v2).expect("rewrite in place");
    assert_eq!(
        get("boot.img"),
        v2,
        "a rewrite in place is never served stale"
    );

    // Replaced by rename: a new inode.
    let v3 = pattern(12_345, 6);
    let tmp = d.root().join("boot.img.tmp");
    std::fs::write(&tmp, &v3).expect("write new version");
    std::fs::rename(&tmp, &path).expect("rename over");
    assert_eq!(get("boot.img"), v3, "a replaced file is never served stale");
    // The rewrite's load freed version 1 (same inode). Version 2's inode is gone from the
    // directory, so nothing can ask for it: it waits for the LRU to push it out.
    held(10_000 + 12_345);
    assert_eq!(get("boot.img"), v3);
    assert_eq!(
        (lookups("hit"), lookups("miss")),
        (2, 3),
        "each new version was a miss, the loaded one a hit"
    );

    // Too big for cache_max_file: read from disk, not counted.
    let big = pattern(65_537, 7);
    d.put_file("big.img", &big);
    assert_eq!(get("big.img"), big);
    assert_eq!(
        lookups("miss"),
        3,
        "files over cache_max_file bypass the cache"
    );

    // Netascii from the cache is converted like from disk.
    d.put_file("t.txt", b"a\nb\n");
    for round in 0..2 {
        if round == 1 {
            held(10_000 + 12_345 + 4);
        }
        assert_eq!(
            Raw::new(d.addr()).download_in("netascii", "t.txt", &[], REPLY),
            Ok(b"a\r\nb\r\n".to_vec())
        );
    }
    assert_eq!(
        lookups("hit"),
        3,
        "the second netascii download came from memory"
    );
}

/// A hit is served from memory without the file being opened (Linux: an `O_PATH` lookup
/// and `fstat` find it, which inotify does not see as an open).
#[cfg(linux)]
#[test]
fn a_cache_hit_never_opens_the_file() {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    let (d, port) = start("cache_size = 1048576\ncache_max_file = 65536\n");
    let content = pattern(20_000, 9);
    let path = d.put_file("pxe.cfg", &content);
    let get = || {
        Raw::new(d.addr())
            .download("pxe.cfg", &[("blksize", "1428")], REPLY)
            .expect("download")
    };
    assert_eq!(get(), content);
    wait_for_metrics(port, &["tftpd_file_cache_bytes 20000"], REPLY);
    let watch = Inotify::init(InitFlags::IN_NONBLOCK).expect("inotify");
    watch
        .add_watch(&path, AddWatchFlags::IN_OPEN)
        .expect("watch the file");
    for _ in 0..3 {
        assert_eq!(get(), content);
    }
    let events = watch.read_events().unwrap_or_default();
    assert!(events.is_empty(), "a hit opened the file: {events:?}");
    assert_eq!(
        metric(
            &scrape_metrics(port),
            "tftpd_file_cache_lookups_total{result=\"hit\"}"
        ),
        3
    );
    // The watch works: a version the cache does not hold is opened.
    std::fs::write(&path, pattern(20_001, 10)).expect("rewrite");
    assert_eq!(get().len(), 20_001);
    assert!(!watch.read_events().unwrap_or_default().is_empty());
}

#[test]
fn fadvise_downloads_are_byte_exact() {
    // The cache (on by default) would serve these from memory, with no reads to advise.
    let (d, _) = start("fadvise = true\nfadvise_threshold = 0\ncache_size = 0\n");
    d.wait_for_log("posix_fadvise hints on for large files", REPLY);
    // Past a few 4 MiB advice chunks, so WILLNEED and DONTNEED both run.
    let content = pattern(9 * 1024 * 1024 + 3, 8);
    d.put_file("large.bin", &content);
    let got = Raw::new(d.addr())
        .download("large.bin", &[("blksize", "65464")], REPLY)
        .expect("download");
    assert!(got == content, "every byte, {} received", got.len());
    download_every_size(&d, "fa", None);
}

#[test]
fn real_clients_download_with_each_file_path_on() {
    let clients = [Client::TftpHpa, Client::Curl];
    if !clients
        .iter()
        .all(|c| c.available("real_clients_download_with_each_file_path_on"))
    {
        return;
    }
    let dir = TempDir::new("file-io");
    for (tag, config) in [
        ("cache", "cache_size = 4194304\ncache_max_file = 4194304\n"),
        (
            "fadvise",
            "fadvise = true\nfadvise_threshold = 0\ncache_size = 0\n",
        ),
    ] {
        let (d, port) = start(config);
        let content = pattern(1024 * 1024 + 333, 9);
        d.put_file("img.bin", &content);
        for (client, blksize) in [(Client::TftpHpa, None), (Client::Curl, Some(1428))] {
            // Twice, so the cache is both loaded and hit.
            for round in 0..2 {
                if tag == "cache" && (client, round) != (Client::TftpHpa, 0) {
                    // Loaded by a thread while the first download read the file.
                    let held = format!("tftpd_file_cache_bytes {}", content.len());
                    wait_for_metrics(port, &[&held], REPLY);
                }
                let local = dir.path().join(format!("{tag}-{client:?}-{round}"));
                get(
                    client,
                    d.addr(),
                    "img.bin",
                    &local,
                    &Opts {
                        blksize,
                        ..Opts::default()
                    },
                )
                .unwrap_or_else(|e| panic!("{tag}: {client:?}: {e}"));
                assert!(
                    std::fs::read(&local).expect("read") == content,
                    "{tag}: {client:?} round {round}: the file arrives intact"
                );
            }
        }
        let body = scrape_metrics(port);
        if tag == "cache" {
            assert!(
                metric(&body, "tftpd_file_cache_lookups_total{result=\"hit\"}") >= 3,
                "{body}"
            );
        }
    }
}
