//! Ring lanes (`performance.io_uring.shared_ring`): downloads whose sends and receives go
//! through the io_uring their lane thread shares move the same bytes as every other lane,
//! with every client, lock-step and windowed (GSO runs as one `SENDMSG`), many at once, while
//! uploads beside them stay on the async runtime; a stranger gets ERROR 5 without disturbing the transfer; a silent client gets its
//! block again and the drain ends every transfer with an ERROR; SIGHUP moves new transfers on and off the
//! lanes. The metrics say which lane ran. Needs io_uring (Linux 5.11; CI has it).

mod harness;

use std::time::Duration;

use harness::clients::{Client, Opts, every_client_downloads_and_uploads, get};
use harness::raw::{Raw, Reply, request};
use harness::{Daemon, DaemonArgs, TempDir, pattern, start_with_metrics, wait_for_metrics};

const REPLY: Duration = Duration::from_secs(5);
/// Silent transfers beside the first in the drain test: enough that the drain queues
/// ERRORs on every lane in its last turn.
const SILENT_OTHERS: usize = 63;
const LANE_ON: &str = "[performance.cpu]\ntransfer_threads = 0\n\
                       [performance.io_uring]\nshared_ring = true\n";

/// False (and a skip, or a failure under CI) where this kernel refuses io_uring.
fn have_io_uring(test: &str) -> bool {
    if io_uring_allowed() {
        return true;
    }
    harness::skip(test, "needs io_uring (kernel.io_uring_disabled is set)");
    false
}

fn io_uring_allowed() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled").map_or(true, |v| v.trim() == "0")
}

fn lanes(port: u16, async_: u64, ring: u64) {
    wait_for_metrics(
        port,
        &[
            &format!("tftpd_transfers_started_total{{lane=\"async\"}} {async_}"),
            &format!("tftpd_transfers_started_total{{lane=\"shared_ring\"}} {ring}"),
        ],
        REPLY,
    );
}

#[test]
fn every_client_moves_the_same_bytes_through_the_shared_ring() {
    if !have_io_uring("every_client_moves_the_same_bytes_through_the_shared_ring") {
        return;
    }
    let (d, port) = start_with_metrics(format!("write = \"create\"\n{LANE_ON}"));
    let out = TempDir::new("ring");
    let sizes = [0usize, 511, 512, 513, 3 * 1024 * 1024 + 77];
    for (i, size) in sizes.iter().enumerate() {
        d.put_file(&format!("f{i}.bin"), &pattern(*size, i as u64));
    }
    // Uploads stay on the async runtime (their commit blocks).
    let (mut transfers, uploads) = every_client_downloads_and_uploads(
        &d,
        out.path(),
        &sizes,
        "ring",
        "every_client_moves_the_same_bytes_through_the_shared_ring",
    );
    // Windows: each run of equal blocks leaves as one GSO `SENDMSG` through the ring.
    if Client::Atftp.available("every_client_moves_the_same_bytes_through_the_shared_ring") {
        for (b, w) in [(1428u16, 8u16), (8192, 16), (512, 4)] {
            let opts = Opts {
                blksize: Some(b),
                windowsize: Some(w),
                tsize: true,
                ..Opts::default()
            };
            let local = out.path().join(format!("w{b}-{w}"));
            get(Client::Atftp, d.addr(), "f4.bin", &local, &opts)
                .unwrap_or_else(|e| panic!("atftp {opts:?}: {e}"));
            assert!(
                std::fs::read(&local).expect("downloaded") == pattern(sizes[4], 4),
                "atftp {opts:?}: bytes differ"
            );
            transfers += 1;
        }
    }
    lanes(port, uploads, transfers);
    assert!(
        d.log().contains("shared io_uring lanes started"),
        "the lanes say they started:\n{}",
        d.log()
    );
}

