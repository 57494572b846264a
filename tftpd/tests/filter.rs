//! The packet filter, userspace path: a fixed mix of junk and valid datagrams to the listener
//! and to a transfer socket; the transfer still completes and every counter in the metrics
//! equals its expected count. The kernel paths (issue #3) must pass the same mix.

mod harness;

use std::io::{Read as _, Write as _};
use std::time::Duration;

use harness::raw::{Raw, Reply, ack, data, request};
use harness::{Daemon, DaemonArgs};

const REPLY: Duration = Duration::from_secs(5);

fn scrape(port: u16) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect metrics");
    s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n")
        .expect("request");
    let mut body = String::new();
    s.read_to_string(&mut body).expect("response");
    body
}

fn counter(body: &str, name: &str, verdict: &str, reason: &str) -> u64 {
    let key = format!("{name}{{path=\"userspace\",verdict=\"{verdict}\",reason=\"{reason}\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&key))
        .unwrap_or_else(|| panic!("no {key} in:\n{body}"))
        .parse()
        .expect("a number")
}

#[test]
fn junk_mix_is_dropped_and_counted_and_the_transfer_completes() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port();
    let d = Daemon::start(DaemonArgs {
        args: vec!["--metrics-listen".into(), format!("127.0.0.1:{port}")],
        config: Some("[protocol]\nmax_blksize = 512\ntimeout_ms = 3000\n".into()),
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
    assert!(content.len() < 512, "the file fits one block");
    d.wait_for_log("transfer finished", REPLY);

    let body = scrape(port);
    let pkt = "tftpd_filter_packets_total";
    let bytes = "tftpd_filter_bytes_total";
    let expected = [
        ("drop", "bad_opcode", 4, 8 + 4 + 6 + 10),
        ("drop", "too_short", 2, 1 + 3),
        ("drop", "malformed_request", 2, 14 + 15),
        ("drop", "bad_ack_length", 2, 10),
        ("drop", "oversized", 1, 604),
        ("pass", "passed", 2, rrq.len() as u64 + 4),
    ];
    for (verdict, reason, packets, byte_count) in expected {
        assert_eq!(
            counter(&body, pkt, verdict, reason),
            packets,
            "{reason} packets"
        );
        assert_eq!(
            counter(&body, bytes, verdict, reason),
            byte_count,
            "{reason} bytes"
        );
    }
    assert!(body.contains("tftpd_requests_total{kind=\"read\",outcome=\"completed\"} 1"));
}
