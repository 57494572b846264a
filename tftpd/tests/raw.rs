//! Protocol behaviour with hand-made packets: TIDs, duplicates, retransmission, errors and
//! option negotiation, as RFC 1350/1123/2347/2348/2349/7440 require.

mod harness;

use std::time::Duration;

use harness::raw::{Raw, Reply, ack, data, error, request};
use harness::{Daemon, DaemonArgs, METRICS_TIMEOUT, free_tcp_port, pattern, wait_for_metrics};

/// Short enough to observe retransmissions quickly, long enough for a loaded CI machine.
const FAST: &str = "[protocol]\ntimeout_ms = 300\nmax_retries = 2\n";
/// No answer within this means none is coming (well above a loopback round trip).
const QUIET: Duration = Duration::from_millis(400);
const REPLY: Duration = Duration::from_secs(5);

fn start(config: Option<&str>, write: &str) -> Daemon {
    Daemon::start(DaemonArgs {
        args: vec!["--write".into(), write.into()],
        config: config.map(str::to_string),
        ..DaemonArgs::default()
    })
}

fn expect_error(raw: &Raw, what: &str) -> (u16, String) {
    match raw.expect(REPLY, what).0 {
        Reply::Error { code, message } => (code, message),
        other => panic!("{what}: expected an ERROR, got {other:?}"),
    }
}

#[test]
fn wrong_tid_gets_error_5_and_transfer_continues() {
    let d = start(None, "off");
    let content = pattern(3000, 1);
    d.put_file("f.bin", &content);
    let client = Raw::new(d.addr());
    client.send(&request(1, b"f.bin", "octet", &[]));
    let (first, tid) = client.expect(REPLY, "DATA 1");
    assert!(
        matches!(first, Reply::Data { block: 1, .. }),
        "got {first:?}"
    );
    let stranger = Raw::new(d.addr());
    stranger.send_to(&ack(1), tid);
    match stranger.expect(REPLY, "ERROR 5 for the stranger").0 {
        Reply::Error { code, .. } => assert_eq!(code, 5, "unknown TID is ERROR 5"),
        other => panic!("stranger got {other:?}"),
    }
    // The real client finishes normally.
    let mut got = match first {
        Reply::Data { data, .. } => data,
        _ => unreachable!(),
    };
    let mut block = 1u16;
    loop {
        client.send_to(&ack(block), tid);
        let (r, from) = client.expect(REPLY, "next DATA");
        assert_eq!(from, tid, "DATA comes from the transfer's TID");
        let Reply::Data { block: b, data } = r else {
            panic!("expected DATA, got {r:?}")
        };
        assert_eq!(b, block + 1);
        block = b;
        got.extend_from_slice(&data);
        if data.len() < 512 {
            client.send_to(&ack(block), tid);
            break;
        }
    }
    assert_eq!(got, content, "the transfer was not disturbed");
}

#[test]
fn duplicate_ack_never_triggers_duplicate_data() {
    // The fixed 3 s timer, so that within the second watched only ACKs can cause DATA (the
    // adaptive one would resend the unanswered DATA 2 after 10 ms).
    let d = start(
        Some("[protocol]\ntimeout_ms = 3000\nadaptive_timeout = false\n"),
        "off",
    );
    d.put_file("f.bin", &pattern(4000, 2));
    let c = Raw::new(d.addr());
    c.send(&request(1, b"f.bin", "octet", &[]));
    let (_, tid) = c.expect(REPLY, "DATA 1");
    c.send_to(&ack(1), tid);
    c.send_to(&ack(1), tid);
    c.send_to(&ack(1), tid);
    let replies = c.collect(Duration::from_millis(1000));
    let data2 = replies
        .iter()
        .filter(|(r, _)| matches!(r, Reply::Data { block: 2, .. }))
        .count();
    assert_eq!(
        data2, 1,
        "three ACK 1s must yield one DATA 2 (no Sorcerer's Apprentice): {replies:?}"
    );
}

