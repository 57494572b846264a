//! The fixed junk/valid mix every filter path must pass with the same counts: sent to the
//! listener and to a transfer socket, while a real transfer completes.

use std::time::Duration;

use super::raw::{Raw, Reply, ack, data, request};
use super::{Daemon, DaemonArgs, free_tcp_port, scrape_metrics};

const REPLY: Duration = Duration::from_secs(5);

/// One filter counter from a metrics page.
pub(crate) fn counter(body: &str, name: &str, path: &str, verdict: &str, reason: &str) -> u64 {
    let key = format!("{name}{{path=\"{path}\",verdict=\"{verdict}\",reason=\"{reason}\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&key))
        .unwrap_or_else(|| panic!("no {key} in:\n{body}"))
        .parse()
        .expect("a number")
}

/// (verdict, reason, packets, bytes) the mix must produce.
pub(crate) const EXPECTED: [(&str, &str, u64, u64); 5] = [
    ("drop", "bad_opcode", 4, 8 + 4 + 6 + 10),
    ("drop", "too_short", 2, 1 + 3),
    ("drop", "malformed_request", 2, 14 + 15),
    ("drop", "bad_ack_length", 2, 10),
    ("drop", "oversized", 1, 604),
];

/// Runs the mix against a daemon started with `extra` args and checks the `path` series of
/// the metrics. Returns the daemon (still running) and the metrics page.
pub(crate) fn run_mix(path: &str, extra: &[&str], extra_config: &str) -> (Daemon, String) {
    let port = free_tcp_port();
    let mut args = vec!["--metrics-listen".to_string(), format!("127.0.0.1:{port}")];
    args.extend(extra.iter().map(|s| s.to_string()));
    let d = Daemon::start(DaemonArgs {
        args,
        config: Some(format!(
            "[protocol]\nmax_blksize = 512\ntimeout_ms = 3000\n{extra_config}"
        )),
        ..DaemonArgs::default()
    });
    d.put_file(
        "f.bin",
        b"a hundred bytes or so of file content, enough for one DATA block.",
    );

    let junk = Raw::new(d.addr());
    let listener_junk: [&[u8]; 7] = [
        b"\x00\x03\x00\x01data",     // bad_opcode (8 bytes)
        b"\x00\x04\x00\x01",         // bad_opcode (4)
        b"\xff\xffjunk",             // bad_opcode (6)
        b"\x00",                     // too_short (1)
        b"\x00\x01\x00",             // too_short (3)
        b"\x00\x01unterminated",     // malformed_request (14)
        b"\x00\x02only-one-nul\x00", // malformed_request (15)
    ];
    for j in listener_junk {
        junk.send(j);
    }
    assert!(
        junk.recv(Duration::from_millis(300)).is_none(),
        "junk gets no answer"
    );

    let c = Raw::new(d.addr());
    let rrq = request(1, b"f.bin", "octet", &[]); // passed
    c.send(&rrq);
    let (first, tid) = c.expect(REPLY, "DATA 1");
    let Reply::Data {
        block: 1,
        data: content,
    } = first
    else {
        panic!("expected DATA 1, got {first:?}")
    };
    assert!(content.len() < 512, "the file fits one block");
    let transfer_junk: [Vec<u8>; 4] = [
        b"\x00\x04\x00\x01\x00".to_vec(), // bad_ack_length (5)
        b"\x00\x04\x00\x01\x00".to_vec(), // bad_ack_length (5)
        request(1, b"x", "octet", &[]),   // bad_opcode (10)
        data(1, &[0; 600]),               // oversized (604)
    ];
    for j in &transfer_junk {
        c.send_to(j, tid);
    }
    c.send_to(&ack(1), tid); // passed
    d.wait_for_log("transfer finished", REPLY);

    let mut body = scrape_metrics(port);
    if path == "cbpf" {
        // Classic BPF has no reasons: every drop is one "unclassified" count, read from the
        // sockets' kernel drop counters; the transfer socket's arrive when it closes, just
        // after the "transfer finished" line.
        let want: u64 = EXPECTED.iter().map(|e| e.2).sum();
        let name = "tftpd_filter_packets_total";
        let deadline = std::time::Instant::now() + REPLY;
        while counter(&body, name, path, "drop", "unclassified") != want
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(50));
            body = scrape_metrics(port);
        }
        assert_eq!(
            counter(&body, name, path, "drop", "unclassified"),
            want,
            "cbpf: every junk datagram dropped in the kernel"
        );
        assert!(
            !body.contains("path=\"cbpf\",verdict=\"drop\",reason=\"bad_opcode\""),
            "cbpf must not pretend to know reasons"
        );
    }
    for name in ["tftpd_filter_packets_total", "tftpd_filter_bytes_total"] {
        let bytes = name.contains("bytes");
        for (verdict, reason, packets, byte_count) in EXPECTED {
            if path == "cbpf" {
                // What reached the daemon was counted by the userspace rule: nothing here.
                assert_eq!(
                    counter(&body, name, "userspace", verdict, reason),
                    0,
                    "cbpf: {reason} junk must not reach the daemon"
                );
                continue;
            }
            let want = if bytes { byte_count } else { packets };
            assert_eq!(
                counter(&body, name, path, verdict, reason),
                want,
                "{path} {name} {reason}"
            );
        }
        let passed = if bytes { rrq.len() as u64 + 4 } else { 2 };
        assert_eq!(
            counter(&body, name, path, "pass", "passed"),
            passed,
            "{path} {name} passed"
        );
    }
    assert!(body.contains("tftpd_requests_total{kind=\"read\",outcome=\"completed\"} 1"));
    (d, body)
}
