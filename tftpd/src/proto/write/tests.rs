//! Write state machine tests: packet-level cases, then whole uploads over the simulated link.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::proto::packet::{ack, data_header};
use crate::proto::sim::{Impairment, config, run_upload};

fn data(block: u16, payload: &[u8]) -> Vec<u8> {
    let mut d = data_header(block).to_vec();
    d.extend_from_slice(payload);
    d
}

fn drain(t: &mut WriteTransfer) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| t.poll_transmit().map(|x| x.datagram.to_vec())).collect()
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 13 + 5) as u8).collect()
}

#[test]
fn upload_starts_with_ack_zero_or_the_oack() {
    let now = Instant::now();
    let mut t = WriteTransfer::new(config(512, 1, false), now);
    assert_eq!(drain(&mut t), vec![ack(0).to_vec()]);
    let mut t = WriteTransfer::new(config(512, 1, true), now);
    assert_eq!(&drain(&mut t)[0][..2], b"\x00\x06", "OACK instead of ACK 0");
}

#[test]
fn the_dally_outlasts_a_client_retransmitting_on_the_same_timeout() {
    let now = Instant::now();
    let cfg = config(4, 1, false);
    let timeout = cfg.timeout;
    let mut t = WriteTransfer::new(cfg, now);
    drain(&mut t);
    t.handle_datagram(now, &data(1, b"ab"));
    assert!(t.poll_upload_complete());
    assert_eq!(drain(&mut t), vec![ack(1).to_vec()], "the final ACK (lost)");
    // The client resends the final DATA one of its timeouts later (plus a little travel).
    let resent = now + timeout + Duration::from_millis(5);
    t.handle_timeout(resent);
    assert_eq!(t.outcome(), None, "still dallying when the resend arrives");
    t.handle_datagram(resent, &data(1, b"ab"));
    assert_eq!(drain(&mut t), vec![ack(1).to_vec()], "the final ACK again");
    let end = t.poll_timeout().expect("dally deadline");
    assert_eq!(
        end,
        now + 2 * timeout,
        "the dally is two timeouts from the final DATA"
    );
    t.handle_timeout(end);
    assert_eq!(t.outcome(), Some(&Outcome::Completed));
}

#[test]
fn each_transmit_says_what_it_is() {
    let now = Instant::now();
    let kind = |t: &mut WriteTransfer| t.poll_transmit().map(|x| x.kind);
    let mut t = WriteTransfer::new(config(4, 1, false), now);
    assert_eq!(kind(&mut t), Some(TransmitKind::Ack { block: 0 }));
    t.handle_datagram(now, &data(1, b"abcd"));
    assert_eq!(kind(&mut t), Some(TransmitKind::Ack { block: 1 }));
    let mut t = WriteTransfer::new(config(4, 1, true), now);
    assert_eq!(kind(&mut t), Some(TransmitKind::Oack));
    t.abort(WireError::new(ErrorCode::DiskFull, "full"));
    assert_eq!(kind(&mut t), Some(TransmitKind::Error(ErrorCode::DiskFull)));
}

#[test]
fn each_block_is_written_once_and_acked_and_the_last_completes() {
    let now = Instant::now();
    let mut t = WriteTransfer::new(config(4, 1, false), now);
    drain(&mut t);
    let d1 = data(1, b"abcd");
    assert_eq!(t.handle_datagram(now, &d1), Some(&b"abcd"[..]));
    assert_eq!(drain(&mut t), vec![ack(1).to_vec()]);
    // Our ACK 1 was lost; the client resends DATA 1: re-ACK, never write it twice.
    assert_eq!(
        t.handle_datagram(now, &d1),
        None,
        "a duplicate is not written again"
    );
    assert_eq!(
        drain(&mut t),
        vec![ack(1).to_vec()],
        "the duplicate is re-ACKed"
    );
    let d2 = data(2, b"ef");
    assert_eq!(t.handle_datagram(now, &d2), Some(&b"ef"[..]));
    assert!(
        t.poll_upload_complete(),
        "a short block completes the upload"
    );
    assert!(!t.poll_upload_complete(), "reported once");
    assert_eq!(drain(&mut t), vec![ack(2).to_vec()]);
    // Dally: the final DATA again gets the final ACK again.
    assert_eq!(t.handle_datagram(now, &d2), None);
    assert_eq!(
        drain(&mut t),
        vec![ack(2).to_vec()],
        "final ACK resent while dallying"
    );
    let end = t.poll_timeout().expect("dally deadline");
    t.handle_timeout(end);
    assert_eq!(t.outcome(), Some(&Outcome::Completed));
    assert_eq!(t.stats().bytes, 6);
}