#[test]
fn duplicated_rrq_does_not_start_a_second_transfer() {
    let d = start(Some("[protocol]\ntimeout_ms = 3000\n"), "off");
    d.put_file("f.bin", &pattern(4000, 3));
    let c = Raw::new(d.addr());
    let rrq = request(1, b"f.bin", "octet", &[]);
    c.send(&rrq);
    c.send(&rrq);
    c.send(&rrq);
    let replies = c.collect(Duration::from_millis(1000));
    let sources: std::collections::HashSet<_> = replies.iter().map(|(_, from)| *from).collect();
    assert_eq!(
        sources.len(),
        1,
        "one transfer answers a retransmitted RRQ: {replies:?}"
    );
    assert_eq!(replies.len(), 1, "one DATA 1 only: {replies:?}");
}

/// Downloads with `config` a file of two blocks, answers DATA 1, then falls silent; returns
/// how many DATA 2 came, after checking that an ERROR ended it and nothing followed.
fn data_2_sent_to_a_client_that_stopped_answering(config: &str) -> usize {
    let d = start(Some(config), "off");
    d.put_file("f.bin", &pattern(1000, 4));
    let c = Raw::new(d.addr());
    c.send(&request(1, b"f.bin", "octet", &[]));
    // The client answers once, so the transfer is confirmed and the server's retry rules
    // for a client that stopped answering apply (an unanswered request is another matter:
    // tests/half_open.rs).
    let (_, tid) = c.expect(REPLY, "DATA 1");
    c.send_to(&ack(1), tid);
    // Until the server's ERROR (or a generous deadline): a fixed window raced the timers on a
    // loaded machine.
    let mut replies = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        let Some(r) = c.recv(left) else { break };
        let done = matches!(r.0, Reply::Error { .. });
        replies.push(r);
        if done {
            break;
        }
    }
    // Nothing may follow the ERROR.
    replies.extend(c.collect(Duration::from_millis(300)));
    assert!(
        matches!(replies.last(), Some((Reply::Error { code: 0, .. }, _))),
        "an ERROR tells the client the server gave up: {} replies",
        replies.len()
    );
    d.wait_for_log("outcome=\"timed_out\"", Duration::from_secs(5));
    replies
        .iter()
        .filter(|(r, _)| matches!(r, Reply::Data { block: 2, .. }))
        .count()
}

#[test]
fn unacknowledged_data_is_retransmitted_then_the_transfer_gives_up() {
    let fixed = format!("{FAST}adaptive_timeout = false\n");
    assert_eq!(
        data_2_sent_to_a_client_that_stopped_answering(&fixed),
        3,
        "the fixed timer: DATA 2 once plus max_retries (2) retransmissions"
    );
}

#[test]
fn the_adaptive_timer_adds_only_its_quick_expiries_before_giving_up() {
    // The round trip on loopback is far below the 10 ms floor, so DATA 2 is resent after
    // 10, 20, 40, 80 and 160 ms (quick expiries, not counted), then twice at the full
    // 300 ms (max_retries = 2): at most 3 + 5 in all, and never fewer than the fixed 3.
    let quick = tftpd::proto::Retransmit::Adaptive {
        floor: Duration::from_millis(10),
    }
    .quick_expiries(Duration::from_millis(300));
    assert_eq!(quick, 5);
    let sent = data_2_sent_to_a_client_that_stopped_answering(FAST);
    assert!(
        (3..=3 + quick as usize).contains(&sent),
        "DATA 2 sent {sent} times: between the fixed 3 and 3 + {quick} quick expiries"
    );
}

#[test]
fn client_error_ends_the_transfer_at_once() {
    let d = start(Some(FAST), "off");
    d.put_file("f.bin", &pattern(5000, 5));
    let c = Raw::new(d.addr());
    c.send(&request(1, b"f.bin", "octet", &[]));
    let (_, tid) = c.expect(REPLY, "DATA 1");
    c.send_to(&error(0, "user cancelled"), tid);
    let after = c.collect(Duration::from_millis(1200));
    assert!(
        after.is_empty(),
        "nothing is sent after the client's ERROR: {after:?}"
    );
    d.wait_for_log("outcome=\"peer_error\"", Duration::from_secs(5));
}

