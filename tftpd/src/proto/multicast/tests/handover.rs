//! When the master changes: it falls silent, `switch_on_timeout` demotes it, or it sends an
//! ERROR; and a stranger's datagram is refused.

use super::*;

#[test]
fn silent_master_is_retried_then_dropped_and_the_next_member_takes_over() {
    let t0 = Instant::now();
    let file = file_for(4);
    let mut g = MulticastGroup::new(cfg(4));
    g.handle_join(t0, 1, Vec::new());
    g.handle_join(t0, 2, Vec::new());
    pump(&mut g, &file);
    g.handle_datagram(t0, 1, &ack(0));
    pump(&mut g, &file);
    for i in 1..=3 {
        let now = g.poll_timeout().expect("a deadline while a master is due");
        g.handle_timeout(now);
        let sent = pump(&mut g, &file);
        assert_eq!(sent.len(), 1, "retransmission {i}");
        assert_eq!(data_block(&sent[0].1), Some(1));
    }
    assert_eq!(g.stats().retransmits, 3);
    let now = g.poll_timeout().expect("deadline");
    g.handle_timeout(now);
    let sent = pump(&mut g, &file);
    assert_eq!(
        sent[0].0,
        Destination::Peer(1),
        "the silent master hears why"
    );
    assert!(matches!(
        Packet::decode(&sent[0].1),
        Ok(Packet::Error { .. })
    ));
    assert_eq!(sent[1].0, Destination::Peer(2));
    assert_eq!(
        oack_mc(&sent[1].1).map(|v| v.2),
        Some(true),
        "member 2 is master"
    );
    assert_eq!(
        g.poll_departure(),
        Some(Departure {
            peer: 1,
            outcome: Outcome::TimedOut
        })
    );
    assert_eq!(g.master(), Some(2));
}

#[test]
fn switch_on_timeout_hands_over_at_the_first_timeout_and_keeps_the_old_master() {
    let t0 = Instant::now();
    let file = file_for(4);
    let mut g = MulticastGroup::new(GroupConfig {
        switch_on_timeout: true,
        ..cfg(4)
    });
    g.handle_join(t0, 1, Vec::new());
    g.handle_join(t0, 2, Vec::new());
    pump(&mut g, &file);
    let now = g.poll_timeout().expect("deadline");
    g.handle_timeout(now);
    let sent = pump(&mut g, &file);
    let mcs: Vec<_> = sent
        .iter()
        .map(|(to, d)| (*to, oack_mc(d).map(|v| v.2)))
        .collect();
    assert_eq!(
        mcs,
        vec![
            (Destination::Peer(1), Some(false)),
            (Destination::Peer(2), Some(true))
        ],
        "old master demoted, next promoted"
    );
    assert_eq!(g.members(), 2, "the old master stays a member");
    assert_eq!(g.master(), Some(2));
}

#[test]
fn error_from_master_drops_it_and_a_stranger_gets_error_5() {
    let now = Instant::now();
    let file = file_for(2);
    let mut g = MulticastGroup::new(cfg(2));
    g.handle_join(now, 1, Vec::new());
    g.handle_join(now, 2, Vec::new());
    pump(&mut g, &file);
    let mut e = Vec::new();
    encode_error(&mut e, ErrorCode::DiskFull, b"full");
    g.handle_datagram(now, 1, &e);
    assert!(matches!(
        g.poll_departure(),
        Some(Departure {
            peer: 1,
            outcome: Outcome::PeerError { .. }
        })
    ));
    assert_eq!(g.master(), Some(2));
    pump(&mut g, &file);
    g.handle_datagram(now, 9, &ack(0));
    let sent = pump(&mut g, &file);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, Destination::Peer(9));
    assert!(matches!(
        Packet::decode(&sent[0].1),
        Ok(Packet::Error {
            code: ErrorCode::UnknownTransferId,
            ..
        })
    ));
}
