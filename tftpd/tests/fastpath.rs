//! The fast paths move the right bytes: each is checked against a real client and against
//! hand-made packets, with the path on and off, and the metrics show which path ran. Speed
//! is the benchmarks' business, never a test's.

mod harness;

use std::time::Duration;

use harness::clients::{Client, Opts, get};
use harness::raw::{Raw, Reply, ack, request};
use harness::{Daemon, DaemonArgs, TempDir, metric, pattern, scrape_metrics, start_with_metrics};

const REPLY: Duration = Duration::from_secs(5);

fn start(gso: bool) -> (Daemon, u16) {
    start_with_metrics(format!("[performance.batching]\ngso = {gso}\n"))
}

#[test]
fn a_gso_window_arrives_as_separate_datagrams() {
    for gso in [true, false] {
        let (d, port) = start(gso);
        // 8 full blocks and a short one: the window of 8 leaves in one GSO call.
        let content = pattern(8 * 512 + 100, 11);
        d.put_file("w.bin", &content);
        let c = Raw::new(d.addr());
        c.send(&request(
            1,
            b"w.bin",
            "octet",
            &[("windowsize", "8"), ("blksize", "512")],
        ));
        let (oack, tid) = c.expect(REPLY, "OACK");
        assert!(matches!(oack, Reply::Oack(_)), "{oack:?}");
        c.send_to(&ack(0), tid);
        let mut got = Vec::new();
        for block in 1..=8u16 {
            match c.expect(REPLY, "DATA") {
                (Reply::Data { block: b, data }, _) if b == block => {
                    assert_eq!(
                        data.len(),
                        512,
                        "gso={gso}: block {block} is its own datagram"
                    );
                    got.extend_from_slice(&data);
                }
                other => panic!("gso={gso}: expected DATA {block}, got {other:?}"),
            }
        }
        c.send_to(&ack(8), tid);
        match c.expect(REPLY, "DATA 9") {
            (Reply::Data { block: 9, data }, _) => got.extend_from_slice(&data),
            other => panic!("expected DATA 9, got {other:?}"),
        }
        c.send_to(&ack(9), tid);
        assert_eq!(got, content, "gso={gso}: every byte");
        d.wait_for_log("transfer finished", REPLY);
        let body = scrape_metrics(port);
        let gso_calls = metric(&body, "tftpd_send_calls_total{method=\"gso\"}");
        if gso {
            assert!(gso_calls >= 1, "the window went out with GSO:\n{body}");
            assert!(
                d.log().contains("windows are sent with UDP GSO"),
                "the start-up line says so"
            );
        } else {
            assert_eq!(gso_calls, 0, "gso = false sends one datagram per call");
        }
        assert!(metric(&body, "tftpd_datagrams_sent_total") >= 10);
    }
}

#[test]
fn real_clients_download_windows_through_gso() {
    if !Client::Atftp.available("real_clients_download_windows_through_gso") {
        return;
    }
    let (d, port) = start(true);
    let content = pattern(3 * 1024 * 1024 + 77, 12);
    d.put_file("big.bin", &content);
    let dir = TempDir::new("gso");
    for (blksize, windowsize) in [(512, 16), (1428, 8), (8192, 4)] {
        let local = dir.path().join(format!("big-{blksize}-{windowsize}"));
        get(
            Client::Atftp,
            d.addr(),
            "big.bin",
            &local,
            &Opts {
                blksize: Some(blksize),
                windowsize: Some(windowsize),
                ..Opts::default()
            },
        )
        .unwrap_or_else(|e| panic!("atftp blksize {blksize} windowsize {windowsize}: {e}"));
        assert!(
            std::fs::read(&local).expect("read") == content,
            "blksize {blksize} windowsize {windowsize}: the file arrives intact"
        );
    }
    let body = scrape_metrics(port);
    assert!(
        metric(&body, "tftpd_send_calls_total{method=\"gso\"}") > 100,
        "{body}"
    );
}

#[test]
fn socket_buffers_are_set_and_reported() {
    let d = Daemon::start(DaemonArgs {
        config: Some("[performance.socket]\nrecv_buffer = 3000000\nsend_buffer = 1000000\n".into()),
        ..DaemonArgs::default()
    });
    let log = d.log();
    let line = log
        .lines()
        .find(|l| l.contains("socket buffers"))
        .unwrap_or_else(|| panic!("the effective sizes are logged:\n{log}"));
    let field = |name: &str| -> usize {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in {line}"))
            .parse()
            .expect("a number")
    };
    if harness::is_root() {
        // Root forces past net.core.rmem_max; the kernel reports double the request.
        assert!(line.contains("socket buffers set"), "{line}");
        assert!(field("effective_recv") >= 3_000_000, "{line}");
        assert!(field("effective_send") >= 1_000_000, "{line}");
    } else {
        assert!(field("effective_recv") > 0, "{line}");
    }
    // Still serves.
    d.put_file("f", b"x");
    let got = Raw::new(d.addr())
        .download("f", &[], REPLY)
        .expect("serves");
    assert_eq!(got, b"x");
}