#[test]
fn file_of_exact_block_multiple_ends_with_an_empty_data_block() {
    let d = start(None, "off");
    let content = pattern(1024, 6);
    d.put_file("f.bin", &content);
    let c = Raw::new(d.addr());
    c.send(&request(1, b"f.bin", "octet", &[]));
    let mut sizes = Vec::new();
    for block in 1..=3u16 {
        let (r, tid) = c.expect(REPLY, "DATA");
        let Reply::Data { block: b, data } = r else {
            panic!("expected DATA, got {r:?}")
        };
        assert_eq!(b, block);
        sizes.push(data.len());
        c.send_to(&ack(b), tid);
    }
    assert_eq!(
        sizes,
        vec![512, 512, 0],
        "a 1024-byte file ends with an empty DATA 3"
    );
}

/// Unix text to netascii (RFC 764, as RFC 1350 asks): LF becomes CR LF, a bare CR becomes CR NUL.
/// Written here so the test does not trust the crate's own converter.
fn to_netascii(text: &[u8]) -> Vec<u8> {
    let mut wire = Vec::with_capacity(text.len() * 2);
    for &b in text {
        match b {
            b'\n' => wire.extend_from_slice(b"\r\n"),
            b'\r' => wire.extend_from_slice(b"\r\0"),
            _ => wire.push(b),
        }
    }
    wire
}

#[test]
fn netascii_is_cr_lf_on_the_wire_both_ways() {
    let d = start(None, "create");
    // 511 bytes then LF: the CR LF pair straddles the first block boundary.
    let mut text = vec![b'a'; 511];
    text.extend_from_slice(b"\nsecond line\nbare\rcr\n");
    text.extend_from_slice(
        &pattern(2000, 14)
            .iter()
            .map(|b| b'a' + b % 26)
            .collect::<Vec<_>>(),
    );
    text.extend_from_slice(b"\r\nlast without newline");
    d.put_file("text.txt", &text);
    let got = Raw::new(d.addr())
        .download_in("netascii", "text.txt", &[], REPLY)
        .expect("netascii download");
    assert!(
        got == to_netascii(&text),
        "the server sends CR LF and CR NUL on the wire ({} bytes, expected {})",
        got.len(),
        to_netascii(&text).len()
    );

    let c = Raw::new(d.addr());
    c.send(&request(2, b"up.txt", "netascii", &[]));
    let (r, tid) = c.expect(REPLY, "ACK 0");
    assert_eq!(r, Reply::Ack(0), "the netascii upload is accepted");
    let wire = to_netascii(&text);
    let mut blocks = wire.chunks(512).collect::<Vec<_>>();
    if wire.len().is_multiple_of(512) {
        blocks.push(&[]);
    }
    for (i, chunk) in blocks.iter().enumerate() {
        let block = u16::try_from(i + 1).expect("a short file");
        c.send_to(&data(block, chunk), tid);
        assert_eq!(
            c.expect(REPLY, "ACK").0,
            Reply::Ack(block),
            "each netascii DATA is acknowledged"
        );
    }
    d.wait_for_log("transfer finished", REPLY);
    assert!(
        std::fs::read(d.root().join("up.txt")).expect("uploaded file") == text,
        "the server stores the Unix text it was sent as netascii"
    );
}

#[test]
fn wrq_onto_an_existing_file_in_create_mode_gets_error_6() {
    let d = start(None, "create");
    d.put_file("exists.bin", b"keep me");
    let c = Raw::new(d.addr());
    c.send(&request(2, b"exists.bin", "octet", &[]));
    let (code, message) = expect_error(&c, "ERROR for an existing file");
    assert_eq!(code, 6, "file already exists is ERROR 6: {message}");
    assert_eq!(
        std::fs::read(d.root().join("exists.bin")).expect("old file"),
        b"keep me",
        "the existing file is untouched"
    );
}

