//! Real third-party clients against the real daemon on loopback: downloads of edge-case sizes,
//! blksize, tsize, windowsize, netascii both ways, IPv6, block-number rollover, and uploads in
//! every write mode. Every transfer is compared byte for byte.

mod harness;

use harness::clients::{Client, Opts, get, put};
use harness::{Daemon, DaemonArgs, TempDir, pattern};

const SIZES: [usize; 7] = [0, 1, 511, 512, 513, 1024, 1 << 20];

fn daemon(write: &str) -> Daemon {
    Daemon::start(DaemonArgs {
        args: vec!["--write".into(), write.into()],
        ipv6: true,
        ..DaemonArgs::default()
    })
}

#[test]
fn every_client_downloads_edge_case_sizes_exactly() {
    let d = daemon("off");
    let out = TempDir::new("dl");
    for (i, size) in SIZES.iter().enumerate() {
        d.put_file(&format!("f{size}.bin"), &pattern(*size, i as u64));
    }
    for client in Client::ALL {
        if !client.available("every_client_downloads_edge_case_sizes_exactly") {
            continue;
        }
        for (i, size) in SIZES.iter().enumerate() {
            if client == Client::Curl && *size == 0 {
                // curl 7.88 fails every empty TFTP download ("getpeername() failed with
                // errno 107"), against tftp-hpa's server too: a client bug, not ours.
                continue;
            }
            let local = out.path().join(format!("{client:?}-{size}"));
            get(
                client,
                d.addr(),
                &format!("f{size}.bin"),
                &local,
                &Opts::default(),
            )
            .unwrap_or_else(|e| panic!("{client:?} download of {size} bytes failed: {e}"));
            let got = std::fs::read(&local).expect("downloaded file");
            assert!(
                got == pattern(*size, i as u64),
                "{client:?}: {size}-byte file differs"
            );
        }
    }
}

#[test]
fn negotiated_blksize_windowsize_and_tsize_deliver_exact_bytes() {
    let d = daemon("off");
    let out = TempDir::new("opts");
    let content = pattern(3 * 1024 * 1024 + 77, 7);
    d.put_file("big.bin", &content);
    let mut cases = Vec::new();
    for b in [8u16, 1428, 8192, 65464] {
        cases.push((
            Client::Curl,
            Opts {
                blksize: Some(b),
                ..Opts::default()
            },
        ));
    }
    for b in [1428u16, 8192, 65464] {
        cases.push((
            Client::Busybox,
            Opts {
                blksize: Some(b),
                ..Opts::default()
            },
        ));
    }
    for (b, w) in [(512u16, 4u16), (1428, 8), (8192, 16), (1428, 1)] {
        cases.push((
            Client::Atftp,
            Opts {
                blksize: Some(b),
                windowsize: Some(w),
                tsize: true,
                ..Opts::default()
            },
        ));
    }
    for (i, (client, opts)) in cases.iter().enumerate() {
        if !client.available("negotiated_blksize_windowsize_and_tsize_deliver_exact_bytes") {
            continue;
        }
        let local = out.path().join(format!("o{i}"));
        get(*client, d.addr(), "big.bin", &local, opts)
            .unwrap_or_else(|e| panic!("{client:?} {opts:?}: {e}"));
        assert!(
            std::fs::read(&local).expect("file") == content,
            "{client:?} {opts:?}: bytes differ"
        );
    }
    let log = d.log();
    assert!(
        log.contains("windowsize=16"),
        "windowsize 16 was negotiated:\n{log}"
    );
    assert!(
        log.contains("blksize=65464"),
        "blksize 65464 was negotiated"
    );
    assert!(
        log.contains(&format!("tsize={}", content.len())),
        "tsize answered with the size"
    );
}

#[test]
fn ipv6_downloads_work() {
    let d = daemon("off");
    let out = TempDir::new("v6");
    let content = pattern(100_000, 3);
    d.put_file("v6.bin", &content);
    for client in Client::ALL {
        if !client.available("ipv6_downloads_work") {
            continue;
        }
        let local = out.path().join(format!("{client:?}"));
        get(client, d.addr_v6(), "v6.bin", &local, &Opts::default())
            .unwrap_or_else(|e| panic!("{client:?} over IPv6: {e}"));
        assert!(
            std::fs::read(&local).expect("file") == content,
            "{client:?} over IPv6: bytes differ"
        );
    }
}

/// Clients that convert netascii both ways (busybox and curl only speak octet).
const NETASCII_CLIENTS: [Client; 2] = [Client::TftpHpa, Client::Atftp];

#[test]
fn netascii_converts_line_ends_both_ways() {
    let d = daemon("overwrite");
    let out = TempDir::new("ascii");
    // Unix text with a bare CR, which netascii sends as CR NUL (RFC 1350 via RFC 764).
    let text = b"first line\nsecond line\nbare\rcr\nlast without newline";
    d.put_file("text.txt", text);
    let ascii = Opts {
        netascii: true,
        ..Opts::default()
    };
    for client in NETASCII_CLIENTS {
        if !client.available("netascii_converts_line_ends_both_ways") {
            continue;
        }
        let local = out.path().join(format!("{client:?}.txt"));
        get(client, d.addr(), "text.txt", &local, &ascii)
            .unwrap_or_else(|e| panic!("{client:?} netascii download: {e}"));
        assert_eq!(
            std::fs::read(&local).expect("downloaded file"),
            text,
            "{client:?}: download through netascii gives back the Unix text"
        );
        let name = format!("back-{client:?}.txt");
        put(client, d.addr(), &local, &name, &ascii)
            .unwrap_or_else(|e| panic!("{client:?} netascii upload: {e}"));
        assert_eq!(
            std::fs::read(d.root().join(&name)).expect("uploaded file"),
            text,
            "{client:?}: upload through netascii stores the Unix text"
        );
    }
}

