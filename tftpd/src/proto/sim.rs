//! Test support: a lossy, duplicating, reordering link and compliant simulated clients, so
//! the state machines can be driven through bad networks deterministically (seeded) with a
//! fake clock. Compiled for tests only.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::Rollover;
use super::packet::{Packet, ack, data_header};
use super::read::ReadTransfer;
use super::transfer::{HalfOpen, TransferConfig};
use super::write::WriteTransfer;

pub(crate) mod timed;

/// Impairments applied to every datagram crossing the link, in either direction.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Impairment {
    pub(crate) loss: f64,
    pub(crate) dup: f64,
    pub(crate) reorder: f64,
}

/// A seeded lossy link: datagrams put in come out (or not) on the next `take`.
pub(crate) struct Link {
    imp: Impairment,
    rng: fastrand::Rng,
    queue: VecDeque<Vec<u8>>,
}

impl Link {
    pub(crate) fn new(imp: Impairment, seed: u64) -> Self {
        Self {
            imp,
            rng: fastrand::Rng::with_seed(seed),
            queue: VecDeque::new(),
        }
    }

    pub(crate) fn send(&mut self, d: &[u8]) {
        if self.rng.f64() < self.imp.loss {
            return;
        }
        let copies = if self.rng.f64() < self.imp.dup { 2 } else { 1 };
        for _ in 0..copies {
            if self.rng.f64() < self.imp.reorder && !self.queue.is_empty() {
                let at = self.rng.usize(..self.queue.len());
                self.queue.insert(at, d.to_vec());
            } else {
                self.queue.push_back(d.to_vec());
            }
        }
    }

    pub(crate) fn take(&mut self) -> Option<Vec<u8>> {
        self.queue.pop_front()
    }
}

/// A transfer config for tests.
pub(crate) fn config(blksize: u16, windowsize: u16, oack: bool) -> TransferConfig {
    TransferConfig {
        blksize,
        windowsize,
        timeout: Duration::from_secs(1),
        retransmit: super::rtt::Retransmit::Fixed,
        max_retries: 5,
        half_open: HalfOpen {
            timeout: Duration::from_secs(1),
            retries: 5,
        },
        max_duration: None,
        rollover: Rollover::WrapToZero,
        oack: oack.then(|| b"\x00\x06blksize\x00512\x00".to_vec()),
        sliding: false,
    }
}

/// A compliant downloading client (RFC 1350 + RFC 7440 receiver rules).
pub(crate) struct ReadClient {
    pub(crate) blksize: usize,
    pub(crate) windowsize: u16,
    pub(crate) rollover: Rollover,
    pub(crate) expected: u64,
    pub(crate) in_window: u16,
    pub(crate) received: Vec<u8>,
    pub(crate) done: bool,
    pub(crate) deadline: Instant,
    pub(crate) timeout: Duration,
    /// DATA datagrams seen per wire block, to detect duplicate sends.
    pub(crate) data_seen: usize,
}

impl ReadClient {
    pub(crate) fn new(cfg: &TransferConfig, now: Instant) -> Self {
        Self {
            blksize: usize::from(cfg.blksize),
            windowsize: cfg.windowsize,
            rollover: cfg.rollover,
            expected: 1,
            in_window: 0,
            received: Vec::new(),
            done: false,
            deadline: now + cfg.timeout * 3 / 2,
            timeout: cfg.timeout * 3 / 2,
            data_seen: 0,
        }
    }

    fn last_ack(&self) -> [u8; 4] {
        ack(self.rollover.wire_block(self.expected - 1))
    }

