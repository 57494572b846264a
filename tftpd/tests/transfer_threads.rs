//! Transfer threads (`performance.cpu.transfer_threads`): transfers on a thread of their own
//! with blocking socket calls move the same bytes as transfers on the async runtime, with
//! every client and both ways; the limit sends the rest to the runtime; a stranger gets ERROR
//! 5 without disturbing the transfer; a stalled transfer on a thread is ended by the drain.
//! The metrics say which lane ran.

mod harness;

use std::time::Duration;

use harness::clients::every_client_downloads_and_uploads;
use harness::raw::{Raw, Reply, ack, request};
use harness::{Daemon, DaemonArgs, TempDir, metric, pattern, start_with_metrics, wait_for_metrics};

const REPLY: Duration = Duration::from_secs(5);

fn start(threads: u16) -> (Daemon, u16) {
    start_with_metrics(format!(
        "write = \"create\"\n[performance.cpu]\ntransfer_threads = {threads}\n"
    ))
}

#[test]
fn every_client_moves_the_same_bytes_on_a_thread_and_on_the_runtime() {
    let out = TempDir::new("lanes");
    // Sizes around the 512-byte block edges, and one of 6000-odd blocks.
    let sizes = [0usize, 511, 512, 513, 3 * 1024 * 1024 + 77];
    for (lane, threads) in [("thread", 16u16), ("async", 0)] {
        let (d, port) = start(threads);
        for (i, size) in sizes.iter().enumerate() {
            d.put_file(&format!("f{i}.bin"), &pattern(*size, i as u64));
        }
        let (downloads, uploads) = every_client_downloads_and_uploads(
            &d,
            out.path(),
            &sizes,
            lane,
            "every_client_moves_the_same_bytes_on_a_thread_and_on_the_runtime",
        );
        let transfers = downloads + uploads;
        let expected: Vec<String> = ["thread", "async"]
            .iter()
            .map(|l| {
                let n = if *l == lane { transfers } else { 0 };
                format!("tftpd_transfers_started_total{{lane=\"{l}\"}} {n}")
            })
            .collect();
        let wanted: Vec<&str> = expected.iter().map(String::as_str).collect();
        wait_for_metrics(port, &wanted, REPLY);
    }
}

#[test]
fn the_limit_sends_further_transfers_to_the_runtime() {
    let (d, port) = start(1);
    d.put_file("a.bin", &pattern(4096, 1));
    // Two downloads held open at once (OACKs unanswered): one thread, one async.
    let clients: Vec<Raw> = (0..2).map(|_| Raw::new(d.addr())).collect();
    let mut tids = Vec::new();
    for c in &clients {
        c.send(&request(1, b"a.bin", "octet", &[("blksize", "1024")]));
        let (oack, tid) = c.expect(REPLY, "OACK");
        assert!(matches!(oack, Reply::Oack(_)), "{oack:?}");
        tids.push(tid);
    }
    let body = wait_for_metrics(
        port,
        &[
            "tftpd_transfers_started_total{lane=\"thread\"} 1",
            "tftpd_transfers_started_total{lane=\"async\"} 1",
        ],
        REPLY,
    );
    assert_eq!(metric(&body, "tftpd_active_transfers"), 2, "{body}");
    // Both finish with the right bytes.
    for (c, tid) in clients.iter().zip(&tids) {
        let mut got = Vec::new();
        c.send_to(&ack(0), *tid);
        for block in 1..=5u16 {
            match c.expect(REPLY, "DATA") {
                (Reply::Data { block: b, data }, _) if b == block => got.extend_from_slice(&data),
                other => panic!("expected DATA {block}, got {other:?}"),
            }
            c.send_to(&ack(block), *tid);
        }
        assert_eq!(got, pattern(4096, 1), "every byte");
    }
    // The thread's place came back: the next transfer runs on a thread again.
    wait_for_metrics(port, &["tftpd_active_transfers 0"], REPLY);
    let c = Raw::new(d.addr());
    let again = c.download("a.bin", &[], REPLY).expect("a third download");
    assert_eq!(again, pattern(4096, 1), "every byte");
    wait_for_metrics(
        port,
        &["tftpd_transfers_started_total{lane=\"thread\"} 2"],
        REPLY,
    );
}

#[test]
fn a_stranger_on_a_thread_transfer_gets_error_5_and_the_transfer_goes_on() {
    let (d, _port) = start(4);
    d.put_file("s.bin", &pattern(2048, 3));
    Raw::new(d.addr()).download_past_a_stranger("s.bin", 2048, 3, "thread");
}

#[test]
fn the_drain_ends_a_stalled_thread_transfer_with_an_error() {
    let mut d = Daemon::start(DaemonArgs {
        config: Some(
            "[shutdown]\ngrace_period_secs = 0\n[protocol]\ntimeout_ms = 60000\n\
             [performance.cpu]\ntransfer_threads = 4\n"
                .into(),
        ),
        ..DaemonArgs::default()
    });
    d.put_file("big.bin", &pattern(1 << 20, 5));
    let c = Raw::new(d.addr());
    c.send(&request(1, b"big.bin", "octet", &[]));
    let (first, _tid) = c.expect(REPLY, "DATA 1");
    assert!(matches!(first, Reply::Data { block: 1, .. }), "{first:?}");
    // The client goes quiet: the transfer blocks in its receive (60 s timeout).
    d.signal("TERM");
    c.expect_drain_error(REPLY);
    let status = d.wait_exit(REPLY);
    assert!(status.success(), "exit {status:?}");
}

#[test]
fn sighup_moves_new_transfers_between_lanes() {
    let (d, port) = start(4);
    d.put_file("r.bin", &pattern(3000, 8));
    let get = || Raw::new(d.addr()).download("r.bin", &[], REPLY);
    let reload = |config: &str| d.reload_with(config, REPLY);
    let lanes = |thread: u64, runtime: u64| {
        wait_for_metrics(
            port,
            &[
                &format!("tftpd_transfers_started_total{{lane=\"thread\"}} {thread}"),
                &format!("tftpd_transfers_started_total{{lane=\"async\"}} {runtime}"),
            ],
            REPLY,
        );
    };
    assert_eq!(get(), Ok(pattern(3000, 8)));
    lanes(1, 0);
    reload("[performance.cpu]\ntransfer_threads = 0\n");
    assert_eq!(get(), Ok(pattern(3000, 8)));
    lanes(1, 1);
    reload("[performance.cpu]\ntransfer_threads = 4\n");
    assert_eq!(get(), Ok(pattern(3000, 8)));
    lanes(2, 1);
}
