//! tftp-load against the real tftpd server on loopback: downloads and uploads verify, the
//! impairment causes retransmissions yet every byte arrives, rollover past block 65535 works,
//! each failure kind is reported as such, and DATA resent after its ACK got through is
//! counted as spurious. Checks bytes and counts, never speed.

mod harness;

use std::sync::Arc;
use std::time::Duration;

use harness::{Server, download, pattern};
use tftpd_benches::content::sha256;
use tftpd_benches::impair::Impairment;
use tftpd_benches::{Expected, RequestOptions, Stop, Transfer, run};

fn assert_clean(r: &tftpd_benches::Report, what: &str) {
    assert!(
        r.failures.is_empty() && r.ok == r.transfers && r.transfers > 0,
        "{what}: every transfer must verify; report:\n{r}"
    );
}

#[test]
fn downloads_verify_at_several_blksizes_and_windowsizes() {
    let server = Server::start("127.0.0.1:0", "");
    let content = pattern(150_000, 1);
    server.put_file("f.bin", &content);
    for (blksize, windowsize, tsize) in [
        (None, None, false),
        (Some(512), Some(1), true),
        (Some(1428), Some(8), true),
        (Some(8192), Some(16), false),
        (Some(65464), Some(2), true),
    ] {
        let mut spec = download(server.addr(), "f.bin", &content);
        spec.options = RequestOptions {
            blksize,
            windowsize,
            tsize,
            timeout: None,
        };
        spec.clients = 3;
        spec.stop = Stop::Repeat(2);
        let r = run(&spec).expect("a download run");
        let what = format!("blksize {blksize:?} windowsize {windowsize:?} tsize {tsize}");
        assert_clean(&r, &what);
        assert_eq!(r.transfers, 6, "{what}: 3 clients × 2 repeats");
        assert_eq!(r.bytes, 6 * 150_000, "{what}: bytes of every transfer");
        assert!(r.init_latency.is_some() && r.duration.is_some(), "{what}");
        let n = r.negotiated.first().expect("the values transfers ran with");
        assert_eq!(
            (n.blksize, n.windowsize, n.transfers),
            (blksize.unwrap_or(512), windowsize.unwrap_or(1), 6),
            "{what}: tftpd grants what was asked for"
        );
    }
}

#[test]
fn a_download_over_ipv6_verifies_by_digest() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        harness::skip(
            "a_download_over_ipv6_verifies_by_digest",
            "needs IPv6 on lo",
        );
        return;
    }
    let server = Server::start("[::1]:0", "");
    let content = pattern(40_000, 2);
    server.put_file("v6.bin", &content);
    let mut spec = download(server.addr(), "v6.bin", &content);
    spec.transfer = Transfer::Download {
        file: "v6.bin".into(),
        expect: Expected::Digest {
            sha256: sha256(&content),
            size: Some(40_000),
        },
    };
    spec.options.windowsize = Some(4);
    let r = run(&spec).expect("an IPv6 download run");
    assert_clean(&r, "IPv6");
    assert_eq!(r.bytes, 40_000);
}

#[test]
fn uploads_verify_and_the_stored_files_match_what_was_sent() {
    let server = Server::start("127.0.0.1:0", "");
    let mut spec = download(server.addr(), "", &[]);
    spec.transfer = Transfer::Upload {
        remote: "up-{client}.bin".into(),
        size: 100_000,
        stored_root: Some(server.root().to_path_buf()),
    };
    spec.options = RequestOptions {
        blksize: Some(1024),
        windowsize: Some(4),
        tsize: true,
        timeout: None,
    };
    spec.clients = 3;
    let r = run(&spec).expect("an upload run");
    assert_clean(&r, "upload");
    assert_eq!(r.bytes, 300_000);
    assert_eq!(r.stored_checked, 3, "one stored file per client");
    assert!(server.root().join("up-2.bin").exists(), "client 2's upload");
}

#[test]
fn a_stored_upload_that_differs_is_reported_corrupt() {
    let server = Server::start("127.0.0.1:0", "");
    let elsewhere = harness::temp_dir();
    // The check reads from a directory that holds a different file under the same name.
    std::fs::write(elsewhere.path().join("up.bin"), vec![0u8; 5000]).expect("decoy");
    let mut spec = download(server.addr(), "", &[]);
    spec.transfer = Transfer::Upload {
        remote: "up.bin".into(),
        size: 5000,
        stored_root: Some(elsewhere.path().to_path_buf()),
    };
    let r = run(&spec).expect("an upload run");
    assert_eq!(r.ok, 1, "the upload itself succeeds:\n{r}");
    assert_eq!(
        r.failures.get("corrupt"),
        Some(&1),
        "the stored copy differs:\n{r}"
    );
}