    /// Handles one datagram from the server; returns what the client sends back.
    pub(crate) fn handle(&mut self, now: Instant, d: &[u8]) -> Option<[u8; 4]> {
        match Packet::decode(d).expect("the server sent a malformed datagram") {
            Packet::Oack { .. } if self.expected == 1 => Some(ack(0)),
            Packet::Data { block, data } => {
                self.data_seen += 1;
                assert!(data.len() <= self.blksize, "DATA longer than blksize");
                if self.done || block != self.rollover.wire_block(self.expected) {
                    // Out of order: ACK the last in-order block once per window.
                    if self.done || self.in_window == u16::MAX {
                        return None;
                    }
                    self.in_window = u16::MAX;
                    return Some(self.last_ack());
                }
                self.received.extend_from_slice(data);
                self.expected += 1;
                self.in_window = if self.in_window == u16::MAX {
                    1
                } else {
                    self.in_window + 1
                };
                self.deadline = now + self.timeout;
                if data.len() < self.blksize {
                    self.done = true;
                    return Some(self.last_ack());
                }
                if self.in_window >= self.windowsize {
                    self.in_window = 0;
                    return Some(self.last_ack());
                }
                None
            }
            Packet::Error { .. } => {
                self.done = true;
                None
            }
            other => panic!("unexpected packet from the server: {other:?}"),
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Option<[u8; 4]> {
        if self.done || now < self.deadline {
            return None;
        }
        self.deadline = now + self.timeout;
        self.in_window = 0;
        Some(if self.expected == 1 {
            ack(0)
        } else {
            self.last_ack()
        })
    }
}

/// Runs a download of `file` through `link`s until both ends stop or `max_steps` pass.
/// Returns the transfer and the client.
pub(crate) fn run_download(
    cfg: TransferConfig,
    file: &[u8],
    imp: Impairment,
    seed: u64,
) -> (ReadTransfer, ReadClient) {
    let window = cfg.windowsize;
    run_download_as(cfg, window, file, imp, seed)
}

/// [`run_download`] with a client that acknowledges every `client_windowsize` blocks, which
/// may differ from the server's window (a server default the client was never told of).
pub(crate) fn run_download_as(
    cfg: TransferConfig,
    client_windowsize: u16,
    file: &[u8],
    imp: Impairment,
    seed: u64,
) -> (ReadTransfer, ReadClient) {
    let mut now = Instant::now();
    let mut server = ReadTransfer::new(cfg.clone(), now);
    let mut client = ReadClient::new(&cfg, now);
    client.windowsize = client_windowsize;
    let mut to_client = Link::new(imp, seed);
    let mut to_server = Link::new(imp, seed ^ 0x5eed);
    for _ in 0..2_000_000 {
        while let Some(req) = server.poll_block_request() {
            let start = ((req.index - 1) as usize * req.max_len).min(file.len());
            let end = (start + req.max_len).min(file.len());
            let mut d = vec![0u8; 4];
            d.extend_from_slice(&file[start..end]);
            server.handle_block(now, d);
        }
        while let Some(t) = server.poll_transmit() {
            to_client.send(t.datagram);
        }
        let mut moved = false;
        while let Some(d) = to_client.take() {
            moved = true;
            if let Some(a) = client.handle(now, &d) {
                to_server.send(&a);
            }
        }
        while let Some(d) = to_server.take() {
            moved = true;
            server.handle_datagram(now, &d);
        }
        if server.is_finished() && (client.done || server.outcome().is_some()) {
            break;
        }
        if !moved {
            let next = [
                server.poll_timeout(),
                (!client.done).then_some(client.deadline),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(t) => now = now.max(t),
                None => break,
            }
            server.handle_timeout(now);
            if let Some(a) = client.handle_timeout(now) {
                to_server.send(&a);
            }
        }
    }
    (server, client)
}

/// A compliant uploading client (RFC 1350 + RFC 7440 sender rules).
pub(crate) struct WriteClient {
    pub(crate) file: Vec<u8>,
    pub(crate) blksize: usize,
    pub(crate) windowsize: u64,
    pub(crate) rollover: Rollover,
    /// First unacknowledged block.
    pub(crate) base: u64,
    pub(crate) started: bool,
    pub(crate) done: bool,
    pub(crate) deadline: Instant,
    pub(crate) timeout: Duration,
    pub(crate) blocks: u64,
}

impl WriteClient {
    pub(crate) fn new(cfg: &TransferConfig, file: Vec<u8>, now: Instant) -> Self {
        let blksize = usize::from(cfg.blksize);
        Self {
            blocks: (file.len() / blksize) as u64 + 1,
            file,
            blksize,
            windowsize: u64::from(cfg.windowsize),
            rollover: cfg.rollover,
            base: 1,
            started: false,
            done: false,
            deadline: now + cfg.timeout * 3 / 2,
            timeout: cfg.timeout * 3 / 2,
        }
    }

    fn window(&self) -> Vec<Vec<u8>> {
        let end = (self.base + self.windowsize).min(self.blocks + 1);
        (self.base..end)
            .map(|i| {
                let start = (i - 1) as usize * self.blksize;
                let stop = (start + self.blksize).min(self.file.len());
                let mut d = data_header(self.rollover.wire_block(i)).to_vec();
                d.extend_from_slice(&self.file[start.min(stop)..stop]);
                d
            })
            .collect()
    }

    pub(crate) fn handle(&mut self, now: Instant, d: &[u8]) -> Vec<Vec<u8>> {
        match Packet::decode(d).expect("the server sent a malformed datagram") {
            Packet::Oack { .. } | Packet::Ack { block: 0 } if !self.started => {
                self.started = true;
                self.deadline = now + self.timeout;
                self.window()
            }
            Packet::Ack { block } if self.started && !self.done => {
                let end = (self.base + self.windowsize).min(self.blocks + 1);
                let Some(acked) = (self.base..end).find(|&i| self.rollover.wire_block(i) == block)
                else {
                    return Vec::new();
                };
                self.base = acked + 1;
                self.deadline = now + self.timeout;
                if acked == self.blocks {
                    self.done = true;
                    return Vec::new();
                }
                self.window()
            }
            Packet::Error { .. } => {
                self.done = true;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Vec<Vec<u8>> {
        if self.done || !self.started || now < self.deadline {
            return Vec::new();
        }
        self.deadline = now + self.timeout;
        self.window()
    }
}

/// Runs an upload of `file`; returns the transfer, the bytes the server wrote, and the client.
pub(crate) fn run_upload(
    cfg: TransferConfig,
    file: &[u8],
    imp: Impairment,
    seed: u64,
) -> (WriteTransfer, Vec<u8>, WriteClient) {
    let mut now = Instant::now();
    let mut server = WriteTransfer::new(cfg.clone(), now);
    let mut client = WriteClient::new(&cfg, file.to_vec(), now);
    let mut to_client = Link::new(imp, seed);
    let mut to_server = Link::new(imp, seed ^ 0x5eed);
    let mut written = Vec::new();
    for _ in 0..2_000_000 {
        while let Some(t) = server.poll_transmit() {
            to_client.send(t.datagram);
        }
        let mut moved = false;
        while let Some(d) = to_client.take() {
            moved = true;
            for out in client.handle(now, &d) {
                to_server.send(&out);
            }
        }
        while let Some(d) = to_server.take() {
            moved = true;
            if let Some(payload) = server.handle_datagram(now, &d) {
                written.extend_from_slice(payload);
            }
            server.poll_upload_complete();
        }
        if server.is_finished() {
            break;
        }
        if !moved {
            let client_waits = client.started && !client.done;
            let next = [
                server.poll_timeout(),
                client_waits.then_some(client.deadline),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(t) => now = now.max(t),
                None => break,
            }
            server.handle_timeout(now);
            for out in client.handle_timeout(now) {
                to_server.send(&out);
            }
        }
    }
    (server, written, client)
}
