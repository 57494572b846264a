//! Admission: the two pools, eviction, the per-client limit and the reflection budget.

use std::time::{Duration, Instant};

use super::budget::BudgetLimits;
use super::*;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

fn limits(max_total: usize, max_per_client: usize, max_half_open: usize) -> Limits {
    Limits {
        max_total,
        max_per_client,
        max_half_open,
        min_age: Duration::from_millis(250),
        budget: BudgetLimits::OFF,
    }
}

fn admit(a: &Arc<Admission>, peer: &str, now: Instant, l: &Limits) -> Result<Ticket, Refusal> {
    a.admit(addr(peer), now, l, &AbortSignal::new())
}

#[test]
fn same_tid_is_a_duplicate_until_the_ticket_drops() {
    let a = Arc::new(Admission::default());
    let l = limits(10, 10, 10);
    let now = Instant::now();
    let t = admit(&a, "10.0.0.1:1000", now, &l).expect("first admit");
    assert_eq!(
        admit(&a, "10.0.0.1:1000", now, &l).err(),
        Some(Refusal::Duplicate),
        "a retransmitted request must not start a second transfer"
    );
    drop(t);
    assert!(
        admit(&a, "10.0.0.1:1000", now, &l).is_ok(),
        "released on drop"
    );
}

#[test]
fn the_per_client_limit_counts_confirmed_transfers_only() {
    let a = Arc::new(Admission::default());
    let l = limits(10, 2, 10);
    let now = Instant::now();
    let mut t1 = admit(&a, "10.0.0.1:1", now, &l).expect("1");
    let mut t2 = admit(&a, "10.0.0.1:2", now, &l).expect("2");
    let mut t3 = admit(&a, "[::ffff:10.0.0.1]:3", now, &l).expect(
        "half-open transfers do not count: a forged source must not use up a real client's share",
    );
    t1.confirm(now).expect("1 confirmed");
    t2.confirm(now).expect("2 confirmed");
    assert_eq!(
        t3.confirm(now),
        Err(Refusal::ClientLimit),
        "v4-mapped is the same client, and two are confirmed"
    );
    assert_eq!(
        admit(&a, "10.0.0.1:4", now, &l).err(),
        Some(Refusal::ClientLimit),
        "two confirmed: no more from this address"
    );
    assert!(admit(&a, "10.0.0.2:1", now, &l).is_ok(), "another client");
}

#[test]
fn a_full_half_open_pool_evicts_its_oldest_never_refuses_a_new_request() {
    let a = Arc::new(Admission::default());
    let l = limits(100, 100, 3);
    let t0 = Instant::now();
    let old: Vec<Ticket> = (1..=3)
        .map(|i| admit(&a, &format!("10.0.0.{i}:69"), t0, &l).expect("fills the pool"))
        .collect();
    let later = t0 + l.min_age;
    let new = admit(&a, "10.0.0.9:69", later, &l).expect("the oldest makes room");
    assert!(old[0].is_evicted(), "the oldest was evicted");
    assert!(old[0].signal().is_raised(), "its wait ends");
    assert!(!old[1].is_evicted() && !new.is_evicted());
    assert_eq!(a.half_open(), 3, "the pool stays at its size");
    assert_eq!(
        admit(&a, "10.0.0.1:69", later, &l).err(),
        Some(Refusal::Duplicate),
        "an evicted transfer still ending keeps its TID"
    );
    drop(old);
    assert_eq!(a.half_open(), 1);
}

#[test]
fn half_open_transfers_younger_than_the_minimum_age_are_not_evicted() {
    let a = Arc::new(Admission::default());
    let l = limits(100, 100, 2);
    let t0 = Instant::now();
    let _a1 = admit(&a, "10.0.0.1:69", t0, &l).expect("1");
    let _a2 = admit(&a, "10.0.0.2:69", t0, &l).expect("2");
    assert_eq!(
        admit(&a, "10.0.0.3:69", t0 + Duration::from_millis(10), &l).err(),
        Some(Refusal::Full),
        "a burst of real requests waits instead of evicting its own"
    );
}

#[test]
fn confirmed_transfers_are_never_evicted_and_fill_the_total_alone() {
    let a = Arc::new(Admission::default());
    let l = limits(2, 10, 2);
    let t0 = Instant::now();
    let mut c1 = admit(&a, "10.0.0.1:69", t0, &l).expect("1");
    let mut c2 = admit(&a, "10.0.0.2:69", t0, &l).expect("2");
    c1.confirm(t0).expect("confirmed");
    c2.confirm(t0).expect("confirmed");
    let late = t0 + Duration::from_secs(60);
    assert_eq!(
        admit(&a, "10.0.0.3:69", late, &l).err(),
        Some(Refusal::Full),
        "every place is a confirmed transfer: defer"
    );
    assert!(!c1.is_evicted() && !c2.is_evicted());
    drop(c1);
    assert!(
        admit(&a, "10.0.0.3:69", late, &l).is_ok(),
        "a place came free"
    );
}

