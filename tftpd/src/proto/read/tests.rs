//! Read state machine tests: direct packet-level cases, then whole downloads over the
//! simulated link.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::proto::Rollover;
use crate::proto::TransmitKind;
use crate::proto::error::ErrorCode;
use crate::proto::packet::ack;
use crate::proto::sim::{Impairment, config, run_download};

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn block(payload: &[u8]) -> Vec<u8> {
    let mut d = vec![0; 4];
    d.extend_from_slice(payload);
    d
}

fn drain(t: &mut ReadTransfer) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| t.poll_transmit().map(|x| x.datagram.to_vec())).collect()
}

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
fn pending_len_counts_what_poll_transmit_gives_out_and_a_discard_is_resent_later() {
    let t0 = Instant::now();
    let mut t = ReadTransfer::new(config(512, 1, true), t0);
    let oack_len = t.pending_len();
    assert!(oack_len > 0);
    t.discard_transmits();
    assert!(drain(&mut t).is_empty(), "dropped like a loss");
    t.handle_timeout(t0 + Duration::from_secs(1));
    assert_eq!(t.pending_len(), oack_len);
    let sent = drain(&mut t);
    assert_eq!(
        sent.iter().map(Vec::len).sum::<usize>(),
        oack_len,
        "the timer resends it"
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

#[test]
fn window_sends_windowsize_blocks_before_waiting() {
    let now = Instant::now();
    let mut t = ReadTransfer::new(config(8, 4, false), now);
    while let Some(r) = t.poll_block_request() {
        t.handle_block(now, block(&[r.index as u8; 8]));
    }
    assert_eq!(drain(&mut t).len(), 4, "a whole window goes out");
    t.handle_datagram(now, &ack(4));
    assert_eq!(
        t.poll_block_request().map(|r| r.index),
        Some(5),
        "window slides"
    );
}

#[test]
fn partial_window_ack_resends_the_rest_of_the_window() {
    let now = Instant::now();
    let mut t = ReadTransfer::new(config(8, 4, false), now);
    while let Some(r) = t.poll_block_request() {
        t.handle_block(now, block(&[r.index as u8; 8]));
    }
    drain(&mut t);
    // The client lost DATA 3 and ACKs 2 (RFC 7440 §4): blocks 3 and 4 go again, then 5, 6.
    t.handle_datagram(now, &ack(2));
    while let Some(r) = t.poll_block_request() {
        t.handle_block(now, block(&[r.index as u8; 8]));
    }
    let sent: Vec<u16> = drain(&mut t)
        .iter()
        .map(|d| u16::from_be_bytes([d[2], d[3]]))
        .collect();
    assert_eq!(sent, vec![3, 4, 5, 6], "go-back-N from block 3");
    assert_eq!(t.stats().retransmits, 2, "3 and 4 were retransmitted");
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

#[test]
fn windowed_download_survives_a_lossy_link() {
    let imp = Impairment {
        loss: 0.1,
        dup: 0.05,
        reorder: 0.05,
    };
    let mut cfg = config(64, 8, true);
    cfg.max_retries = 50;
    let file = pattern(64 * 500 + 17);
    let (server, client) = run_download(cfg, &file, imp, 3);
    assert_eq!(server.outcome(), Some(&Outcome::Completed));
    assert!(client.received == file, "bytes must match despite loss");
    assert!(
        server.stats().retransmits > 0,
        "loss must have caused retransmits"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_impaired_download_delivers_exact_bytes_or_ends_cleanly(
        len in 0usize..3000,
        blksize in prop_oneof![Just(8u16), Just(16), Just(512)],
        windowsize in 1u16..6,
        oack in any::<bool>(),
        loss in 0.0f64..0.3,
        dup in 0.0f64..0.2,
        reorder in 0.0f64..0.2,
        seed in any::<u64>(),
    ) {
        let mut cfg = config(blksize, windowsize, oack);
        cfg.max_retries = 8;
        let file = pattern(len);
        let (server, client) = run_download(cfg, &file, Impairment { loss, dup, reorder }, seed);
        let outcome = server.outcome().cloned();
        prop_assert!(outcome.is_some(), "the transfer must end");
        // Whatever happened, the client never holds a wrong byte.
        prop_assert!(file.starts_with(&client.received), "received bytes are a prefix");
        match outcome {
            Some(Outcome::Completed) => prop_assert!(client.received == file, "completed means every byte"),
            // Every datagram of the start lost: the client never answered, as far as the
            // server knows.
            Some(Outcome::Unanswered) => prop_assert!(!server.is_confirmed() && server.stats().bytes == 0),
            o => prop_assert_eq!(o, Some(Outcome::TimedOut)),
        }
    }
}

/// `protocol.default_windowsize`: the client was not told of the window and ACKs every block.
fn sliding(blksize: u16, windowsize: u16) -> TransferConfig {
    TransferConfig {
        sliding: true,
        ..config(blksize, windowsize, false)
    }
}

#[test]
fn a_sliding_window_refills_one_block_per_ack_and_never_resends() {
    let now = Instant::now();
    let mut t = ReadTransfer::new(sliding(512, 4), now);
    t.handle_block(now, block(&[1; 512]));
    drain(&mut t);
    t.handle_datagram(now, &ack(1));
    for i in 2..=5u8 {
        t.handle_block(now, block(&[i; 512]));
    }
    assert!(
        t.poll_block_request().is_none(),
        "four blocks in flight fill the window"
    );
    assert_eq!(drain(&mut t).len(), 4, "DATA 2-5 go out at once");
    t.handle_datagram(now, &ack(2));
    assert!(
        drain(&mut t).is_empty(),
        "ACK 2 resends nothing: 3-5 are in flight"
    );
    let req = t
        .poll_block_request()
        .expect("ACK 2 frees room for block 6");
    assert_eq!(req.index, 6);
    t.handle_block(now, block(&[6; 100]));
    let sent = drain(&mut t);
    assert_eq!(sent.len(), 1, "only the new block");
    assert_eq!(&sent[0][..4], b"\x00\x03\x00\x06");
    for b in 3..=6 {
        t.handle_datagram(now, &ack(b));
    }
    assert_eq!(t.outcome(), Some(&Outcome::Completed));
    assert_eq!(t.stats().retransmits, 0);
}

#[test]
fn a_sliding_window_goes_back_to_the_oldest_block_on_timeout() {
    let now = Instant::now();
    let mut t = ReadTransfer::new(sliding(512, 3), now);
    t.handle_block(now, block(&[1; 512]));
    drain(&mut t);
    t.handle_datagram(now, &ack(1));
    for i in 2..=3u8 {
        t.handle_block(now, block(&[i; 512]));
    }
    drain(&mut t);
    // DATA 2 was lost: the client keeps re-ACKing 1, which is ignored (Sorcerer's
    // Apprentice), and the timeout resends everything unacknowledged, in order.
    t.handle_datagram(now, &ack(1));
    assert!(drain(&mut t).is_empty(), "a duplicate ACK sends nothing");
    t.handle_block(now, block(&[4; 512]));
    drain(&mut t);
    t.handle_timeout(now + Duration::from_secs(2));
    let again: Vec<u8> = drain(&mut t).iter().map(|d| d[3]).collect();
    assert_eq!(
        again,
        [2, 3, 4],
        "go-back-N from the oldest unacknowledged block"
    );
}

#[test]
fn lockstep_clients_download_exactly_through_a_default_window_on_bad_links() {
    use crate::proto::sim::run_download_as;
    let file = pattern(200 * 512 + 17);
    let clean = run_download_as(sliding(512, 8), 1, &file, Impairment::default(), 3);
    assert_eq!(clean.0.outcome(), Some(&Outcome::Completed));
    assert_eq!(clean.1.received, file);
    assert_eq!(clean.0.stats().retransmits, 0, "no loss, no resends");
    assert_eq!(clean.1.data_seen, 201, "every block exactly once");
    for seed in 0..40 {
        let imp = Impairment {
            loss: 0.05,
            dup: 0.05,
            reorder: 0.05,
        };
        let (server, client) = run_download_as(sliding(512, 8), 1, &file, imp, seed);
        assert_eq!(client.received, file, "seed {seed}: bytes must match");
        // The simulated client does not dally: when its final ACK is lost the server can
        // only time out, in every window mode alike.
        let final_ack_lost = client.done && server.outcome() == Some(&Outcome::TimedOut);
        assert!(
            server.outcome() == Some(&Outcome::Completed) || final_ack_lost,
            "seed {seed}: {:?}",
            server.outcome()
        );
    }
}

#[test]
fn each_transmit_says_what_it_is_and_data_names_its_index_past_rollover() {
    let now = Instant::now();
    let kind = |t: &mut ReadTransfer| t.poll_transmit().map(|x| x.kind);
    let mut cfg = config(8, 2, true);
    cfg.rollover = Rollover::WrapToZero;
    let mut t = ReadTransfer::new(cfg, now);
    assert_eq!(kind(&mut t), Some(TransmitKind::Oack), "OACK first");
    t.handle_datagram(now, &ack(0));
    t.handle_block(now, block(&[1; 8]));
    t.handle_block(now, block(&[2; 8]));
    assert_eq!(kind(&mut t), Some(TransmitKind::Data { block: 1 }));
    assert_eq!(kind(&mut t), Some(TransmitKind::Data { block: 2 }));
    assert_eq!(kind(&mut t), None, "nothing more given out");
    // Go-back-N resends name the same indices.
    t.handle_timeout(now + Duration::from_secs(60));
    assert_eq!(
        kind(&mut t),
        Some(TransmitKind::Data { block: 1 }),
        "retransmit of block 1"
    );
    // An abort's ERROR carries its code.
    t.abort(WireError::new(ErrorCode::DiskFull, "x"));
    let sent = t.poll_transmit().expect("the ERROR");
    assert_eq!(sent.kind, TransmitKind::Error(ErrorCode::DiskFull));
    assert_eq!(sent.error_code(), Some(ErrorCode::DiskFull));
    assert_eq!(
        Packet::decode(sent.datagram),
        Ok(Packet::Error {
            code: ErrorCode::DiskFull,
            message: b"x"
        }),
        "the kind matches the bytes"
    );
    // Past 65535 the wire number wraps but the index does not.
    let mut t = ReadTransfer::new(config(8, 1, false), now);
    for i in 1..=65_537u64 {
        t.handle_block(now, block(&[0; 8]));
        let wire = t.cfg.rollover.wire_block(i);
        let sent = t.poll_transmit().expect("DATA");
        assert_eq!(sent.kind, TransmitKind::Data { block: i });
        assert_eq!(
            &sent.datagram[2..4],
            &wire.to_be_bytes(),
            "wire number {wire}"
        );
        t.handle_datagram(now, &ack(wire));
    }
}

#[test]
fn acknowledged_blocks_lend_their_buffers_to_the_next_reads_at_most_a_window() {
    let now = Instant::now();
    let mut t = ReadTransfer::new(config(512, 4, false), now);
    assert_eq!(t.take_buffer().capacity(), 0, "nothing acknowledged yet");
    for i in 1..=4u8 {
        t.handle_block(now, block(&[i; 512]));
    }
    assert_eq!(drain(&mut t).len(), 4, "a window of 4 sent");
    t.handle_datagram(now, &ack(4));
    let lent: Vec<Vec<u8>> = (0..5).map(|_| t.take_buffer()).collect();
    assert_eq!(
        lent.iter().filter(|b| b.len() == 516).count(),
        4,
        "a lent buffer still holds its block, for the reader to overwrite"
    );
    let reused = lent.iter().filter(|b| b.capacity() >= 516).count();
    assert_eq!(reused, 4, "the window's four buffers, then a new one");
    // The buffers carry the next blocks as well as fresh ones would.
    let mut next = t.take_buffer();
    next.clear();
    next.extend_from_slice(&block(&[5; 100]));
    t.handle_block(now, next);
    assert_eq!(
        drain(&mut t),
        vec![{
            let mut d = vec![0, 3, 0, 5];
            d.extend_from_slice(&[5; 100]);
            d
        }]
    );
}

#[test]
fn pending_transmits_bounds_what_poll_transmit_gives_out() {
    let now = Instant::now();
    let mut t = ReadTransfer::new(config(512, 4, false), now);
    assert_eq!(t.pending_transmits(), 0);
    t.handle_block(now, block(&[1; 512]));
    assert_eq!(
        t.pending_transmits(),
        1,
        "one block: the shell may send it directly"
    );
    for i in 2..=4u8 {
        t.handle_block(now, block(&[i; 512]));
    }
    assert_eq!(t.pending_transmits(), 4, "a window: the batch");
    assert_eq!(drain(&mut t).len(), 4);
    assert_eq!(t.pending_transmits(), 0);
    // A timeout queues the window again (go-back-N): never fewer given out than counted
    // here, except entries that went stale.
    t.handle_timeout(now + Duration::from_secs(60));
    let n = t.pending_transmits();
    assert_eq!(drain(&mut t).len(), n, "every counted entry was given out");
}
