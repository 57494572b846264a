//! Multicast group tests: packet-level cases, then whole group downloads with simulated
//! members that behave like atftp's client (keep every block seen, ACK the block before the
//! first hole when master), over a seeded lossy medium with a fake clock.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::proto::error::{ErrorCode, WireError};
use crate::proto::packet::{DATA_HEADER_LEN, Packet, ack, encode_error};

const GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 0, 1);
const TIMEOUT: Duration = Duration::from_millis(100);

fn cfg(blocks: u64) -> GroupConfig {
    GroupConfig {
        addr: GROUP,
        port: 1758,
        blocks,
        blksize: 8,
        timeout: TIMEOUT,
        max_retries: 3,
        switch_on_timeout: false,
    }
}

fn file_for(blocks: u64) -> Vec<u8> {
    // `blocks` blocks of 8 bytes: the last one short (3 bytes).
    (0..(blocks - 1) * 8 + 3)
        .map(|i| (i * 13 + 5) as u8)
        .collect()
}

fn block_of(file: &[u8], index: u64, max_len: usize) -> Vec<u8> {
    let start = ((index - 1) as usize * max_len).min(file.len());
    let end = (start + max_len).min(file.len());
    let mut d = vec![0; DATA_HEADER_LEN];
    d.extend_from_slice(&file[start..end]);
    d
}

type Sent = Vec<(Destination<u32>, Vec<u8>)>;

/// Sends everything queued, reading blocks from `file` as the group asks.
fn pump(g: &mut MulticastGroup<u32>, file: &[u8]) -> Sent {
    let mut out = Vec::new();
    loop {
        if let Some(r) = g.poll_block_request() {
            g.handle_block(block_of(file, r.index, r.max_len));
        }
        let sent = g.poll_transmit().map(|t| (t.to, t.datagram.to_vec()));
        match sent {
            Some(t) => out.push(t),
            None if g.poll_block_request().is_none() => return out,
            None => {}
        }
    }
}

/// The `multicast` value of an OACK, parsed.
fn oack_mc(d: &[u8]) -> Option<(Ipv4Addr, u16, bool)> {
    match Packet::decode(d) {
        Ok(Packet::Oack { options }) => options
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(OPTION.as_bytes()))
            .and_then(|(_, v)| parse_oack_value(std::str::from_utf8(v).ok()?)),
        _ => None,
    }
}

fn data_block(d: &[u8]) -> Option<u16> {
    match Packet::decode(d) {
        Ok(Packet::Data { block, .. }) => Some(block),
        _ => None,
    }
}

#[test]
fn oack_value_is_addr_port_mc() {
    assert_eq!(oack_value(GROUP, 1758, true), "239.255.0.1,1758,1");
    assert_eq!(
        parse_oack_value("239.255.0.1,1758,0"),
        Some((GROUP, 1758, false))
    );
    for bad in [
        "",
        "239.255.0.1",
        "239.255.0.1,1758",
        "x,1,1",
        "239.255.0.1,1,2",
        "a,b,c,d",
    ] {
        assert_eq!(parse_oack_value(bad), None, "{bad:?} is malformed");
    }
    assert_eq!(block_count(0, 512), 1, "an empty file is one empty block");
    assert_eq!(
        block_count(512, 512),
        2,
        "a full last block is followed by an empty one"
    );
    assert_eq!(block_count(513, 512), 2);
}

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

/// A member as atftp's client behaves: keeps every block it sees, ACKs only as master,
/// always the block before its first hole; done once it has ACKed the last block.
#[derive(Debug, Default)]
struct SimMember {
    blocks: BTreeMap<u64, Vec<u8>>,
    last: Option<u64>,
    master: bool,
    done: bool,
    /// Stops answering after this many ACKs (a client that died).
    dies_after: Option<usize>,
    acks: usize,
}

impl SimMember {
    fn hole(&self) -> u64 {
        (1..).find(|b| !self.blocks.contains_key(b)).unwrap_or(1) - 1
    }
    fn dead(&self) -> bool {
        self.dies_after.is_some_and(|n| self.acks >= n)
    }
    fn ack(&mut self) -> Option<[u8; 4]> {
        if self.dead() || self.done {
            return None;
        }
        let h = self.hole();
        self.acks += 1;
        if Some(h) == self.last {
            self.done = true;
        }
        Some(ack(h as u16))
    }
    fn receive(&mut self, d: &[u8], blksize: usize) -> Option<[u8; 4]> {
        if self.dead() || self.done {
            return None;
        }
        match Packet::decode(d) {
            Ok(Packet::Oack { .. }) => {
                self.master = oack_mc(d)?.2;
                if self.master { self.ack() } else { None }
            }
            Ok(Packet::Data {
                block,
                data: payload,
            }) => {
                let b = u64::from(block);
                if payload.len() < blksize {
                    self.last = Some(b);
                }
                self.blocks.insert(b, payload.to_vec());
                if self.master { self.ack() } else { None }
            }
            _ => None,
        }
    }
    fn bytes(&self) -> Vec<u8> {
        self.blocks.values().flatten().copied().collect()
    }
}