#[test]
fn wrq_tsize_within_the_limit_is_echoed_in_the_oack() {
    let d = start(Some("[uploads]\nmax_size = 1000\n"), "create");
    let c = Raw::new(d.addr());
    c.send(&request(2, b"small.bin", "octet", &[("tsize", "600")]));
    let (r, tid) = c.expect(REPLY, "OACK");
    assert_eq!(
        r,
        Reply::Oack(vec![("tsize".into(), "600".into())]),
        "RFC 2349: a WRQ's tsize is echoed"
    );
    let content = pattern(600, 15);
    c.send_to(&data(1, &content[..512]), tid);
    assert_eq!(c.expect(REPLY, "ACK 1").0, Reply::Ack(1), "first block");
    c.send_to(&data(2, &content[512..]), tid);
    assert_eq!(c.expect(REPLY, "ACK 2").0, Reply::Ack(2), "last block");
    d.wait_for_log("transfer finished", REPLY);
    assert!(
        std::fs::read(d.root().join("small.bin")).expect("stored") == content,
        "the announced upload is stored exactly"
    );
}

#[test]
fn bad_modes_are_refused() {
    let d = start(None, "off");
    d.put_file("f.bin", b"x");
    for mode in ["mail", "MAIL", "binary", ""] {
        let c = Raw::new(d.addr());
        c.send(&request(1, b"f.bin", mode, &[]));
        let (code, _) = expect_error(&c, &format!("ERROR for mode {mode:?}"));
        assert_eq!(code, 4, "mode {mode:?} is an illegal operation");
    }
    let c = Raw::new(d.addr());
    c.send(&request(1, b"f.bin", "OcTeT", &[]));
    assert!(
        matches!(c.expect(REPLY, "DATA").0, Reply::Data { block: 1, .. }),
        "mode names are case-insensitive"
    );
}

#[test]
fn option_negotiation_follows_rfc_2347_2348_2349() {
    let d = start(None, "off");
    let content = pattern(12345, 7);
    d.put_file("f.bin", &content);
    let oack = |opts: &[(&str, &str)]| -> Vec<(String, String)> {
        let c = Raw::new(d.addr());
        c.send(&request(1, b"f.bin", "octet", opts));
        match c.expect(REPLY, "OACK").0 {
            Reply::Oack(o) => o,
            other => panic!("{opts:?}: expected an OACK, got {other:?}"),
        }
    };
    let o = oack(&[("tsize", "0"), ("blksize", "1428")]);
    assert_eq!(
        o,
        vec![
            ("tsize".into(), "12345".into()),
            ("blksize".into(), "1428".into())
        ],
        "tsize answers the exact size, in the request's order"
    );
    let o = oack(&[("blksize", "70000")]);
    let b: u32 = o[0].1.parse().expect("number");
    assert!(
        (8..=65464).contains(&b),
        "blksize clamped to at most 65464: {o:?}"
    );
    let o = oack(&[("BLKSIZE", "1024"), ("unknownopt", "1")]);
    assert_eq!(
        o,
        vec![("blksize".into(), "1024".into())],
        "unknown options are left out"
    );
    let o = oack(&[("timeout", "2"), ("windowsize", "4")]);
    assert_eq!(o.len(), 2, "timeout and windowsize acknowledged: {o:?}");

    // Only unknown options: plain RFC 1350, DATA 1 straight away.
    let c = Raw::new(d.addr());
    c.send(&request(1, b"f.bin", "octet", &[("foo", "bar")]));
    assert!(matches!(
        c.expect(REPLY, "DATA 1").0,
        Reply::Data { block: 1, .. }
    ));

    for opts in [
        &[("blksize", "abc")][..],
        &[("blksize", "7")],
        &[("blksize", "512"), ("blksize", "1024")],
        &[("timeout", "0")],
        &[("windowsize", "0")],
        &[("tsize", "x")],
    ] {
        let c = Raw::new(d.addr());
        c.send(&request(1, b"f.bin", "octet", opts));
        let (code, _) = expect_error(&c, &format!("ERROR 8 for {opts:?}"));
        assert_eq!(code, 8, "{opts:?} must be refused with ERROR 8");
    }
}

