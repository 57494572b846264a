//! Lock-step downloads: every block, the empty final block, the OACK's wait for ACK 0,
//! retransmission on timeout and block number rollover.

use super::*;

#[test]
fn lockstep_download_delivers_every_byte_with_a_short_final_block() {
    for len in [0, 1, 511, 512, 513, 1024, 5000] {
        let file = pattern(len);
        let (server, client) = run_download(config(512, 1, false), &file, Impairment::default(), 1);
        assert_eq!(server.outcome(), Some(&Outcome::Completed), "len {len}");
        assert_eq!(client.received, file, "len {len}: bytes must match");
        assert_eq!(
            server.stats().retransmits,
            0,
            "len {len}: no loss, no retransmits"
        );
        assert_eq!(server.stats().bytes, len as u64, "len {len}: byte count");
    }
}

#[test]
fn file_of_exact_block_multiple_ends_with_an_empty_data_block() {
    let now = Instant::now();
    let mut t = ReadTransfer::new(config(512, 1, false), now);
    t.handle_block(now, block(&[1; 512]));
    assert_eq!(drain(&mut t).len(), 1, "DATA 1 sent");
    t.handle_datagram(now, &ack(1));
    let req = t.poll_block_request().expect("block 2 is needed");
    assert_eq!(req.index, 2);
    t.handle_block(now, block(&[]));
    let sent = drain(&mut t);
    assert_eq!(
        sent,
        vec![b"\x00\x03\x00\x02".to_vec()],
        "empty DATA 2 ends it"
    );
    t.handle_datagram(now, &ack(2));
    assert_eq!(t.outcome(), Some(&Outcome::Completed));
}

#[test]
fn duplicate_ack_never_causes_duplicate_data() {
    let now = Instant::now();
    let mut t = ReadTransfer::new(config(512, 1, false), now);
    t.handle_block(now, block(&[1; 512]));
    drain(&mut t);
    t.handle_datagram(now, &ack(1));
    t.handle_block(now, block(&[2; 512]));
    assert_eq!(drain(&mut t).len(), 1, "DATA 2 sent once");
    // The delayed duplicate of ACK 1 arrives: the Sorcerer's Apprentice would resend DATA 2.
    t.handle_datagram(now, &ack(1));
    assert!(
        drain(&mut t).is_empty(),
        "a duplicate ACK must not trigger a send"
    );
    assert_eq!(t.stats().ignored, 1, "the duplicate is counted as ignored");
}

#[test]
fn timeout_retransmits_then_gives_up_with_an_error() {
    let mut now = Instant::now();
    let mut cfg = config(512, 1, false);
    cfg.max_retries = 3;
    let mut t = ReadTransfer::new(cfg, now);
    t.handle_block(now, block(&[1; 512]));
    drain(&mut t);
    t.handle_datagram(now, &ack(1));
    assert!(t.is_confirmed(), "the client answered");
    t.handle_block(now, block(b"hello"));
    let second = drain(&mut t);
    for retry in 1..=3 {
        now = t.poll_timeout().expect("a deadline while waiting for ACK");
        t.handle_timeout(now);
        assert_eq!(drain(&mut t), second, "retry {retry} resends the same DATA");
    }
    now = t.poll_timeout().expect("deadline");
    t.handle_timeout(now);
    assert_eq!(t.outcome(), Some(&Outcome::TimedOut));
    let sent = drain(&mut t);
    assert_eq!(sent.len(), 1, "one ERROR after giving up");
    assert_eq!(&sent[0][..4], b"\x00\x05\x00\x00", "ERROR 0");
    assert_eq!(t.stats().retransmits, 3);
    assert!(
        t.is_finished() && t.poll_timeout().is_none(),
        "nothing more to do"
    );
}

#[test]
fn early_timeout_call_does_nothing() {
    let now = Instant::now();
    let mut t = ReadTransfer::new(config(512, 1, false), now);
    t.handle_block(now, block(b"x"));
    drain(&mut t);
    t.handle_timeout(now + Duration::from_millis(10));
    assert!(
        drain(&mut t).is_empty(),
        "no retransmit before the deadline"
    );
}

#[test]
fn oack_waits_for_ack_zero_and_is_resent_on_timeout() {
    let now = Instant::now();
    let mut t = ReadTransfer::new(config(512, 1, true), now);
    assert!(t.poll_block_request().is_none(), "no DATA before ACK 0");
    let oack = drain(&mut t);
    assert_eq!(oack.len(), 1);
    assert_eq!(&oack[0][..2], b"\x00\x06", "OACK first");
    let later = t.poll_timeout().expect("deadline");
    t.handle_timeout(later);
    assert_eq!(drain(&mut t), oack, "OACK resent");
    t.handle_datagram(later, &ack(0));
    assert_eq!(
        t.poll_block_request().map(|r| r.index),
        Some(1),
        "DATA 1 follows ACK 0"
    );
}

#[test]
fn rollover_past_65535_wraps_to_zero_or_one_as_configured() {
    for rollover in [Rollover::WrapToZero, Rollover::WrapToOne] {
        let mut cfg = config(8, 1, false);
        cfg.rollover = rollover;
        let file = pattern(8 * 70_000 + 3);
        let (server, client) = run_download(cfg, &file, Impairment::default(), 2);
        assert_eq!(server.outcome(), Some(&Outcome::Completed), "{rollover:?}");
        assert!(client.received == file, "{rollover:?}: bytes must match");
    }
}
