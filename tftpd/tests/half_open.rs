//! The defences against forged requests, on the real daemon: what an unanswered request
//! earns its source, the half-open pool, the deferral queue, server-side timing, the
//! reflection budget and the single-port window cap (docs/security.md "Forged requests").
//! "Forged" sources are 127.x addresses bound on loopback that never answer.

mod harness;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use harness::raw::{Raw, Reply, ack, request};
use harness::{Daemon, DaemonArgs, metric, start_with_metrics, wait_for_metrics};

/// A client socket on its own loopback source address.
fn raw_from(source: [u8; 4], server: SocketAddr) -> Raw {
    let socket = UdpSocket::bind(SocketAddr::from((source, 0))).expect("binding a 127.x source");
    Raw { socket, server }
}

fn daemon(config: &str) -> Daemon {
    Daemon::start(DaemonArgs {
        config: Some(config.to_string()),
        ..DaemonArgs::default()
    })
}

fn rrq(name: &str, options: &[(&str, &str)]) -> Vec<u8> {
    request(1, name.as_bytes(), "octet", options)
}

/// Downloads `name` as a well-behaved lock-step client; the bytes.
fn download(client: &Raw, name: &str) -> Vec<u8> {
    client.send(&rrq(name, &[]));
    let mut got = Vec::new();
    let mut expected = 1u16;
    loop {
        let (reply, tid) = client.expect(Duration::from_secs(10), "DATA");
        let Reply::Data { block, data } = reply else {
            panic!("expected DATA {expected}, got {reply:?}");
        };
        assert_eq!(block, expected, "in order");
        client.send_to(&ack(block), tid);
        let last = data.len() < 512;
        got.extend_from_slice(&data);
        if last {
            return got;
        }
        expected += 1;
    }
}

#[test]
fn an_unanswered_request_earns_two_datagrams_and_no_error() {
    let (d, port) = start_with_metrics(String::new());
    d.put_file("f.bin", &[7u8; 3000]);
    for options in [&[][..], &[("blksize", "1428")][..]] {
        let victim = raw_from([127, 0, 9, 1], d.addr());
        victim.send(&rrq("f.bin", options));
        // The server's timeout is 1 s: the first datagram, one retransmission, then
        // nothing (a third would have come by 3 s).
        let got = victim.collect(Duration::from_millis(3500));
        let kinds: Vec<String> = got.iter().map(|(r, _)| format!("{r:?}")).collect();
        assert_eq!(got.len(), 2, "options {options:?}: {kinds:?}");
        assert_eq!(got[0].0, got[1].0, "the same datagram twice");
        assert!(
            !got.iter().any(|(r, _)| matches!(r, Reply::Error { .. })),
            "no ERROR to a source that never answered: {kinds:?}"
        );
    }
    // They end without a word once a confirmed transfer would have given up (6 s).
    wait_for_metrics(
        port,
        &["tftpd_requests_total{kind=\"read\",outcome=\"unanswered\"} 2"],
        Duration::from_secs(15),
    );
}

#[test]
fn half_open_retries_sets_how_many_datagrams_an_unanswered_request_earns() {
    let d = daemon("[limits]\nhalf_open_retries = 0\n");
    d.put_file("f.bin", &[7u8; 3000]);
    let victim = raw_from([127, 0, 9, 2], d.addr());
    victim.send(&rrq("f.bin", &[]));
    let got = victim.collect(Duration::from_millis(2500));
    assert_eq!(got.len(), 1, "no retransmission: {got:?}");
}

