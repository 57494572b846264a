//! Spoofed sources as an attacker on the same host can make them: UDP sockets bound to
//! addresses of 127.0.0.0/8 (all of it is local on `lo`), one address per source. A source
//! sends what the attacker forges in its name and never answers; it only counts what the
//! server sends it, which is what the owner of a forged address would receive.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::wire::{Ledger, OP_OACK, opcode};

/// Addresses per /16 block: 127.B.x.y with x in 0..=254 and y in 1..=254.
const PER_BLOCK: usize = 255 * 254;

/// What one source received, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) all: Ledger,
    /// Datagrams by opcode 1..=6 (index 0 counts anything else).
    pub(crate) by_opcode: [u64; 7],
}

impl Tally {
    fn add(&mut self, d: &[u8]) {
        self.all.add(d.len());
        let op = opcode(d).map_or(0, usize::from);
        self.by_opcode[if op <= usize::from(OP_OACK) { op } else { 0 }] += 1;
    }

    pub(crate) fn merge(&mut self, other: &Self) {
        self.all.merge(other.all);
        for (a, b) in self.by_opcode.iter_mut().zip(other.by_opcode) {
            *a += b;
        }
    }

    /// "DATA 6, ERROR 1": the kinds received, in opcode order.
    pub(crate) fn kinds(&self) -> String {
        const NAMES: [&str; 7] = ["other", "RRQ", "WRQ", "DATA", "ACK", "ERROR", "OACK"];
        let parts: Vec<String> = (1..7)
            .chain([0])
            .filter(|&i| self.by_opcode[i] > 0)
            .map(|i| format!("{} ×{}", NAMES[i], self.by_opcode[i]))
            .collect();
        if parts.is_empty() {
            "nothing".into()
        } else {
            parts.join(", ")
        }
    }
}

/// A set of spoofed sources in 127.`block`.0.0/16.
pub(crate) struct Sources {
    sockets: Vec<UdpSocket>,
    tallies: Vec<Tally>,
    sent: Ledger,
    /// When the last datagram was read.
    last_arrival: Option<Instant>,
}

impl Sources {
    /// Binds `count` sources on 127.`block`.x.y, each on an ephemeral port. Attacks use
    /// different blocks so a straggler of one never counts in another.
    pub(crate) fn bind(block: u8, count: usize) -> anyhow::Result<Self> {
        anyhow::ensure!(count <= PER_BLOCK, "{count} sources do not fit one /16");
        let sockets = (0..count)
            .map(|i| {
                let ip = Ipv4Addr::new(127, block, (i / 254) as u8, (i % 254 + 1) as u8);
                let s = UdpSocket::bind(SocketAddrV4::new(ip, 0))
                    .with_context(|| format!("binding a spoofed source on {ip}"))?;
                s.set_nonblocking(true)?;
                Ok(s)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            tallies: vec![Tally::default(); count],
            sockets,
            sent: Ledger::default(),
            last_arrival: None,
        })
    }

    /// Asks for a receive buffer of `bytes` on every source (capped by `net.core.rmem_max`),
    /// so a burst is counted, not dropped by our own kernel.
    pub(crate) fn set_recv_buffer(&self, bytes: usize) {
        for s in &self.sockets {
            let _ = nix::sys::socket::setsockopt(s, nix::sys::socket::sockopt::RcvBuf, &bytes);
        }
    }

    /// Sends `datagram` to `to` from source `i` (a full send buffer is retried: the attack
    /// is bounded by its count, not by what the kernel drops on our side).
    pub(crate) fn send(&mut self, i: usize, datagram: &[u8], to: SocketAddr) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            match self.sockets[i].send_to(datagram, to) {
                Ok(_) => {
                    self.sent.add(datagram.len());
                    return Ok(());
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::yield_now();
                }
                Err(e) => return Err(e).context("sending from a spoofed source"),
            }
        }
    }

    /// Reads whatever is waiting on every source into its tally.
    pub(crate) fn drain(&mut self) {
        let mut buf = vec![0u8; 65536];
        for (s, t) in self.sockets.iter().zip(&mut self.tallies) {
            // WouldBlock ends a source's turn; a stray ICMP error (ECONNREFUSED) is not data.
            while let Ok(n) = s.recv(&mut buf) {
                t.add(&buf[..n]);
                self.last_arrival = Some(Instant::now());
            }
        }
    }

    /// Drains every `poll` until `done` says so or `timeout` passes; returns whether `done`
    /// was met.
    pub(crate) fn drain_until(
        &mut self,
        timeout: Duration,
        poll: Duration,
        mut done: impl FnMut(&Self) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            self.drain();
            if done(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(poll);
        }
    }

    /// How long ago the last datagram arrived (`None`: none yet).
    pub(crate) fn quiet_for(&self) -> Option<Duration> {
        self.last_arrival.map(|t| t.elapsed())
    }

    /// What source `i` received.
    pub(crate) fn tally(&self, i: usize) -> Tally {
        self.tallies[i]
    }

    /// What all sources received together.
    pub(crate) fn total(&self) -> Tally {
        let mut t = Tally::default();
        self.tallies.iter().for_each(|x| t.merge(x));
        t
    }

    /// What the sources sent.
    pub(crate) fn sent(&self) -> Ledger {
        self.sent
    }
}

/// Sends at about `per_second` for `count` datagrams: the i-th goes out at i / rate.
pub(crate) struct Pacer {
    start: Instant,
    per_second: f64,
}

impl Pacer {
    pub(crate) fn new(per_second: f64) -> Self {
        Self {
            start: Instant::now(),
            per_second,
        }
    }

    /// Waits until datagram `i` is due.
    pub(crate) fn wait(&self, i: u64) {
        let due = self.start + Duration::from_secs_f64(i as f64 / self.per_second);
        if let Some(d) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
}