#[test]
fn full_download_with_options_through_the_oack() {
    let d = start(None, "off");
    let content = pattern(100_000, 8);
    d.put_file("f.bin", &content);
    let c = Raw::new(d.addr());
    let got = c
        .download("f.bin", &[("blksize", "1000"), ("tsize", "0")], REPLY)
        .expect("download");
    assert_eq!(got, content);
}

#[test]
fn oversized_write_refused_up_front_by_tsize() {
    let d = start(Some("[uploads]\nmax_size = 1000\n"), "create");
    let c = Raw::new(d.addr());
    c.send(&request(2, b"big.bin", "octet", &[("tsize", "5000")]));
    let (code, _) = expect_error(&c, "ERROR 3");
    assert_eq!(code, 3, "an upload over the limit is refused with ERROR 3");
    assert!(d.list("").is_empty(), "no file or temp file made");
}

#[test]
fn upload_growing_past_the_limit_is_stopped_and_leaves_nothing() {
    let d = start(Some("[uploads]\nmax_size = 1000\n"), "create");
    let c = Raw::new(d.addr());
    c.send(&request(2, b"big.bin", "octet", &[]));
    let (r, tid) = c.expect(REPLY, "ACK 0");
    assert_eq!(r, Reply::Ack(0));
    c.send_to(&data(1, &[1; 512]), tid);
    assert_eq!(c.expect(REPLY, "ACK 1").0, Reply::Ack(1));
    c.send_to(&data(2, &[2; 512]), tid);
    let (code, _) = expect_error(&c, "ERROR 3 past the limit");
    assert_eq!(code, 3);
    d.wait_for_log("transfer finished", Duration::from_secs(5));
    assert!(
        d.list("").is_empty(),
        "no partial file left: {:?}",
        d.list("")
    );
}

#[test]
fn uploads_past_max_in_flight_get_error_3_and_the_space_comes_back() {
    let d = start(Some("[uploads]\nmax_in_flight = 1000\n"), "create");
    let a = Raw::new(d.addr());
    a.send(&request(2, b"a.bin", "octet", &[]));
    let (r, tid) = a.expect(REPLY, "ACK 0");
    assert_eq!(r, Reply::Ack(0), "no tsize, and room left: accepted");
    a.send_to(&data(1, &[1; 512]), tid);
    assert_eq!(
        a.expect(REPLY, "ACK 1").0,
        Reply::Ack(1),
        "512 of 1000 in flight"
    );
    let b = Raw::new(d.addr());
    b.send(&request(2, b"b.bin", "octet", &[("tsize", "600")]));
    let (code, message) = expect_error(&b, "ERROR 3 for a tsize past what is left");
    assert_eq!(
        (code, message.as_str()),
        (3, "upload space in flight exhausted"),
        "refused before any byte"
    );
    a.send_to(&data(2, &[2; 512]), tid);
    let (code, message) = expect_error(&a, "ERROR 3 past the cap");
    assert_eq!(
        (code, message.as_str()),
        (3, "upload space in flight exhausted"),
        "the running upload is stopped"
    );
    d.wait_for_log("transfer finished", Duration::from_secs(5));
    let c = Raw::new(d.addr());
    c.send(&request(2, b"c.bin", "octet", &[("tsize", "600")]));
    let (r, _) = c.expect(REPLY, "OACK");
    assert_eq!(
        r,
        Reply::Oack(vec![("tsize".into(), "600".into())]),
        "the stopped upload gave its bytes back"
    );
    assert!(
        d.list("").is_empty(),
        "no partial file and no temporary file: {:?}",
        d.list("")
    );
}