#[test]
fn a_timeout_over_the_servers_limit_is_left_out_of_the_oack() {
    let d = daemon("");
    d.put_file("f.bin", &[7u8; 100]);
    let c = Raw::new(d.addr());
    c.send(&rrq("f.bin", &[("timeout", "255"), ("blksize", "1024")]));
    let (reply, _) = c.expect(Duration::from_secs(5), "OACK");
    let Reply::Oack(pairs) = reply else {
        panic!("expected an OACK, got {reply:?}");
    };
    assert_eq!(
        pairs,
        vec![("blksize".to_string(), "1024".to_string())],
        "timeout 255 is over protocol.max_client_timeout_secs (5): not acknowledged"
    );
    // And the server retransmits on its own 1 s timeout, not after 255 s.
    let start = Instant::now();
    let (again, _) = c.expect(Duration::from_secs(3), "the OACK again");
    assert!(matches!(again, Reply::Oack(_)), "{again:?}");
    assert!(start.elapsed() < Duration::from_secs(3));
    let d2 = daemon("[protocol]\nmax_client_timeout_secs = 255\n");
    d2.put_file("f.bin", &[7u8; 100]);
    let c = Raw::new(d2.addr());
    c.send(&rrq("f.bin", &[("timeout", "255")]));
    match c.expect(Duration::from_secs(5), "OACK") {
        (Reply::Oack(p), _) => assert_eq!(p, vec![("timeout".into(), "255".into())]),
        other => panic!("expected an OACK with timeout, got {other:?}"),
    }
}

#[test]
fn a_full_half_open_pool_evicts_forged_requests_and_an_answering_client_is_served() {
    let (d, port) = start_with_metrics("[limits]\nmax_half_open = 8\n".into());
    d.put_file("f.bin", &harness::pattern(5000, 3));
    // Forged requests fill the pool; none ever answers.
    let forged: Vec<Raw> = (0..12u8)
        .map(|i| raw_from([127, 1, 0, i + 1], d.addr()))
        .collect();
    for f in &forged[..8] {
        f.send(&rrq("f.bin", &[]));
    }
    // Once they are older than a quarter of the server's timeout they may be evicted:
    // more forged requests and a real client arrive, and each takes the oldest's place.
    std::thread::sleep(Duration::from_millis(400));
    for f in &forged[8..] {
        f.send(&rrq("f.bin", &[]));
    }
    let real = raw_from([127, 2, 0, 1], d.addr());
    assert_eq!(
        download(&real, "f.bin"),
        harness::pattern(5000, 3),
        "the answering client is served while the pool is full of forged requests"
    );
    let body = wait_for_metrics(
        port,
        &["tftpd_requests_total{kind=\"read\",outcome=\"evicted\"} 5"],
        Duration::from_secs(5),
    );
    assert!(metric(&body, "tftpd_half_open_transfers") <= 8, "{body}");
}

#[test]
fn every_client_of_an_overfull_server_waits_for_a_place_instead_of_error_busy() {
    let d =
        daemon("[limits]\nmax_transfers = 2\nmax_transfers_per_client = 2\nmax_half_open = 2\n");
    d.put_file("f.bin", &harness::pattern(2000, 5));
    // Two clients take both places and hold them (they stop after DATA 1).
    let holders: Vec<Raw> = (1..=2u8)
        .map(|i| raw_from([127, 3, 0, i], d.addr()))
        .collect();
    let mut tids = Vec::new();
    for h in &holders {
        h.send(&rrq("f.bin", &[]));
        let (r, tid) = h.expect(Duration::from_secs(5), "DATA 1");
        assert!(matches!(r, Reply::Data { block: 1, .. }), "{r:?}");
        h.send_to(&ack(1), tid);
        let (r, _) = h.expect(Duration::from_secs(5), "DATA 2");
        assert!(matches!(r, Reply::Data { block: 2, .. }), "{r:?}");
        tids.push(tid);
    }
    // A third asks: no ERROR "server busy", no answer yet.
    let third = raw_from([127, 3, 0, 3], d.addr());
    third.send(&rrq("f.bin", &[]));
    assert!(
        third.recv(Duration::from_millis(300)).is_none(),
        "held, not refused"
    );
    // One holder finishes: the held request starts at once.
    let first = &holders[0];
    for block in 2..=4u16 {
        first.send_to(&ack(block), tids[0]);
        if block < 4 {
            first.expect(Duration::from_secs(5), "DATA");
        }
    }
    match third.expect(Duration::from_secs(5), "DATA 1 once a place is free") {
        (Reply::Data { block: 1, .. }, _) => {}
        other => panic!("expected DATA 1, got {other:?}"),
    }
    assert!(
        !d.log().contains("server busy"),
        "nobody was told the server is busy"
    );
}