/// 5 % loss, duplication and reordering both ways, fixed seed.
fn rough(seed: u64) -> Impairment {
    Impairment {
        loss: 0.05,
        dup: 0.05,
        reorder: 0.05,
        delay: Duration::ZERO,
        seed,
    }
}

#[test]
fn impaired_transfers_still_verify_and_show_retransmits() {
    // The fixed 200 ms timer: the adaptive one recovers before the client's 100 ms timer
    // fires, and this test is about the client's own retransmissions.
    let server = Server::start("127.0.0.1:0", "adaptive_timeout = false\n");
    let content = pattern(60_000, 3);
    server.put_file("rough.bin", &content);
    let mut get = download(server.addr(), "rough.bin", &content);
    get.options.windowsize = Some(4);
    let mut put = download(server.addr(), "", &[]);
    put.transfer = Transfer::Upload {
        remote: "rough-{client}.bin".into(),
        size: 60_000,
        stored_root: Some(server.root().to_path_buf()),
    };
    for (what, mut spec) in [("download", get), ("upload", put)] {
        spec.impairment = rough(11);
        // Shorter than the server's 200 ms, so lost datagrams are also resent from this side.
        spec.retransmit_timeout = Duration::from_millis(100);
        spec.max_retries = 30;
        spec.clients = 2;
        let r = run(&spec).expect("an impaired run");
        assert_clean(&r, what);
        assert!(
            r.retransmits > 0,
            "{what}: loss must cause retransmits:\n{r}"
        );
        let i = r.impaired;
        assert!(
            i.dropped > 0 && i.duplicated > 0 && i.held > 0,
            "{what}: each impairment must have acted:\n{r}"
        );
    }
}

#[test]
fn a_download_past_block_65535_rolls_over_and_verifies() {
    let server = Server::start("127.0.0.1:0", "");
    // 70 000 blocks of 8 bytes and a short one: the wire numbers wrap once.
    let content = pattern(70_000 * 8 + 3, 4);
    server.put_file("long.bin", &content);
    let mut spec = download(server.addr(), "long.bin", &content);
    spec.options.blksize = Some(8);
    spec.options.windowsize = Some(16);
    let r = run(&spec).expect("a rollover download");
    assert_clean(&r, "rollover");
    assert_eq!(r.bytes, content.len() as u64);
}

#[test]
fn a_missing_file_is_counted_as_error_code_1() {
    let server = Server::start("127.0.0.1:0", "");
    let spec = download(server.addr(), "no-such-file", b"x");
    let r = run(&spec).expect("a run");
    assert_eq!(r.ok, 0);
    assert_eq!(
        r.failures.into_iter().collect::<Vec<_>>(),
        vec![("error_1".to_string(), 1)],
        "file not found is ERROR 1"
    );
}

#[test]
fn wrong_and_short_content_are_told_apart() {
    let server = Server::start("127.0.0.1:0", "");
    let content = pattern(20_000, 5);
    server.put_file("f.bin", &content);
    let mut flipped = content.clone();
    flipped[12_345] ^= 1;
    let longer = [content.as_slice(), b"more"].concat();
    for (what, expect, kind) in [
        (
            "a flipped bit",
            Expected::Bytes(Arc::from(flipped)),
            "corrupt",
        ),
        ("a longer copy", Expected::Bytes(Arc::from(longer)), "short"),
        (
            "another digest",
            Expected::Digest {
                sha256: sha256(b"other"),
                size: None,
            },
            "corrupt",
        ),
    ] {
        let mut spec = download(server.addr(), "f.bin", &content);
        spec.transfer = Transfer::Download {
            file: "f.bin".into(),
            expect,
        };
        let r = run(&spec).expect("a run");
        assert_eq!(
            r.failures.get(kind),
            Some(&1),
            "{what} must be {kind}:\n{r}"
        );
        assert_eq!(r.bytes, 0, "{what}: unverified bytes are not counted");
    }
}

#[test]
fn a_silent_server_is_a_timeout_after_the_retries() {
    // Bound but never read: requests vanish.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("a silent socket");
    let mut spec = download(silent.local_addr().expect("address"), "f", b"x");
    spec.retransmit_timeout = Duration::from_millis(30);
    spec.max_retries = 2;
    let r = run(&spec).expect("a run");
    assert_eq!(r.failures.get("timeout"), Some(&1), "{r}");
    assert_eq!(r.retransmits, 2, "the RRQ is sent again once per retry");
    assert_eq!(r.init_latency, None, "nothing ever answered");
}

