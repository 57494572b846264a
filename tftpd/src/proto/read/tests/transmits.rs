//! What the transfer gives the shell to send: how much is pending, what each datagram is,
//! what a discard does, and the buffers it lends back to the reads.

use super::*;

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