#[test]
fn a_request_held_longer_than_the_wait_is_dropped_without_an_answer() {
    let (d, port) = start_with_metrics(
        "[limits]\nmax_transfers = 1\nmax_transfers_per_client = 1\nmax_half_open = 1\nmax_queue_wait_ms = 200\n".into(),
    );
    d.put_file("f.bin", &harness::pattern(2000, 5));
    let holder = raw_from([127, 4, 0, 1], d.addr());
    holder.send(&rrq("f.bin", &[]));
    let (_, tid) = holder.expect(Duration::from_secs(5), "DATA 1");
    holder.send_to(&ack(1), tid);
    holder.expect(Duration::from_secs(5), "DATA 2");
    let late = raw_from([127, 4, 0, 2], d.addr());
    late.send(&rrq("f.bin", &[]));
    let body = wait_for_metrics(
        port,
        &["tftpd_requests_total{kind=\"read\",outcome=\"overloaded\"} 1"],
        Duration::from_secs(5),
    );
    assert_eq!(metric(&body, "tftpd_deferred_requests"), 0, "{body}");
    assert!(late.recv(Duration::from_millis(200)).is_none(), "no answer");
}

#[test]
fn the_reflection_budget_bounds_what_one_prefix_is_sent_and_spares_others() {
    // 2000 bytes a prefix at once, 1 byte a second: about three first datagrams.
    let (d, port) = start_with_metrics(
        "[limits]\nhalf_open_rate = 1\nhalf_open_burst = 2000\nhalf_open_retries = 0\n".into(),
    );
    d.put_file("f.bin", &[1u8; 3000]);
    // Twenty forged requests "from" one /24: the victim network.
    let victims: Vec<Raw> = (1..=20u8)
        .map(|i| raw_from([127, 5, 5, i], d.addr()))
        .collect();
    for v in &victims {
        v.send(&rrq("f.bin", &[]));
    }
    let received: usize = victims
        .iter()
        .map(|v| v.collect(Duration::from_millis(300)).len())
        .sum();
    assert_eq!(received, 3, "three DATA 1 of 544 bytes fit 2000 bytes");
    let body = wait_for_metrics(
        port,
        &["tftpd_reflection_budget_drops_total 17"],
        Duration::from_secs(5),
    );
    assert!(body.contains("tftpd_reflection_budget_drops_total 17"));
    // Another prefix has its own budget, and a client that answers gets it back.
    let real = raw_from([127, 6, 6, 1], d.addr());
    assert_eq!(download(&real, "f.bin"), vec![1u8; 3000]);
}

#[test]
fn single_port_caps_the_window_a_blind_ack_can_pull() {
    let d = daemon("single_port = true\n");
    d.put_file("f.bin", &[3u8; 100_000]);
    let c = Raw::new(d.addr());
    c.send(&rrq("f.bin", &[("windowsize", "64"), ("blksize", "1428")]));
    match c.expect(Duration::from_secs(5), "OACK") {
        (Reply::Oack(pairs), _) => assert!(
            pairs.contains(&("windowsize".to_string(), "4".to_string())),
            "{pairs:?}"
        ),
        other => panic!("expected an OACK, got {other:?}"),
    }
    // The blind ACK of the OACK pulls one window, and an ACK far ahead ends it.
    c.send(&ack(0));
    let window = c.collect(Duration::from_millis(300));
    assert_eq!(window.len(), 4, "one window of 4: {}", window.len());
    c.send(&ack(8));
    match c.expect(Duration::from_secs(5), "ERROR 4") {
        (Reply::Error { code: 4, .. }, _) => {}
        other => panic!("an ACK of a block not sent ends the transfer: {other:?}"),
    }
    let d2 = daemon("single_port = true\n[protocol]\nsingle_port_max_windowsize = 16\n");
    d2.put_file("f.bin", &[3u8; 100_000]);
    let c = Raw::new(d2.addr());
    c.send(&rrq("f.bin", &[("windowsize", "64")]));
    match c.expect(Duration::from_secs(5), "OACK") {
        (Reply::Oack(pairs), _) => assert!(
            pairs.contains(&("windowsize".to_string(), "16".to_string())),
            "{pairs:?}"
        ),
        other => panic!("expected an OACK, got {other:?}"),
    }
}