#[test]
fn upload_short_of_the_free_space_reserve_gets_error_3() {
    let d = start(
        Some("[uploads]\nmin_free_bytes = 9223372036854775807\n"),
        "create",
    );
    let c = Raw::new(d.addr());
    c.send(&request(2, b"a.bin", "octet", &[]));
    let (code, message) = expect_error(&c, "ERROR 3 for the reserve");
    assert_eq!(
        (code, message.as_str()),
        (3, "disk free-space reserve reached"),
        "no filesystem here has 8 EiB free"
    );
    assert!(d.list("").is_empty(), "nothing made: {:?}", d.list(""));
}

#[test]
fn malformed_and_junk_datagrams_never_kill_the_server() {
    let d = start(None, "off");
    d.put_file("f.bin", b"still here");
    let c = Raw::new(d.addr());
    for junk in [
        &b""[..],
        b"\x00",
        b"\x00\x09hello",
        b"\x00\x03\x00\x01data to port 69",
        b"\x00\x04\x00\x01",
        b"\x00\x05\x00\x01oops\x00",
        b"\xff\xff\xff\xff",
    ] {
        c.send(junk);
    }
    assert!(
        c.recv(QUIET).is_none(),
        "junk that is not a request gets no answer"
    );
    // A request without its NULs is junk to the packet filter: dropped and counted.
    c.send(b"\x00\x01no-nul-terminator");
    assert!(
        c.recv(QUIET).is_none(),
        "an unterminated request is dropped"
    );
    // One that passes the filter but has a broken option list gets ERROR 8.
    c.send(b"\x00\x01f.bin\x00octet\x00blksize\x00");
    assert_eq!(expect_error(&c, "option without a value").0, 8);
    let c = Raw::new(d.addr());
    assert_eq!(
        c.download("f.bin", &[], REPLY).expect("still serving"),
        b"still here"
    );
}

#[test]
fn request_over_max_request_size_is_refused() {
    let d = start(None, "off");
    let c = Raw::new(d.addr());
    let mut name = vec![b'a'; 600];
    name.extend_from_slice(b".bin");
    c.send(&request(1, &name, "octet", &[]));
    let (code, _) = expect_error(&c, "ERROR for a 600-byte request");
    assert_eq!(code, 4);
}

#[test]
fn a_client_over_its_limit_waits_for_its_own_transfer_to_end() {
    let d = start(
        Some(
            "[limits]\nmax_transfers = 10\nmax_transfers_per_client = 1\n[protocol]\ntimeout_ms = 3000\n",
        ),
        "off",
    );
    d.put_file("f.bin", &pattern(1000, 9));
    let a = Raw::new(d.addr());
    a.send(&request(1, b"f.bin", "octet", &[]));
    let (_, tid) = a.expect(REPLY, "DATA 1 for the first transfer");
    // Only confirmed transfers count: a forged request must not use up a client's share.
    a.send_to(&ack(1), tid);
    a.expect(REPLY, "DATA 2 for the first transfer");
    let b = Raw::new(d.addr());
    b.send(&request(1, b"f.bin", "octet", &[]));
    assert!(
        b.recv(Duration::from_millis(300)).is_none(),
        "the second transfer waits: no ERROR, which would make firmware give up"
    );
    a.send_to(&ack(2), tid);
    match b.expect(REPLY, "DATA 1 once the first transfer ended") {
        (Reply::Data { block: 1, .. }, _) => {}
        other => panic!("expected DATA 1, got {other:?}"),
    }
}

