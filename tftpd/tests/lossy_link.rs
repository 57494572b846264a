//! The shell on a lossy link: every transfer backend (a thread with a blocking socket, the
//! async runtime with `recvmmsg` or with tokio's socket, and single-port mode) carries
//! downloads and uploads, lock-step and windowed, intact through seeded loss, duplication
//! and reordering in both directions. The impairment is tftp-load's (the client drops,
//! doubles and holds back datagrams each way by a seeded generator), so the same losses
//! reach each backend; the protocol core's own lossy-link tests (`proto/sim.rs`) never run
//! the drive loop, its timers or its sockets.

mod harness;

use std::sync::Arc;
use std::time::Duration;

use harness::{pattern, start_with_metrics, wait_for_metrics};
use tftpd_benches::impair::Impairment;
use tftpd_benches::{Expected, LoadSpec, RequestOptions, Stop, Transfer};

/// Each backend, the config that selects it (a top-level key, then tables) and the lane its
/// transfers are counted in.
const BACKENDS: [(&str, &str, &str, &str); 4] = [
    (
        "blocking",
        "",
        "[performance.cpu]\ntransfer_threads = 16\n",
        "thread",
    ),
    (
        "owned recvmmsg",
        "",
        "[performance.cpu]\ntransfer_threads = 0\n[performance.batching]\ntransfer_recvmmsg = true\n",
        "async",
    ),
    (
        "portable",
        "",
        "[performance.cpu]\ntransfer_threads = 0\n[performance.batching]\ntransfer_recvmmsg = false\n",
        "async",
    ),
    ("single port", "single_port = true\n", "", "async"),
];

/// 5 % loss, 3 % duplication and 3 % reordering each way: every transfer below meets all
/// three many times (about 170 blocks each way per download).
fn impairment(seed: u64) -> Impairment {
    Impairment {
        loss: 0.05,
        dup: 0.03,
        reorder: 0.03,
        delay: Duration::ZERO,
        seed,
    }
}

fn spec(server: std::net::SocketAddr, transfer: Transfer, windowsize: Option<u16>) -> LoadSpec {
    LoadSpec {
        server,
        transfer,
        options: RequestOptions {
            blksize: Some(1024),
            windowsize,
            ..RequestOptions::default()
        },
        // Both sides time out after 100 ms (the daemon's protocol.timeout_ms below), so a
        // loss costs a tenth of a second, not one. The client gives up only after 10 s
        // without progress: an upload's final ACK waits for its fsync, which a busy disk
        // can hold for seconds.
        retransmit_timeout: Duration::from_millis(100),
        max_retries: 100,
        clients: 4,
        stop: Stop::Repeat(2),
        impairment: impairment(0x5eed ^ u64::from(windowsize.unwrap_or(1))),
        threads: Some(1),
    }
}

#[test]
fn every_backend_carries_transfers_intact_through_loss_duplication_and_reordering() {
    let content: Arc<[u8]> = Arc::from(pattern(170 * 1024 + 77, 12));
    for (name, top, tables, lane) in BACKENDS {
        let (d, port) = start_with_metrics(format!(
            "write = \"create\"\n{top}[protocol]\ntimeout_ms = 100\nmax_retries = 20\n\
             [limits]\nhalf_open_retries = 5\n{tables}"
        ));
        d.put_file("lossy.bin", &content);
        let mut transfers = 0;
        for windowsize in [None, Some(8)] {
            let download = Transfer::Download {
                file: "lossy.bin".into(),
                expect: Expected::Bytes(content.clone()),
            };
            let r = tftpd_benches::run(&spec(d.addr(), download, windowsize))
                .unwrap_or_else(|e| panic!("{name}: the load ran: {e}"));
            assert_eq!(
                (r.ok, r.transfers),
                (8, 8),
                "{name}, windowsize {windowsize:?}: every download intact: {:?}\n{}",
                r.failures,
                d.log()
            );
            // The server's adaptive timer may resend a lost block before the client's own
            // 100 ms timer fires, so what shows the link was lossy is the impairment's count.
            assert!(
                r.impaired.dropped > 0,
                "{name}, windowsize {windowsize:?}: the link lost something"
            );
            transfers += 8;
        }
        let upload = Transfer::Upload {
            remote: format!("up-{}-{{client}}-{{repeat}}.bin", name.replace(' ', "-")),
            size: 100 * 1024 + 5,
            stored_root: Some(d.root().to_path_buf()),
        };
        let r = tftpd_benches::run(&spec(d.addr(), upload, None))
            .unwrap_or_else(|e| panic!("{name}: the upload load ran: {e}"));
        assert_eq!(
            (r.ok, r.transfers),
            (8, 8),
            "{name}: every upload stored intact: {:?}\n{}",
            r.failures,
            d.log()
        );
        transfers += 8;
        // The transfers ran on the backend the config chose.
        wait_for_metrics(
            port,
            &[&format!(
                "tftpd_transfers_started_total{{lane=\"{lane}\"}} {transfers}"
            )],
            Duration::from_secs(5),
        );
    }
}
