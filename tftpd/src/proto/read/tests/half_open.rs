//! Downloads the client has not answered yet: the server's own short timer, one
//! retransmission and no ERROR, a late answer, and eviction.

use super::*;

/// The server's half-open rules: its own timeout, one retransmission, no ERROR.
fn half_open(mut cfg: TransferConfig) -> TransferConfig {
    cfg.timeout = Duration::from_secs(255);
    cfg.half_open = crate::proto::HalfOpen {
        timeout: Duration::from_secs(1),
        retries: 1,
    };
    cfg
}

#[test]
fn an_unanswered_download_sends_two_datagrams_on_the_servers_timeout_and_no_error() {
    for oack in [false, true] {
        let t0 = Instant::now();
        let mut t = ReadTransfer::new(half_open(config(512, 1, oack)), t0);
        t.handle_block(t0, block(b"hello"));
        let first = drain(&mut t);
        assert_eq!(first.len(), 1, "oack {oack}: the first datagram");
        assert_eq!(
            t.poll_timeout(),
            Some(t0 + Duration::from_secs(1)),
            "oack {oack}: the server's timeout, not the 255 s the client asked for"
        );
        t.handle_timeout(t0 + Duration::from_secs(1));
        assert_eq!(drain(&mut t), first, "oack {oack}: one retransmission");
        assert!(!t.is_quiet());
        // Then it only waits, as long as a confirmed transfer would (max_retries 5).
        for s in 2..=5 {
            t.handle_timeout(t0 + Duration::from_secs(s));
            assert!(drain(&mut t).is_empty(), "oack {oack}: nothing at {s} s");
            assert!(t.is_quiet() && t.outcome().is_none());
        }
        t.handle_timeout(t0 + Duration::from_secs(6));
        assert_eq!(t.outcome(), Some(&Outcome::Unanswered), "oack {oack}");
        assert!(
            drain(&mut t).is_empty(),
            "oack {oack}: no third datagram, no ERROR"
        );
        assert!(t.is_finished() && !t.is_confirmed() && !t.is_quiet());
    }
}

#[test]
fn a_late_answer_to_a_quiet_download_goes_on_as_if_on_time() {
    let t0 = Instant::now();
    let mut t = ReadTransfer::new(half_open(config(512, 1, false)), t0);
    t.handle_block(t0, block(&[1; 512]));
    drain(&mut t);
    t.handle_timeout(t0 + Duration::from_secs(1));
    drain(&mut t);
    t.handle_timeout(t0 + Duration::from_secs(2));
    assert!(t.is_quiet(), "both datagrams sent, no answer");
    // The client's ACK was lost twice; its third arrives.
    t.handle_datagram(t0 + Duration::from_millis(2500), &ack(1));
    assert!(t.is_confirmed() && !t.is_quiet());
    t.handle_block(t0, block(b"end"));
    assert_eq!(drain(&mut t).len(), 1, "DATA 2 goes out");
}

#[test]
fn once_confirmed_the_negotiated_timeout_and_retries_apply() {
    let t0 = Instant::now();
    let mut cfg = half_open(config(512, 1, true));
    cfg.timeout = Duration::from_secs(5);
    let mut t = ReadTransfer::new(cfg, t0);
    drain(&mut t);
    t.handle_datagram(t0, &ack(0));
    assert!(t.is_confirmed(), "ACK of the OACK confirms");
    t.handle_block(t0, block(b"hi"));
    drain(&mut t);
    assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(5)));
    for i in 1..=5u32 {
        t.handle_timeout(t0 + Duration::from_secs(5) * i);
        assert_eq!(drain(&mut t).len(), 1, "retry {i}: max_retries apply now");
    }
    t.handle_timeout(t0 + Duration::from_secs(30));
    assert_eq!(t.outcome(), Some(&Outcome::TimedOut), "and then an ERROR");
}

#[test]
fn a_server_default_window_sends_one_block_until_the_client_answers() {
    let now = Instant::now();
    let mut t = ReadTransfer::new(sliding(512, 4), now);
    t.handle_block(now, block(&[1; 512]));
    assert!(
        t.poll_block_request().is_none(),
        "one block in flight to a client that has not answered"
    );
    assert_eq!(drain(&mut t).len(), 1);
    t.handle_datagram(now, &ack(1));
    for i in 2..=5u8 {
        t.handle_block(now, block(&[i; 512]));
    }
    assert_eq!(drain(&mut t).len(), 4, "then the whole window");
}

#[test]
fn eviction_ends_a_half_open_download_silently_and_spares_a_confirmed_one() {
    let now = Instant::now();
    let mut t = ReadTransfer::new(config(512, 1, true), now);
    drain(&mut t);
    assert!(t.evict(), "half-open: evicted");
    assert_eq!(t.outcome(), Some(&Outcome::Evicted));
    assert!(drain(&mut t).is_empty() && t.is_finished(), "nothing sent");
    let mut c = ReadTransfer::new(config(512, 1, true), now);
    drain(&mut c);
    c.handle_datagram(now, &ack(0));
    assert!(!c.evict(), "a confirmed transfer is not evicted");
    assert_eq!(c.outcome(), None);
}