#[test]
fn failed_commit_turns_the_final_ack_into_an_error() {
    let now = Instant::now();
    let mut t = WriteTransfer::new(config(512, 1, false), now);
    drain(&mut t);
    t.handle_datagram(now, &data(1, b"short"));
    assert!(t.poll_upload_complete());
    t.abort(WireError::new(ErrorCode::DiskFull, "disk full"));
    let sent = drain(&mut t);
    assert_eq!(sent.len(), 1, "only the ERROR goes out, not the ACK");
    assert_eq!(&sent[0][..4], b"\x00\x05\x00\x03");
    assert!(matches!(t.outcome(), Some(Outcome::Aborted(_))));
}

#[test]
fn oversized_data_block_is_refused_with_error_4() {
    let now = Instant::now();
    let mut t = WriteTransfer::new(config(4, 1, false), now);
    drain(&mut t);
    assert_eq!(t.handle_datagram(now, &data(1, b"too long")), None);
    let sent = drain(&mut t);
    assert_eq!(&sent[0][..4], b"\x00\x05\x00\x04", "ERROR 4");
}

#[test]
fn silence_retransmits_the_last_ack_then_times_out() {
    let now = Instant::now();
    let mut cfg = config(4, 1, false);
    cfg.max_retries = 2;
    let mut t = WriteTransfer::new(cfg, now);
    drain(&mut t);
    t.handle_datagram(now, &data(1, b"abcd"));
    drain(&mut t);
    for _ in 0..2 {
        let at = t.poll_timeout().expect("deadline");
        t.handle_timeout(at);
        assert_eq!(drain(&mut t), vec![ack(1).to_vec()], "ACK 1 resent");
    }
    let at = t.poll_timeout().expect("deadline");
    t.handle_timeout(at);
    assert_eq!(t.outcome(), Some(&Outcome::TimedOut));
    assert!(!t.is_complete(), "a timed-out upload is not complete");
}

#[test]
fn client_error_ends_the_upload() {
    let now = Instant::now();
    let mut t = WriteTransfer::new(config(4, 1, false), now);
    drain(&mut t);
    t.handle_datagram(now, b"\x00\x05\x00\x00abort\x00");
    assert!(matches!(t.outcome(), Some(Outcome::PeerError { .. })));
    assert!(drain(&mut t).is_empty());
}

#[test]
fn window_is_acked_once_at_its_end_and_gaps_once() {
    let now = Instant::now();
    let mut t = WriteTransfer::new(config(2, 4, true), now);
    drain(&mut t);
    for b in 1..=3 {
        t.handle_datagram(now, &data(b, b"xx"));
        assert!(drain(&mut t).is_empty(), "no ACK inside the window");
    }
    t.handle_datagram(now, &data(4, b"xx"));
    assert_eq!(
        drain(&mut t),
        vec![ack(4).to_vec()],
        "ACK at the window's end"
    );
    // Block 5 lost: 6, 7, 8 arrive. One ACK 4 tells the client to restart from 5.
    for b in 6..=8 {
        assert_eq!(t.handle_datagram(now, &data(b, b"xx")), None);
    }
    assert_eq!(drain(&mut t), vec![ack(4).to_vec()], "one ACK for the gap");
}

#[test]
fn windowed_upload_survives_a_lossy_link() {
    let imp = Impairment {
        loss: 0.1,
        dup: 0.05,
        reorder: 0.05,
    };
    let mut cfg = config(64, 8, true);
    cfg.max_retries = 50;
    let file = pattern(64 * 400 + 9);
    let (server, written, client) = run_upload(cfg, &file, imp, 9);
    assert_eq!(server.outcome(), Some(&Outcome::Completed));
    assert!(written == file, "written bytes must match");
    assert!(client.done, "the client saw the final ACK");
}

#[test]
fn rollover_upload_past_65535_blocks() {
    let file = pattern(8 * 66_000 + 1);
    let (server, written, _) = run_upload(config(8, 1, false), &file, Impairment::default(), 4);
    assert_eq!(server.outcome(), Some(&Outcome::Completed));
    assert!(written == file, "bytes must match across the rollover");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_impaired_upload_writes_exact_bytes_or_ends_cleanly(
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
        let (server, written, _) = run_upload(cfg, &file, Impairment { loss, dup, reorder }, seed);
        prop_assert!(server.outcome().is_some(), "the upload must end");
        prop_assert!(file.starts_with(&written), "written bytes are a prefix, in order");
        if server.is_complete() {
            prop_assert!(written == file, "complete means every byte");
        }
    }
}