#[test]
fn many_transfers_at_once_share_the_lanes_and_all_verify() {
    if !have_io_uring("many_transfers_at_once_share_the_lanes_and_all_verify") {
        return;
    }
    let (d, port) = start_with_metrics(LANE_ON.to_string());
    let content = pattern(100_000, 4);
    d.put_file("m.bin", &content);
    let addr = d.addr();
    let threads: Vec<_> = (0..40)
        .map(|_| {
            std::thread::spawn(move || {
                Raw::new(addr).download("m.bin", &[("blksize", "1000")], REPLY)
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().expect("client thread"), Ok(content.clone()));
    }
    lanes(port, 0, 40);
}

#[test]
fn a_stranger_on_a_ring_transfer_gets_error_5_and_the_transfer_goes_on() {
    if !have_io_uring("a_stranger_on_a_ring_transfer_gets_error_5_and_the_transfer_goes_on") {
        return;
    }
    let (d, _port) = start_with_metrics(LANE_ON.to_string());
    d.put_file("s.bin", &pattern(2048, 3));
    Raw::new(d.addr()).download_past_a_stranger("s.bin", 2048, 3, "ring lane");
}

#[test]
fn a_silent_client_gets_its_block_again_and_the_drain_ends_every_transfer() {
    if !have_io_uring("a_silent_client_gets_its_block_again_and_the_drain_ends_every_transfer") {
        return;
    }
    let mut d = Daemon::start(DaemonArgs {
        config: Some(format!(
            "[shutdown]\ngrace_period_secs = 0\n[protocol]\ntimeout_ms = 1000\n{LANE_ON}"
        )),
        ..DaemonArgs::default()
    });
    d.put_file("big.bin", &pattern(1 << 20, 5));
    let c = Raw::new(d.addr());
    c.send(&request(1, b"big.bin", "octet", &[]));
    let (first, tid) = c.expect(REPLY, "DATA 1");
    assert!(matches!(first, Reply::Data { block: 1, .. }), "{first:?}");
    // No ACK: the retransmit timer on the lane sends DATA 1 again.
    match c.expect(REPLY, "DATA 1 again") {
        (Reply::Data { block: 1, .. }, from) => assert_eq!(from, tid),
        other => panic!("expected DATA 1 again, got {other:?}"),
    }
    // More silent transfers on the lanes: the drain's ERRORs are queued in their rings as
    // the daemon exits, and each must still leave (the exit submits what the lanes queued).
    let others: Vec<Raw> = (0..SILENT_OTHERS)
        .map(|_| {
            let o = Raw::new(d.addr());
            o.send(&request(1, b"big.bin", "octet", &[]));
            o
        })
        .collect();
    for o in &others {
        let (first, _) = o.expect(REPLY, "DATA 1");
        assert!(matches!(first, Reply::Data { block: 1, .. }), "{first:?}");
    }
    d.signal("TERM");
    c.expect_drain_error(REPLY);
    for o in &others {
        o.expect_drain_error(REPLY);
    }
    let status = d.wait_exit(REPLY);
    assert!(status.success(), "exit {status:?}");
}

#[test]
fn sighup_moves_new_transfers_on_and_off_the_ring_lanes() {
    if !have_io_uring("sighup_moves_new_transfers_on_and_off_the_ring_lanes") {
        return;
    }
    let (d, port) = start_with_metrics("[performance.cpu]\ntransfer_threads = 0\n".to_string());
    d.put_file("r.bin", &pattern(3000, 8));
    let get = || Raw::new(d.addr()).download("r.bin", &[], REPLY);
    let reload = |config: &str| d.reload_with(config, REPLY);
    assert_eq!(get(), Ok(pattern(3000, 8)));
    lanes(port, 1, 0);
    assert!(
        !d.log().contains("shared io_uring lanes started"),
        "no lane threads while the key is off"
    );
    reload(LANE_ON);
    assert_eq!(get(), Ok(pattern(3000, 8)));
    lanes(port, 1, 1);
    reload("[performance.cpu]\ntransfer_threads = 0\n");
    assert_eq!(get(), Ok(pattern(3000, 8)));
    lanes(port, 2, 1);
}
