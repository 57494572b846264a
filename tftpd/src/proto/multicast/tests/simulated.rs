//! Whole group downloads with simulated atftp-like members joining at different times,
//! some dying, over a seeded lossy medium.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

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
}