#[test]
fn an_unanswered_upload_sends_two_datagrams_on_the_servers_timeout_and_no_error() {
    for oack in [false, true] {
        let t0 = Instant::now();
        let mut cfg = config(512, 1, oack);
        cfg.timeout = Duration::from_secs(255);
        cfg.half_open = crate::proto::HalfOpen {
            timeout: Duration::from_secs(1),
            retries: 1,
        };
        let mut t = WriteTransfer::new(cfg, t0);
        let first = drain(&mut t);
        assert_eq!(first.len(), 1, "oack {oack}: ACK 0 or the OACK");
        assert_eq!(
            t.poll_timeout(),
            Some(t0 + Duration::from_secs(1)),
            "oack {oack}: the server's timeout"
        );
        t.handle_timeout(t0 + Duration::from_secs(1));
        assert_eq!(drain(&mut t), first, "oack {oack}: once more");
        for s in 2..=5 {
            t.handle_timeout(t0 + Duration::from_secs(s));
            assert!(t.is_quiet() && drain(&mut t).is_empty(), "quiet at {s} s");
        }
        t.handle_timeout(t0 + Duration::from_secs(6));
        assert_eq!(t.outcome(), Some(&Outcome::Unanswered), "oack {oack}");
        assert!(drain(&mut t).is_empty(), "oack {oack}: no ERROR");
    }
}

#[test]
fn data_1_confirms_an_upload_and_eviction_spares_it_then() {
    let now = Instant::now();
    let mut t = WriteTransfer::new(config(4, 1, false), now);
    drain(&mut t);
    assert!(!t.is_confirmed());
    t.handle_datagram(now, &data(1, b"abcd"));
    assert!(t.is_confirmed(), "DATA 1 is the client's answer");
    assert!(!t.evict(), "a confirmed upload is not evicted");
    let mut h = WriteTransfer::new(config(4, 1, false), now);
    drain(&mut h);
    assert!(h.evict());
    assert_eq!(h.outcome(), Some(&Outcome::Evicted));
    assert!(drain(&mut h).is_empty() && h.is_finished());
    assert!(
        h.handle_datagram(now, &data(1, b"abcd")).is_none(),
        "an evicted upload takes no data"
    );
}

#[test]
fn aborting_an_ended_upload_sends_nothing_but_a_dallying_one_still_can() {
    // Found by the write_machine fuzz target: an ERROR went out after the peer's own ERROR
    // had ended the upload.
    let now = Instant::now();
    let mut t = WriteTransfer::new(config(4, 1, false), now);
    drain(&mut t);
    t.handle_datagram(now, b"\x00\x05\x00\x03full\x00");
    assert!(matches!(t.outcome(), Some(Outcome::PeerError { .. })));
    t.abort(WireError::new(ErrorCode::NotDefined, "shutting down"));
    assert!(drain(&mut t).is_empty(), "no ERROR after the peer's");
    assert!(
        matches!(t.outcome(), Some(Outcome::PeerError { .. })),
        "the outcome stands"
    );
    let mut d = WriteTransfer::new(config(4, 1, false), now);
    drain(&mut d);
    assert_eq!(d.handle_datagram(now, &data(1, b"ab")), Some(&b"ab"[..]));
    assert!(d.poll_upload_complete());
    d.abort(WireError::new(ErrorCode::DiskFull, "commit failed"));
    assert_eq!(
        drain(&mut d)[0][..4],
        [0, 5, 0, 3],
        "a failed commit is still an ERROR 3"
    );
}

#[test]
fn the_whole_transfer_limit_ends_an_upload_with_an_error() {
    let t0 = Instant::now();
    let mut cfg = config(4, 1, false);
    cfg.max_duration = Some(Duration::from_secs(3));
    let mut t = WriteTransfer::new(cfg, t0);
    drain(&mut t);
    for i in 1..=3u16 {
        let at = t0 + Duration::from_millis(900 * u64::from(i));
        t.handle_datagram(at, &data(i, b"abcd"));
        drain(&mut t);
    }
    let limit = t.poll_timeout().expect("a deadline");
    assert!(limit <= t0 + Duration::from_secs(3));
    t.handle_timeout(t0 + Duration::from_secs(3));
    assert!(matches!(t.outcome(), Some(Outcome::Aborted(_))));
    assert_eq!(&drain(&mut t)[0][..2], b"\x00\x05", "the client is told");
}
