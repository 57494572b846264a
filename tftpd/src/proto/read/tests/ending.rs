//! What ends a download before its last ACK and what must not: an ACK of a block not sent,
//! stale ACKs, the client's ERROR, junk, the shell's abort and the whole-transfer limit.

use super::*;

#[test]
fn an_ack_of_a_block_not_sent_yet_ends_the_transfer() {
    let now = Instant::now();
    let mut t = ReadTransfer::new(config(512, 4, true), now);
    drain(&mut t);
    t.handle_datagram(now, &ack(0));
    for i in 1..=4u8 {
        t.handle_block(now, block(&[i; 512]));
    }
    assert_eq!(drain(&mut t).len(), 4);
    t.handle_datagram(now, &ack(6));
    let sent = drain(&mut t);
    assert!(
        matches!(t.outcome(), Some(Outcome::Aborted(e)) if e.code == ErrorCode::IllegalOperation),
        "no client can acknowledge block 6 before it was sent: {:?}",
        t.outcome()
    );
    assert_eq!(sent.len(), 1, "one ERROR, no DATA");
    assert_eq!(&sent[0][..4], b"\x00\x05\x00\x04");
}

#[test]
fn a_stale_ack_is_still_only_ignored() {
    let now = Instant::now();
    let mut t = ReadTransfer::new(config(512, 1, false), now);
    t.handle_block(now, block(&[1; 512]));
    drain(&mut t);
    t.handle_datagram(now, &ack(1));
    t.handle_block(now, block(&[2; 512]));
    drain(&mut t);
    t.handle_datagram(now, &ack(0));
    t.handle_datagram(now, &ack(1));
    assert_eq!(t.outcome(), None, "old ACKs are not an attack");
    assert_eq!(t.stats().ignored, 2);
}

#[test]
fn aborting_an_ended_download_sends_nothing_and_keeps_its_outcome() {
    // The shell's drain aborts every transfer it holds; one evicted meanwhile (found by the
    // read_machine fuzz target) must not then send its maybe-forged source an ERROR.
    let now = Instant::now();
    let mut t = ReadTransfer::new(config(512, 1, true), now);
    drain(&mut t);
    assert!(t.evict(), "half-open: evicted");
    t.abort(WireError::new(ErrorCode::NotDefined, "shutting down"));
    assert!(drain(&mut t).is_empty(), "no ERROR after an eviction");
    assert_eq!(t.outcome(), Some(&Outcome::Evicted), "the outcome stands");
    let mut c = ReadTransfer::new(config(512, 1, false), now);
    c.handle_block(now, block(b"short"));
    drain(&mut c);
    c.handle_datagram(now, &ack(1));
    assert_eq!(c.outcome(), Some(&Outcome::Completed));
    c.abort(WireError::new(ErrorCode::NotDefined, "shutting down"));
    assert!(drain(&mut c).is_empty(), "no ERROR after the final ACK");
    assert_eq!(c.outcome(), Some(&Outcome::Completed), "still completed");
}

#[test]
fn the_whole_transfer_limit_ends_a_transfer_kept_barely_alive() {
    let t0 = Instant::now();
    let mut cfg = config(512, 1, false);
    cfg.max_duration = Some(Duration::from_secs(10));
    let mut t = ReadTransfer::new(cfg, t0);
    let mut now = t0;
    for i in 1..=20u64 {
        let Some(req) = t.poll_block_request() else {
            break;
        };
        t.handle_block(now, block(&[req.index as u8; 512]));
        drain(&mut t);
        // The client answers just before each timeout.
        now = t0 + Duration::from_millis(900 * i);
        if t.poll_timeout().is_some_and(|d| d <= now) {
            t.handle_timeout(now);
            break;
        }
        t.handle_datagram(now, &ack(req.index as u16));
    }
    assert!(
        matches!(t.outcome(), Some(Outcome::Aborted(e)) if e.message == "transfer time limit reached"),
        "{:?}",
        t.outcome()
    );
    assert!(now <= t0 + Duration::from_secs(11), "ended at the limit");
}

#[test]
fn client_error_ends_the_transfer_at_once() {
    let now = Instant::now();
    let mut t = ReadTransfer::new(config(512, 1, true), now);
    drain(&mut t);
    t.handle_datagram(now, b"\x00\x05\x00\x08no thanks\x00");
    assert!(matches!(
        t.outcome(),
        Some(Outcome::PeerError {
            code: ErrorCode::OptionRefused,
            ..
        })
    ));
    assert!(
        drain(&mut t).is_empty(),
        "nothing is sent after a client's ERROR"
    );
    assert!(t.poll_timeout().is_none() && t.poll_block_request().is_none());
}

#[test]
fn junk_from_the_client_is_ignored_and_counted() {
    let now = Instant::now();
    let mut t = ReadTransfer::new(config(512, 1, false), now);
    t.handle_block(now, block(b"x"));
    drain(&mut t);
    for junk in [
        &b""[..],
        b"\x00",
        b"\x00\x04\x00",
        b"\x00\x03\x00\x01abc",
        b"\x00\x09",
    ] {
        t.handle_datagram(now, junk);
    }
    assert_eq!(t.stats().ignored, 5);
    assert!(t.outcome().is_none(), "junk does not end the transfer");
}
