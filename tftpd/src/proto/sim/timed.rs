//! A link with time in it: each datagram arrives a one-way delay after it was sent, and the
//! client answers after its own think time, so the retransmission timer meets real round
//! trips. Event-driven on a fake clock: the simulation jumps from one arrival or deadline to
//! the next, so a 20 ms link costs no real time. Seeded, like [`Link`](super::Link).

use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use super::{ReadClient, WriteClient};
use crate::proto::read::ReadTransfer;
use crate::proto::transfer::TransferConfig;
use crate::proto::write::WriteTransfer;

/// The link and the client's habits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Path {
    /// Probability that a datagram is lost, each way.
    pub(crate) loss: f64,
    /// Delay each way.
    pub(crate) one_way: Duration,
    /// The client answers after a think time drawn evenly from this range (inclusive).
    pub(crate) think: (Duration, Duration),
}

impl Path {
    pub(crate) const fn clean(one_way: Duration) -> Self {
        Self {
            loss: 0.0,
            one_way,
            think: (Duration::ZERO, Duration::ZERO),
        }
    }
}

/// What a timed run measured.
#[derive(Debug)]
pub(crate) struct Run {
    /// Simulated time from the first datagram to the transfer's end.
    pub(crate) elapsed: Duration,
    /// The bytes the receiving end got, in order.
    pub(crate) received: Vec<u8>,
    /// DATA datagrams the receiving end saw.
    pub(crate) data_seen: usize,
    /// The server finished with this outcome.
    pub(crate) outcome: Option<crate::proto::Outcome>,
}

/// A datagram on its way: ordered by arrival, earliest first.
#[derive(PartialEq, Eq)]
struct InFlight {
    at: Instant,
    seq: u64,
    to_server: bool,
    datagram: Vec<u8>,
}

impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The wire between the two ends.
struct Wire {
    path: Path,
    rng: fastrand::Rng,
    queue: BinaryHeap<InFlight>,
    seq: u64,
}

impl Wire {
    fn new(path: Path, seed: u64) -> Self {
        Self {
            path,
            rng: fastrand::Rng::with_seed(seed),
            queue: BinaryHeap::new(),
            seq: 0,
        }
    }

    /// Puts a datagram on the wire at `now`, after `extra` (the client's think time).
    fn send(&mut self, now: Instant, extra: Duration, to_server: bool, datagram: &[u8]) {
        if self.rng.f64() < self.path.loss {
            return;
        }
        self.seq += 1;
        self.queue.push(InFlight {
            at: now + extra + self.path.one_way,
            seq: self.seq,
            to_server,
            datagram: datagram.to_vec(),
        });
    }

    fn think(&mut self) -> Duration {
        let (lo, hi) = self.path.think;
        let span = hi.saturating_sub(lo).as_micros() as u64;
        lo + Duration::from_micros(self.rng.u64(0..=span))
    }

    fn next_at(&self) -> Option<Instant> {
        self.queue.peek().map(|d| d.at)
    }

    fn pop_due(&mut self, now: Instant) -> Option<InFlight> {
        (self.next_at()? <= now).then(|| self.queue.pop()).flatten()
    }
}

/// The earliest of the times given, if any.
fn earliest(times: impl IntoIterator<Item = Option<Instant>>) -> Option<Instant> {
    times.into_iter().flatten().min()
}

/// A download of `file` over `path`, the client acknowledging every `cfg.windowsize` blocks.
pub(crate) fn download(cfg: TransferConfig, file: &[u8], path: Path, seed: u64) -> Run {
    let start = Instant::now();
    let mut now = start;
    let mut server = ReadTransfer::new(cfg.clone(), now);
    let mut client = ReadClient::new(&cfg, now);
    // A real client's fixed timer: one second, the common default.
    client.timeout = Duration::from_secs(1);
    client.deadline = now + client.timeout;
    let mut wire = Wire::new(path, seed);
    for _ in 0..5_000_000 {
        while let Some(req) = server.poll_block_request() {
            let from = ((req.index - 1) as usize * req.max_len).min(file.len());
            let to = (from + req.max_len).min(file.len());
            let mut d = vec![0u8; 4];
            d.extend_from_slice(&file[from..to]);
            server.handle_block(now, d);
        }
        while let Some(t) = server.poll_transmit() {
            let d = t.datagram.to_vec();
            wire.send(now, Duration::ZERO, false, &d);
        }
        if server.is_finished() {
            break;
        }
        let client_deadline = (!client.done).then_some(client.deadline);
        let Some(next) = earliest([wire.next_at(), server.poll_timeout(), client_deadline]) else {
            break;
        };
        now = now.max(next);
        while let Some(d) = wire.pop_due(now) {
            if d.to_server {
                server.handle_datagram(now, &d.datagram);
            } else if let Some(a) = client.handle(now, &d.datagram) {
                let think = wire.think();
                wire.send(now, think, true, &a);
            }
        }
        server.handle_timeout(now);
        if let Some(a) = client.handle_timeout(now) {
            wire.send(now, Duration::ZERO, true, &a);
        }
    }
    Run {
        elapsed: now - start,
        received: client.received,
        data_seen: client.data_seen,
        outcome: server.outcome().cloned(),
    }
}

/// An upload of `file` over `path`, by a client whose own retransmit timer is one second.
pub(crate) fn upload(cfg: TransferConfig, file: &[u8], path: Path, seed: u64) -> Run {
    let start = Instant::now();
    let mut now = start;
    let mut server = WriteTransfer::new(cfg.clone(), now);
    let mut client = WriteClient::new(&cfg, file.to_vec(), now);
    client.timeout = Duration::from_secs(1);
    let mut wire = Wire::new(path, seed);
    let mut received = Vec::new();
    let mut data_seen = 0;
    for _ in 0..5_000_000 {
        while let Some(t) = server.poll_transmit() {
            let d = t.datagram.to_vec();
            wire.send(now, Duration::ZERO, false, &d);
        }
        if server.is_finished() {
            break;
        }
        let client_waits = (client.started && !client.done).then_some(client.deadline);
        let Some(next) = earliest([wire.next_at(), server.poll_timeout(), client_waits]) else {
            break;
        };
        now = now.max(next);
        while let Some(d) = wire.pop_due(now) {
            if d.to_server {
                data_seen += 1;
                if let Some(payload) = server.handle_datagram(now, &d.datagram) {
                    received.extend_from_slice(payload);
                }
                server.poll_upload_complete();
            } else {
                let think = wire.think();
                for out in client.handle(now, &d.datagram) {
                    wire.send(now, think, true, &out);
                }
            }
        }
        server.handle_timeout(now);
        for out in client.handle_timeout(now) {
            wire.send(now, Duration::ZERO, true, &out);
        }
    }
    Run {
        elapsed: now - start,
        received,
        data_seen,
        outcome: server.outcome().cloned(),
    }
}
