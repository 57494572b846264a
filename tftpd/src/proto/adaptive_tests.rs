//! Adaptive retransmission end to end on the timed simulated link: how long a transfer takes
//! through loss with the timer adapted and fixed, how many DATA a slow client sees twice,
//! and that a silent client is still waited for as long as before.

use std::time::{Duration, Instant};

use super::Retransmit;
use super::packet::ack;
use super::read::ReadTransfer;
use super::sim::config;
use super::sim::timed::{self, Path, Run};
use super::transfer::{Outcome, TransferConfig};
use super::write::WriteTransfer;

const MS: Duration = Duration::from_millis(1);
const ADAPTIVE: Retransmit = Retransmit::Adaptive {
    floor: MS.saturating_mul(10),
};

/// 1 MiB at blksize 1428, lock-step or with a window, as the rows measure.
fn setup(windowsize: u16, retransmit: Retransmit) -> (TransferConfig, Vec<u8>) {
    let cfg = TransferConfig {
        retransmit,
        ..config(1428, windowsize, windowsize > 1)
    };
    let file: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    (cfg, file)
}

fn lossy(loss: f64, one_way: Duration) -> Path {
    Path {
        loss,
        ..Path::clean(one_way)
    }
}

/// Downloads through `path` with the timer adapted and fixed; checks both delivered the
/// file and returns their times.
fn both_ways(windowsize: u16, path: Path, seed: u64) -> (Run, Run) {
    let (adaptive, file) = setup(windowsize, ADAPTIVE);
    let (fixed, _) = setup(windowsize, Retransmit::Fixed);
    let a = timed::download(adaptive, &file, path, seed);
    let f = timed::download(fixed, &file, path, seed);
    for run in [&a, &f] {
        assert_eq!(run.outcome, Some(Outcome::Completed), "seed {seed}");
        assert!(run.received == file, "seed {seed}: the file arrived intact");
    }
    (a, f)
}

#[test]
fn one_percent_loss_lock_step_takes_a_fifth_of_the_fixed_time_or_less() {
    for seed in 1..=3 {
        let (a, f) = both_ways(1, lossy(0.01, MS / 2), seed);
        assert!(
            a.elapsed * 5 <= f.elapsed,
            "seed {seed}: adaptive {:?}, fixed {:?}",
            a.elapsed,
            f.elapsed
        );
    }
}

#[test]
fn five_percent_loss_completes_five_times_faster() {
    for seed in 1..=3 {
        let (a, f) = both_ways(1, lossy(0.05, MS / 2), seed);
        assert!(
            a.elapsed * 5 <= f.elapsed,
            "seed {seed}: {:?} vs {:?}",
            a.elapsed,
            f.elapsed
        );
    }
}

#[test]
fn a_window_of_16_recovers_at_the_speed_of_a_20ms_link() {
    // Most losses inside a window are recovered by the client's ACK of the gap with either
    // timer; the adaptive one also recovers a lost window end or ACK in a few round trips,
    // so the transfer stays near its clean-link time.
    let (cfg, file) = setup(16, ADAPTIVE);
    let clean = timed::download(cfg, &file, Path::clean(10 * MS), 0).elapsed;
    for seed in 1..=3 {
        let (a, f) = both_ways(16, lossy(0.01, 10 * MS), seed);
        assert!(
            a.elapsed <= f.elapsed,
            "seed {seed}: {:?} vs {:?}",
            a.elapsed,
            f.elapsed
        );
        assert!(
            a.elapsed * 2 <= clean * 3,
            "seed {seed}: {:?}, clean {clean:?}",
            a.elapsed
        );
    }
}

/// DATA the client saw beyond one per block, per block of the file.
fn spurious_share(run: &Run, blocks: usize) -> f64 {
    run.data_seen.saturating_sub(blocks) as f64 / blocks as f64
}

#[test]
fn a_clean_link_with_a_slow_or_jittery_client_sees_at_most_one_percent_spurious_data() {
    let blocks = (1 << 20) / 1428 + 1;
    for (name, think) in [
        ("30 ms", (30 * MS, 30 * MS)),
        ("15-45 ms", (15 * MS, 45 * MS)),
        ("0-45 ms", (Duration::ZERO, 45 * MS)),
    ] {
        for seed in 1..=3 {
            let (cfg, file) = setup(1, ADAPTIVE);
            let path = Path {
                think,
                ..Path::clean(MS / 2)
            };
            let run = timed::download(cfg, &file, path, seed);
            assert_eq!(run.outcome, Some(Outcome::Completed));
            let share = spurious_share(&run, blocks);
            assert!(
                share <= 0.01,
                "{name}, seed {seed}: {:.2} % spurious",
                share * 100.0
            );
        }
    }
}