#[test]
fn a_transfer_kept_barely_alive_ends_at_the_whole_transfer_limit() {
    let d = daemon("[limits]\nmax_transfer_secs = 2\n");
    d.put_file("f.bin", &[3u8; 100_000]);
    let c = Raw::new(d.addr());
    c.send(&rrq("f.bin", &[]));
    let start = Instant::now();
    let mut block = 0u16;
    loop {
        match c.expect(Duration::from_secs(5), "DATA or the ERROR") {
            (Reply::Data { block: b, .. }, tid) => {
                block = b;
                // Just before the server's 1 s timeout.
                std::thread::sleep(Duration::from_millis(600));
                c.send_to(&ack(b), tid);
            }
            (Reply::Error { code: 0, message }, _) => {
                assert_eq!(message, "transfer time limit reached");
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(block >= 2, "it ran for a while");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "ended at the limit"
    );
}

#[test]
fn a_client_that_heard_nothing_and_asks_again_gets_a_fresh_transfer_at_once() {
    let d = daemon("");
    d.put_file("f.bin", &[9u8; 700]);
    let c = Raw::new(d.addr());
    c.send(&rrq("f.bin", &[]));
    // Both datagrams "lost": the client ignores them. After the second timeout (2 s) the
    // transfer has sent all it may and only waits.
    let lost = c.collect(Duration::from_millis(2400));
    assert_eq!(lost.len(), 2, "DATA 1 and its one retransmission: {lost:?}");
    let old_tid = lost[0].1;
    // Asking again while the quiet transfer still waits is not a duplicate to ignore.
    c.send(&rrq("f.bin", &[]));
    match c.expect(Duration::from_millis(500), "DATA 1 of a new transfer") {
        (Reply::Data { block: 1, .. }, tid) => assert_ne!(tid, old_tid, "a new TID"),
        other => panic!("expected DATA 1, got {other:?}"),
    }
}

#[test]
fn a_stranger_the_config_does_not_serve_gets_no_error_5() {
    let d = daemon("[access]\ndeny = [\"127.7.7.0/24\"]\n");
    d.put_file("f.bin", &[4u8; 2000]);
    let c = Raw::new(d.addr());
    c.send(&rrq("f.bin", &[]));
    let (_, tid) = c.expect(Duration::from_secs(5), "DATA 1");
    let denied = raw_from([127, 7, 7, 1], d.addr());
    denied.send_to(&ack(1), tid);
    assert!(
        denied.recv(Duration::from_millis(300)).is_none(),
        "no answer to a denied source: it may be forged"
    );
    let other = raw_from([127, 8, 8, 1], d.addr());
    other.send_to(&ack(1), tid);
    match other.expect(Duration::from_secs(5), "ERROR 5") {
        (Reply::Error { code: 5, .. }, _) => {}
        r => panic!("a served stranger gets ERROR 5 (RFC 1350): {r:?}"),
    }
}

#[test]
fn in_single_port_mode_a_client_asking_again_is_served_by_its_new_transfer() {
    let d = daemon("single_port = true\n");
    d.put_file("f.bin", &[6u8; 1500]);
    let c = Raw::new(d.addr());
    c.send(&rrq("f.bin", &[]));
    let lost = c.collect(Duration::from_millis(2400));
    assert_eq!(lost.len(), 2, "DATA 1 twice, then quiet: {lost:?}");
    c.send(&rrq("f.bin", &[]));
    // Served to the end from the listening port, after the old transfer has ended too.
    let mut blocks = 0;
    loop {
        match c.expect(Duration::from_secs(10), "DATA") {
            (Reply::Data { block, data }, from) => {
                assert_eq!(from, d.addr(), "single port");
                if block > blocks {
                    blocks = block;
                    if block == 2 {
                        // Wait past the old transfer's end (6 s after it began).
                        std::thread::sleep(Duration::from_secs(4));
                    }
                }
                c.send(&ack(block));
                if data.len() < 512 {
                    break;
                }
            }
            other => panic!("expected DATA, got {other:?}"),
        }
    }
    assert_eq!(blocks, 3);
}