#[test]
fn a_flood_of_never_answering_requests_cannot_keep_an_answering_client_out() {
    let a = Arc::new(Admission::default());
    let l = limits(2048, 2048, 1024);
    let mut now = Instant::now();
    let mut held = VecDeque::new();
    // 5000 forged requests, one a millisecond (1000 a second), none ever answered; each
    // half-open transfer lives two seconds (first send and one retransmission).
    let mut real_admitted = 0;
    for i in 0..5000u32 {
        now += Duration::from_millis(1);
        let peer = SocketAddr::from(([127, (i >> 16) as u8, (i >> 8) as u8, i as u8], 40000));
        let t = a
            .admit(peer, now, &l, &AbortSignal::new())
            .expect("a forged request is admitted too: never refused");
        held.push_back((now, t));
        while held
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > Duration::from_secs(2))
        {
            held.pop_front();
        }
        if i % 500 == 0 {
            let mut real = admit(&a, &format!("10.9.9.9:{}", 1000 + i), now, &l)
                .expect("a real client is admitted during the flood");
            real.confirm(now).expect("and confirmed when it answers");
            real_admitted += 1;
        }
    }
    assert_eq!(real_admitted, 10);
    assert!(a.half_open() <= 1024, "the pool holds {}", a.half_open());
}

#[test]
fn a_prefix_budget_bounds_bytes_to_half_open_peers_and_is_given_back_on_answer() {
    let a = Arc::new(Admission::default());
    let l = Limits {
        budget: BudgetLimits {
            rate: 100,
            burst: 1000,
            prefix_v4: 24,
            prefix_v6: 64,
        },
        ..limits(100, 100, 100)
    };
    let now = Instant::now();
    let mut t1 = admit(&a, "192.0.2.1:69", now, &l).expect("1");
    let t2 = admit(&a, "192.0.2.2:69", now, &l).expect("2");
    let other = admit(&a, "198.51.100.1:69", now, &l).expect("3");
    assert!(t1.charge(600, now), "within the prefix's burst");
    assert!(!t2.charge(600, now), "the same /24 has 400 bytes left");
    assert!(other.charge(600, now), "another prefix has its own budget");
    t1.confirm(now).expect("t1's peer answered");
    assert!(
        t2.charge(600, now),
        "what t1 cost came back when it answered"
    );
    assert!(
        t1.charge(1 << 20, now),
        "a confirmed transfer is never charged"
    );
}

#[test]
fn an_evicted_transfer_can_neither_be_confirmed_nor_charged() {
    let a = Arc::new(Admission::default());
    let l = limits(100, 100, 1);
    let t0 = Instant::now();
    let mut old = admit(&a, "10.0.0.1:69", t0, &l).expect("1");
    let _new = admit(&a, "10.0.0.2:69", t0 + Duration::from_secs(1), &l).expect("2");
    assert!(old.is_evicted());
    assert_eq!(old.confirm(t0), Err(Refusal::Full), "it is ending");
    assert!(!old.charge(1, t0), "it sends nothing more");
}

#[test]
fn a_client_asking_again_replaces_its_quiet_half_open_transfer_and_nothing_else() {
    let a = Arc::new(Admission::default());
    let l = limits(10, 10, 10);
    let now = Instant::now();
    let first = admit(&a, "10.0.0.1:69", now, &l).expect("1");
    assert_eq!(
        admit(&a, "10.0.0.1:69", now, &l).err(),
        Some(Refusal::Duplicate),
        "while it still retransmits, the running transfer answers"
    );
    first.mark_quiet();
    let second = admit(&a, "10.0.0.1:69", now, &l).expect("a quiet one is replaced");
    assert!(first.is_evicted() && !second.is_evicted());
    assert_eq!(a.half_open(), 1);
    drop(first);
    assert_eq!(
        a.half_open(),
        1,
        "the replaced ticket's drop leaves the new place alone"
    );
    assert_eq!(
        admit(&a, "10.0.0.1:69", now, &l).err(),
        Some(Refusal::Duplicate)
    );
    drop(second);
    assert_eq!(a.running(), 0);
}

#[tokio::test]
async fn a_freed_place_wakes_a_listener_waiting_for_one() {
    let a = Arc::new(Admission::default());
    let l = limits(1, 10, 1);
    let t = admit(&a, "10.0.0.1:69", Instant::now(), &l).expect("1");
    let freed = a.freed();
    tokio::pin!(freed);
    freed.as_mut().enable();
    drop(t);
    tokio::time::timeout(Duration::from_secs(5), freed)
        .await
        .expect("the drop wakes the waiter");
}