#[test]
fn a_fixed_timer_sends_no_block_twice_on_a_clean_link() {
    let blocks = (1 << 20) / 1428 + 1;
    let (cfg, file) = setup(1, Retransmit::Fixed);
    let path = Path {
        think: (Duration::ZERO, 45 * MS),
        ..Path::clean(MS / 2)
    };
    let run = timed::download(cfg, &file, path, 7);
    assert_eq!(run.data_seen, blocks);
}

/// Drives a download whose client answered block 1 and then fell silent; returns when and
/// how it ended and how many DATA it sent.
fn silent_after_one_block(retransmit: Retransmit) -> (Duration, Option<Outcome>, u64) {
    let start = Instant::now();
    let cfg = TransferConfig {
        retransmit,
        ..config(512, 1, false)
    };
    let mut t = ReadTransfer::new(cfg, start);
    t.handle_block(start, [vec![0; 4], vec![1; 512]].concat());
    while t.poll_transmit().is_some() {}
    t.handle_datagram(start + MS, &ack(1));
    t.handle_block(start + MS, [vec![0; 4], vec![2; 512]].concat());
    let mut now = start + MS;
    let mut sent = 0;
    while let Some(deadline) = t.poll_timeout() {
        while t.poll_transmit().is_some() {
            sent += 1;
        }
        now = deadline;
        t.handle_timeout(now);
    }
    while t.poll_transmit().is_some() {}
    (now - start, t.outcome().cloned(), sent)
}

#[test]
fn a_silent_client_is_waited_for_as_long_as_with_the_fixed_timer() {
    let (fixed_at, fixed_end, fixed_sent) = silent_after_one_block(Retransmit::Fixed);
    let (adaptive_at, adaptive_end, adaptive_sent) = silent_after_one_block(ADAPTIVE);
    assert_eq!(fixed_end, Some(Outcome::TimedOut));
    assert_eq!(adaptive_end, Some(Outcome::TimedOut));
    assert!(
        adaptive_at >= fixed_at && adaptive_at <= fixed_at + Duration::from_secs(2),
        "adaptive gave up after {adaptive_at:?}, fixed after {fixed_at:?}"
    );
    // The quick retransmissions before the backoff reaches the full timeout are few:
    // 10 ms doubled reaches 1 s within seven expiries.
    let quick = ADAPTIVE.quick_expiries(Duration::from_secs(1));
    assert_eq!(quick, 7);
    assert!(
        adaptive_sent <= fixed_sent + u64::from(quick),
        "{adaptive_sent} vs {fixed_sent}"
    );
}

#[test]
fn karns_rule_a_retransmitted_blocks_ack_keeps_the_backed_off_timeout() {
    let start = Instant::now();
    let cfg = TransferConfig {
        retransmit: ADAPTIVE,
        ..config(512, 1, false)
    };
    let mut t = ReadTransfer::new(cfg, start);
    let data = |b: u8| [vec![0; 4], vec![b; 512]].concat();
    // Block 1 answered after 20 ms: RTO 60 ms.
    t.handle_block(start, data(1));
    while t.poll_transmit().is_some() {}
    let mut now = start + 20 * MS;
    t.handle_datagram(now, &ack(1));
    t.handle_block(now, data(2));
    while t.poll_transmit().is_some() {}
    assert_eq!(t.poll_timeout(), Some(now + 60 * MS));
    // Block 2 is lost; resent at 60 ms; the timer backs off to 120 ms.
    now += 60 * MS;
    t.handle_timeout(now);
    while t.poll_transmit().is_some() {}
    assert_eq!(t.poll_timeout(), Some(now + 120 * MS));
    // Its ACK comes 1 ms later: no sample (it may answer the first copy), so block 3 still
    // gets the backed-off 120 ms rather than one from a 1 ms or 61 ms "round trip".
    now += MS;
    t.handle_datagram(now, &ack(2));
    t.handle_block(now, data(3));
    assert_eq!(t.poll_timeout(), Some(now + 120 * MS));
    // Block 3, sent once, is answered in 20 ms: a sample, and the backoff ends.
    while t.poll_transmit().is_some() {}
    now += 20 * MS;
    t.handle_datagram(now, &ack(3));
    t.handle_block(now, data(4));
    let rto = t.poll_timeout().unwrap() - now;
    assert!(rto < 60 * MS, "{rto:?}");
}

