//! Windows: RFC 7440 windows the client asked for (go-back-N from a partial ACK) and the
//! server's default sliding window the client was not told of.

use super::*;

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