#[test]
fn metrics_endpoint_counts_requests() {
    let port = free_tcp_port();
    let d = Daemon::start(DaemonArgs {
        args: vec!["--metrics-listen".into(), format!("127.0.0.1:{port}")],
        ..DaemonArgs::default()
    });
    d.put_file("f.bin", b"metrics");
    let c = Raw::new(d.addr());
    assert_eq!(
        c.download("f.bin", &[], REPLY).expect("download"),
        b"metrics",
        "the download the metrics will count"
    );
    let c = Raw::new(d.addr());
    c.send(&request(1, b"missing", "octet", &[]));
    expect_error(&c, "file not found");
    let listener_drops = format!(
        "tftpd_kernel_listener_drops_total{{listen=\"{}\"}} ",
        d.addr()
    );
    // Polled: the active-transfer gauge drops a moment after "transfer finished" is logged.
    wait_for_metrics(
        port,
        &[
            "HTTP/1.1 200 OK",
            "tftpd_requests_total{kind=\"read\",outcome=\"completed\"} 1",
            "tftpd_requests_total{kind=\"read\",outcome=\"not_found\"} 1",
            "tftpd_sent_bytes_total 7",
            "tftpd_errors_sent_total{code=\"1\"} 1",
            "tftpd_active_transfers 0",
            "tftpd_kernel_udp_errors_total{kind=\"rcvbuf_errors\"} ",
            &listener_drops,
        ],
        METRICS_TIMEOUT,
    );
}

#[test]
fn transfers_answer_from_a_new_tid_inside_the_port_range() {
    let d = start(Some("port_range = \"41000-41009\"\n"), "off");
    d.put_file("f.bin", b"ranged");
    for _ in 0..3 {
        let c = Raw::new(d.addr());
        c.send(&request(1, b"f.bin", "octet", &[]));
        let (_, tid) = c.expect(REPLY, "DATA 1");
        assert_ne!(
            tid.port(),
            d.addr().port(),
            "a new TID, not the listening port"
        );
        assert!(
            (41000..=41009).contains(&tid.port()),
            "port {} outside port_range",
            tid.port()
        );
        c.send_to(&ack(1), tid);
    }
}

#[test]
fn wildcard_listener_answers_from_the_address_the_client_asked() {
    let d = Daemon::start(DaemonArgs {
        args: vec![
            "--listen".into(),
            "0.0.0.0:0".into(),
            "--listen".into(),
            "[::]:0".into(),
        ],
        ..DaemonArgs::default()
    });
    d.put_file("f.bin", b"which address?");
    let port_of = |unspecified: &str| {
        d.addrs()
            .iter()
            .find(|a| a.ip().to_string() == unspecified)
            .unwrap_or_else(|| panic!("no {unspecified} listener in {:?}", d.addrs()))
            .port()
    };
    let cases: [(&str, u16); 3] = [
        ("127.0.0.2", port_of("0.0.0.0")),
        ("127.0.0.2", port_of("::")),
        ("::1", port_of("::")),
    ];
    for (dest, port) in cases {
        let to: std::net::SocketAddr = if dest.contains(':') {
            format!("[{dest}]:{port}")
        } else {
            format!("{dest}:{port}")
        }
        .parse()
        .expect("address");
        let c = Raw::new(to);
        c.send(&request(1, b"f.bin", "octet", &[]));
        let (r, from) = c.expect(REPLY, "DATA 1");
        assert!(
            matches!(r, Reply::Data { block: 1, .. }),
            "{dest}: got {r:?}"
        );
        assert_eq!(
            from.ip().to_canonical().to_string(),
            dest,
            "a request sent to {dest} (port {port}) must be answered from {dest}"
        );
        c.send_to(&ack(1), from);
    }
}

#[test]
fn full_port_range_refuses_with_busy_instead_of_silence() {
    let d = start(
        Some("port_range = \"41050-41050\"\n[protocol]\ntimeout_ms = 3000\n"),
        "off",
    );
    d.put_file("f.bin", &pattern(5000, 12));
    let first = Raw::new(d.addr());
    first.send(&request(1, b"f.bin", "octet", &[]));
    let (_, tid) = first.expect(REPLY, "DATA 1 for the first transfer");
    assert_eq!(tid.port(), 41050, "the one port of the range");
    let second = Raw::new(d.addr());
    second.send(&request(1, b"f.bin", "octet", &[]));
    let (code, message) = expect_error(&second, "ERROR for the second transfer");
    assert_eq!(code, 0, "busy is ERROR 0 ({message})");
    d.wait_for_log("no transfer socket could be bound", Duration::from_secs(5));
}