#[test]
fn a_negotiated_timeout_or_adaptation_off_keeps_the_fixed_timer() {
    let start = Instant::now();
    let cfg = config(512, 1, false);
    assert_eq!(cfg.retransmit, Retransmit::Fixed);
    let mut t = ReadTransfer::new(cfg, start);
    t.handle_block(start, [vec![0; 4], vec![1; 512]].concat());
    while t.poll_transmit().is_some() {}
    let now = start + MS;
    t.handle_datagram(now, &ack(1));
    t.handle_block(now, [vec![0; 4], vec![2; 512]].concat());
    assert_eq!(t.poll_timeout(), Some(now + Duration::from_secs(1)));
}

#[test]
fn a_sliding_window_halves_on_a_timeout_and_grows_back_by_one_per_window() {
    let start = Instant::now();
    let cfg = TransferConfig {
        sliding: true,
        retransmit: ADAPTIVE,
        ..config(512, 8, false)
    };
    let mut t = ReadTransfer::new(cfg, start);
    let mut next = 1u64;
    let mut now = start;
    let mut fill = |t: &mut ReadTransfer, now: Instant| {
        let mut n = 0;
        while t.poll_block_request().is_some() {
            t.handle_block(now, [vec![0; 4], vec![next as u8; 512]].concat());
            next += 1;
            n += 1;
        }
        while t.poll_transmit().is_some() {}
        n
    };
    assert_eq!(fill(&mut t, now), 1, "one block until the client answers");
    now += MS;
    t.handle_datagram(now, &ack(1));
    assert_eq!(fill(&mut t, now), 8, "the whole window once it has");
    // Nothing answers: the timeout halves the window.
    now = t.poll_timeout().unwrap();
    t.handle_timeout(now);
    while t.poll_transmit().is_some() {}
    // Blocks 2..=9 are in flight, more than the four now allowed: an ACK of one makes
    // no room.
    now += MS;
    t.handle_datagram(now, &ack(2));
    assert_eq!(fill(&mut t, now), 0);
    // Four acknowledged since the halving, a window's worth: five may fly, one is free.
    now += MS;
    t.handle_datagram(now, &ack(5));
    assert_eq!(fill(&mut t, now), 1);
    // Five more acknowledged, the new window's worth: it grows to six, not yet to eight.
    now += MS;
    t.handle_datagram(now, &ack(10));
    assert_eq!(fill(&mut t, now), 6);
}

#[test]
fn an_adaptive_lock_step_upload_leaves_a_duplicate_to_its_timer() {
    let start = Instant::now();
    let data = |b: u16| [vec![0, 3], b.to_be_bytes().to_vec(), vec![7; 512]].concat();
    for (retransmit, answered) in [(ADAPTIVE, false), (Retransmit::Fixed, true)] {
        let cfg = TransferConfig {
            retransmit,
            ..config(512, 1, false)
        };
        let mut t = WriteTransfer::new(cfg, start);
        while t.poll_transmit().is_some() {}
        t.handle_datagram(start + MS, &data(1));
        while t.poll_transmit().is_some() {}
        t.handle_datagram(start + 2 * MS, &data(1));
        assert_eq!(t.poll_transmit().is_some(), answered, "{retransmit:?}");
    }
}

#[test]
fn an_upload_through_loss_arrives_intact_and_no_slower_with_the_adaptive_timer() {
    let file: Vec<u8> = (0..256 * 1024u32).map(|i| i as u8).collect();
    for seed in 1..=3 {
        let run = |retransmit| {
            let cfg = TransferConfig {
                retransmit,
                ..config(1428, 1, false)
            };
            timed::upload(cfg, &file, lossy(0.02, MS / 2), seed)
        };
        let (a, f) = (run(ADAPTIVE), run(Retransmit::Fixed));
        for r in [&a, &f] {
            assert_eq!(r.outcome, Some(Outcome::Completed), "seed {seed}");
            assert!(r.received == file, "seed {seed}: intact");
        }
        // The sender's timer is the client's: a lost DATA waits for it with either timer.
        assert!(
            a.elapsed <= f.elapsed,
            "seed {seed}: {:?} vs {:?}",
            a.elapsed,
            f.elapsed
        );
    }
}