/// Runs a group: member `i` joins at step `joins[i]`; datagrams are lost with `loss`.
/// Returns the members and the departures.
fn run_group(
    blocks: u64,
    joins: &[usize],
    dies: &[Option<usize>],
    loss: f64,
    seed: u64,
    switch: bool,
) -> (Vec<SimMember>, Vec<Departure<u32>>) {
    let file = file_for(blocks);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut now = Instant::now();
    let mut g = MulticastGroup::new(GroupConfig {
        switch_on_timeout: switch,
        // Over a lossy medium a live member must not run out of retries by bad luck.
        max_retries: if loss > 0.0 { 12 } else { 3 },
        ..cfg(blocks)
    });
    let mut members: Vec<SimMember> = dies
        .iter()
        .map(|d| SimMember {
            dies_after: *d,
            ..SimMember::default()
        })
        .collect();
    let mut departures = Vec::new();
    let mut to_server: Vec<(u32, [u8; 4])> = Vec::new();
    for step in 0..20_000usize {
        for (i, at) in joins.iter().enumerate() {
            if *at == step {
                g.handle_join(now, i as u32, Vec::new());
            }
        }
        for (from, d) in to_server.drain(..) {
            if rng.f64() >= loss {
                g.handle_datagram(now, from, &d);
            }
        }
        for (to, d) in pump(&mut g, &file) {
            let targets: Vec<usize> = match to {
                Destination::Group => (0..members.len()).filter(|i| joins[*i] <= step).collect(),
                Destination::Peer(p) => vec![p as usize],
            };
            for t in targets {
                if rng.f64() >= loss
                    && let Some(a) = members[t].receive(&d, 8)
                {
                    to_server.push((t as u32, a));
                }
            }
        }
        departures.extend(std::iter::from_fn(|| g.poll_departure()));
        let all_joined = joins.iter().all(|j| *j <= step);
        if all_joined && g.is_finished() && to_server.is_empty() {
            return (members, departures);
        }
        if to_server.is_empty() {
            match g.poll_timeout() {
                Some(t) => {
                    now = now.max(t);
                    g.handle_timeout(now);
                }
                None => now += Duration::from_millis(1),
            }
        }
    }
    panic!("the group did not finish in 20000 steps");
}

#[test]
fn three_members_joining_at_different_times_all_get_the_whole_file() {
    let (members, departures) = run_group(40, &[0, 10, 30], &[None; 3], 0.0, 1, false);
    let file = file_for(40);
    for (i, m) in members.iter().enumerate() {
        assert_eq!(m.bytes(), file, "member {i} has every byte");
    }
    assert_eq!(departures.len(), 3, "each member leaves once");
    assert!(
        departures.iter().all(|d| d.outcome == Outcome::Completed),
        "{departures:?}"
    );
}

#[test]
fn a_master_that_dies_is_replaced_and_the_others_finish() {
    let (members, departures) = run_group(30, &[0, 2], &[Some(5), None], 0.0, 3, false);
    assert_eq!(
        members[1].bytes(),
        file_for(30),
        "the survivor has every byte"
    );
    assert!(
        departures.contains(&Departure {
            peer: 0,
            outcome: Outcome::TimedOut
        }),
        "{departures:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_live_member_gets_every_byte_over_a_lossy_medium(
        blocks in 1u64..60,
        joins in proptest::collection::vec(0usize..80, 1..5),
        dead in proptest::collection::vec(proptest::option::weighted(0.2, 0usize..20), 5),
        loss in prop_oneof![Just(0.0), 0.0..0.2],
        seed: u64,
        switch: bool,
    ) {
        let dies = &dead[..joins.len()];
        let (members, departures) = run_group(blocks, &joins, dies, loss, seed, switch);
        let file = file_for(blocks);
        for (i, m) in members.iter().enumerate() {
            if !m.dead() {
                prop_assert_eq!(m.bytes(), file.clone(), "member {} has every byte", i);
            }
        }
        let mut left: Vec<u32> = departures.iter().map(|d| d.peer).collect();
        left.sort_unstable();
        prop_assert_eq!(left, (0..joins.len() as u32).collect::<Vec<_>>(), "each member leaves exactly once");
    }

    #[test]
    fn oack_value_round_trips(a: [u8; 4], port: u16, master: bool) {
        let addr = Ipv4Addr::from(a);
        prop_assert_eq!(parse_oack_value(&oack_value(addr, port, master)), Some((addr, port, master)));
    }
}
