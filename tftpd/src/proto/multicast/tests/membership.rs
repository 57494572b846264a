//! Joining a group: the first member is master and drives DATA to the group, later members
//! are told they are not, ACKs that move nothing, a repeated join and an abort.

use super::*;

#[test]
fn first_member_is_master_and_its_acks_drive_data_to_the_group() {
    let now = Instant::now();
    let file = file_for(3);
    let mut g = MulticastGroup::new(cfg(3));
    g.handle_join(now, 1, vec![("blksize", "8".into())]);
    let sent = pump(&mut g, &file);
    assert_eq!(sent.len(), 1, "one OACK");
    assert_eq!(
        sent[0].0,
        Destination::Peer(1),
        "the OACK goes to the client"
    );
    assert!(
        sent[0]
            .1
            .starts_with(b"\x00\x06blksize\x008\x00multicast\x00"),
        "the accepted options, then multicast: {:?}",
        sent[0].1
    );
    assert_eq!(oack_mc(&sent[0].1), Some((GROUP, 1758, true)), "mc=1");
    for b in 0..3u16 {
        g.handle_datagram(now, 1, &ack(b));
        let sent = pump(&mut g, &file);
        assert_eq!(sent.len(), 1, "ACK {b} asks for one block");
        assert_eq!(sent[0].0, Destination::Group, "DATA goes to the group");
        assert_eq!(data_block(&sent[0].1), Some(b + 1));
    }
    g.handle_datagram(now, 1, &ack(3));
    assert_eq!(
        g.poll_departure(),
        Some(Departure {
            peer: 1,
            outcome: Outcome::Completed
        })
    );
    assert!(g.is_finished(), "no member left");
    assert_eq!(g.stats().bytes, file.len() as u64);
}

#[test]
fn late_joiner_is_told_it_is_not_master_then_takes_over_and_asks_for_what_it_missed() {
    let now = Instant::now();
    let file = file_for(4);
    let mut g = MulticastGroup::new(cfg(4));
    g.handle_join(now, 1, Vec::new());
    pump(&mut g, &file);
    g.handle_datagram(now, 1, &ack(0));
    g.handle_datagram(now, 1, &ack(1));
    pump(&mut g, &file);
    g.handle_join(now, 2, Vec::new());
    let sent = pump(&mut g, &file);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, Destination::Peer(2));
    assert_eq!(oack_mc(&sent[0].1), Some((GROUP, 1758, false)), "mc=0");
    assert_eq!(g.master(), Some(1), "the oldest member stays master");
    g.handle_datagram(now, 1, &ack(2));
    g.handle_datagram(now, 1, &ack(3));
    pump(&mut g, &file);
    g.handle_datagram(now, 1, &ack(4));
    let sent = pump(&mut g, &file);
    assert_eq!(g.master(), Some(2), "hand-over to the next oldest");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, Destination::Peer(2));
    assert_eq!(oack_mc(&sent[0].1), Some((GROUP, 1758, true)), "mc=1");
    // The joiner saw blocks 3 and 4 only: it ACKs 0, asking for block 1 again.
    g.handle_datagram(now, 2, &ack(0));
    let sent = pump(&mut g, &file);
    assert_eq!(data_block(&sent[0].1), Some(1), "block 1 is sent again");
    g.handle_datagram(now, 2, &ack(1));
    let sent = pump(&mut g, &file);
    assert_eq!(data_block(&sent[0].1), Some(2));
    g.handle_datagram(now, 2, &ack(4));
    assert_eq!(g.poll_departure().map(|d| d.peer), Some(1));
    assert_eq!(g.poll_departure().map(|d| d.peer), Some(2));
    assert!(g.is_finished());
}

#[test]
fn non_master_ack_gets_an_oack_with_mc_0_and_moves_nothing() {
    let now = Instant::now();
    let file = file_for(4);
    let mut g = MulticastGroup::new(cfg(4));
    g.handle_join(now, 1, Vec::new());
    g.handle_join(now, 2, Vec::new());
    pump(&mut g, &file);
    g.handle_datagram(now, 2, &ack(0));
    let sent = pump(&mut g, &file);
    assert_eq!(sent.len(), 1, "no DATA for a non-master ACK");
    assert_eq!(sent[0].0, Destination::Peer(2));
    assert_eq!(oack_mc(&sent[0].1).map(|v| v.2), Some(false));
    // ... but acknowledging the last block ends its download, master or not.
    g.handle_datagram(now, 2, &ack(4));
    assert_eq!(
        g.poll_departure(),
        Some(Departure {
            peer: 2,
            outcome: Outcome::Completed
        })
    );
    assert_eq!(g.members(), 1);
}

#[test]
fn repeated_ack_does_not_send_the_block_twice() {
    let now = Instant::now();
    let file = file_for(4);
    let mut g = MulticastGroup::new(cfg(4));
    g.handle_join(now, 1, Vec::new());
    pump(&mut g, &file);
    g.handle_datagram(now, 1, &ack(0));
    assert_eq!(pump(&mut g, &file).len(), 1);
    g.handle_datagram(now, 1, &ack(0));
    assert!(pump(&mut g, &file).is_empty(), "no Sorcerer's Apprentice");
    assert_eq!(g.stats().ignored, 1);
}

#[test]
fn repeated_join_resends_the_oack_and_abort_tells_every_member() {
    let now = Instant::now();
    let file = file_for(2);
    let mut g = MulticastGroup::new(cfg(2));
    g.handle_join(now, 1, Vec::new());
    g.handle_join(now, 2, Vec::new());
    pump(&mut g, &file);
    g.handle_join(now, 2, Vec::new());
    let sent = pump(&mut g, &file);
    assert_eq!(g.members(), 2, "not added twice");
    assert_eq!(oack_mc(&sent[0].1).map(|v| v.2), Some(false));
    g.abort(WireError::new(
        ErrorCode::NotDefined,
        "server shutting down",
    ));
    let sent = pump(&mut g, &file);
    let to: Vec<_> = sent.iter().map(|(t, _)| *t).collect();
    assert_eq!(to, vec![Destination::Peer(1), Destination::Peer(2)]);
    assert_eq!(
        g.poll_departure().map(|d| d.outcome.label()),
        Some("aborted")
    );
    assert!(g.is_finished());
    assert_eq!(g.poll_timeout(), None);
}