#[test]
fn a_duration_run_keeps_clients_busy_until_it_ends() {
    let server = Server::start("127.0.0.1:0", "");
    let content = pattern(2000, 6);
    server.put_file("small.bin", &content);
    let mut spec = download(server.addr(), "small.bin", &content);
    spec.clients = 2;
    spec.stop = Stop::Duration(Duration::from_millis(300));
    let r = run(&spec).expect("a timed run");
    assert_clean(&r, "duration");
    assert!(
        r.transfers > 2,
        "each client must run more than one transfer in 300 ms:\n{r}"
    );
    assert!(
        r.wall_secs >= 0.3,
        "the run lasts its duration: {}",
        r.wall_secs
    );
}

#[test]
fn a_tsize_answer_that_differs_from_the_expected_size_is_corrupt() {
    let server = Server::start("127.0.0.1:0", "");
    let content = pattern(3000, 9);
    server.put_file("f.bin", &content);
    // The local copy is longer than the served file: with tsize the server's answer (3000)
    // gives it away before any DATA; without, the transfer ends short.
    let longer = [content.as_slice(), b"extra"].concat();
    for (tsize, kind) in [(true, "corrupt"), (false, "short")] {
        let mut spec = download(server.addr(), "f.bin", &longer);
        spec.options.tsize = tsize;
        let r = run(&spec).expect("a run");
        assert_eq!(r.failures.get(kind), Some(&1), "tsize {tsize}:\n{r}");
    }
}

#[test]
fn delay_holds_back_every_datagram_both_ways() {
    let server = Server::start("127.0.0.1:0", "");
    let content = pattern(100, 10);
    server.put_file("f.bin", &content);
    let mut spec = download(server.addr(), "f.bin", &content);
    spec.impairment.delay = Duration::from_millis(40);
    let r = run(&spec).expect("a delayed run");
    assert_clean(&r, "delay");
    let init = r.init_latency.expect("an answer came");
    // The RRQ waits 40 ms on the way out and the first DATA 40 ms on the way in.
    assert!(
        init.p50_ms >= 80.0,
        "init latency {} ms under 2 × 40 ms",
        init.p50_ms
    );
}

/// A scripted server for one 600-byte download, lock-step at blksize 512: DATA 1, and on
/// ACK 1, when `resend`, DATA 1 again (as a server whose timer fired too early would) before
/// DATA 2; then it waits for ACK 2.
fn scripted_server(resend: bool) -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    use tftpd::proto::packet::ack;
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("scripted socket");
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    let addr = sock.local_addr().expect("address");
    let content = pattern(600, 11);
    let data = |block: u16, bytes: &[u8]| [&[0, 3], &block.to_be_bytes()[..], bytes].concat();
    let serve = std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        let (_, client) = sock.recv_from(&mut buf).expect("the RRQ");
        let one = data(1, &content[..512]);
        sock.send_to(&one, client).expect("DATA 1");
        let (n, _) = sock.recv_from(&mut buf).expect("ACK 1");
        assert_eq!(&buf[..n], &ack(1)[..]);
        if resend {
            sock.send_to(&one, client).expect("DATA 1 again");
        }
        sock.send_to(&data(2, &content[512..]), client)
            .expect("DATA 2");
        loop {
            let (n, _) = sock.recv_from(&mut buf).expect("ACK 2");
            if buf[..n] == ack(2)[..] {
                break;
            }
        }
    });
    (addr, serve)
}

#[test]
fn data_resent_after_its_ack_got_through_is_counted_as_spurious() {
    for resend in [false, true] {
        let (addr, serve) = scripted_server(resend);
        let spec = download(addr, "f.bin", &pattern(600, 11));
        let r = run(&spec).expect("a scripted run");
        serve.join().expect("the scripted server");
        assert_clean(&r, "scripted");
        assert_eq!(r.blocks, 2, "two blocks in order:\n{r}");
        assert_eq!(
            r.spurious,
            u64::from(resend),
            "resend {resend}: DATA 1 again after ACK 1 got through:\n{r}"
        );
    }
}

#[test]
fn a_delayed_final_ack_still_reaches_the_server_after_the_run_ends() {
    // The final ACK waits in the link's queue for the delay; the run must not end (and drop
    // it with the runtime) before it has left, or the server never learns the download ended.
    let (addr, serve) = scripted_server(false);
    let mut spec = download(addr, "f.bin", &pattern(600, 11));
    spec.impairment.delay = Duration::from_millis(20);
    let r = run(&spec).expect("a delayed scripted run");
    assert_clean(&r, "delayed scripted");
    serve
        .join()
        .expect("the scripted server got ACK 2 within its 5 s read timeout");
}