#[test]
fn rollover_past_block_65535_at_512_byte_blocks() {
    let d = daemon("off");
    let out = TempDir::new("roll");
    // 65536 blocks of 512 bytes is 32 MiB: one more block forces the block number to wrap.
    let content = pattern(32 * 1024 * 1024 + 1000, 11);
    d.put_file("roll.bin", &content);
    // All four wrap the block number to 0 (checked against tftp-hpa's in.tftpd). curl and
    // busybox always ask for tsize and curl for blksize 512, so theirs run through an OACK.
    for client in Client::ALL {
        if !client.available("rollover_past_block_65535_at_512_byte_blocks") {
            continue;
        }
        let local = out.path().join(format!("{client:?}"));
        get(client, d.addr(), "roll.bin", &local, &Opts::default())
            .unwrap_or_else(|e| panic!("{client:?} rollover download: {e}"));
        assert!(
            std::fs::read(&local).expect("file") == content,
            "{client:?}: bytes after rollover"
        );
    }
}

#[test]
fn uploads_follow_the_write_mode() {
    let out = TempDir::new("up");
    let content = pattern(70_000, 5);
    let local = out.path().join("up.bin");
    std::fs::write(&local, &content).expect("local file");
    for client in Client::ALL {
        if !client.available("uploads_follow_the_write_mode") {
            continue;
        }
        let name = format!("{client:?}.bin");
        let off = daemon("off");
        assert!(
            put(client, off.addr(), &local, &name, &Opts::default()).is_err(),
            "{client:?}: write off must refuse"
        );
        assert!(
            !off.root().join(&name).exists(),
            "{client:?}: nothing stored with write off"
        );

        let create = daemon("create");
        put(client, create.addr(), &local, &name, &Opts::default())
            .unwrap_or_else(|e| panic!("{client:?} create: {e}"));
        assert!(std::fs::read(create.root().join(&name)).expect("stored") == content);
        create.put_file("existing.bin", b"keep me");
        assert!(
            put(
                client,
                create.addr(),
                &local,
                "existing.bin",
                &Opts::default()
            )
            .is_err(),
            "{client:?}: create must not replace"
        );
        assert_eq!(
            std::fs::read(create.root().join("existing.bin")).expect("kept"),
            b"keep me"
        );

        let over = daemon("overwrite");
        over.put_file(&name, b"old");
        put(client, over.addr(), &local, &name, &Opts::default())
            .unwrap_or_else(|e| panic!("{client:?} overwrite: {e}"));
        assert!(std::fs::read(over.root().join(&name)).expect("replaced") == content);
        assert_eq!(
            over.list(""),
            vec![name.clone()],
            "{client:?}: no temp debris"
        );
    }
}

#[test]
fn uploads_with_negotiated_blksize_store_exact_bytes() {
    let d = daemon("create");
    let out = TempDir::new("upb");
    let content = pattern(1_000_003, 13);
    let local = out.path().join("b.bin");
    std::fs::write(&local, &content).expect("local file");
    let with_blksize = |b: u16| Opts {
        blksize: Some(b),
        ..Opts::default()
    };
    let cases = [
        (Client::Curl, with_blksize(1428)),
        (Client::Curl, with_blksize(65464)),
        (Client::Busybox, with_blksize(1428)),
        (Client::Busybox, with_blksize(8192)),
        (
            Client::Atftp,
            Opts {
                tsize: true,
                ..with_blksize(8192)
            },
        ),
    ];
    for (i, (client, opts)) in cases.iter().enumerate() {
        if !client.available("uploads_with_negotiated_blksize_store_exact_bytes") {
            continue;
        }
        let name = format!("up{i}.bin");
        put(*client, d.addr(), &local, &name, opts)
            .unwrap_or_else(|e| panic!("{client:?} {opts:?} upload: {e}"));
        assert!(
            std::fs::read(d.root().join(&name)).expect("stored") == content,
            "{client:?} {opts:?}: stored bytes differ"
        );
    }
    let log = d.log();
    assert!(
        log.contains("blksize=65464"),
        "curl's 65464-byte blocks were negotiated for the upload:\n{log}"
    );
}

#[test]
fn windowed_upload_with_atftp() {
    if !Client::Atftp.available("windowed_upload_with_atftp") {
        return;
    }
    let d = daemon("create");
    let out = TempDir::new("upw");
    let content = pattern(2_000_000, 9);
    let local = out.path().join("w.bin");
    std::fs::write(&local, &content).expect("local");
    let opts = Opts {
        blksize: Some(1428),
        windowsize: Some(8),
        tsize: true,
        ..Opts::default()
    };
    put(Client::Atftp, d.addr(), &local, "w.bin", &opts).expect("windowed upload");
    assert!(std::fs::read(d.root().join("w.bin")).expect("stored") == content);
}
