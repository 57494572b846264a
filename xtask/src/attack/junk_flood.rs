//! (g) Junk plus request flood: datagrams no TFTP client sends (the packet filter's business)
//! and valid RRQs from spoofed sources that never answer (the protocol's), each at a bounded
//! rate, while the standard legitimate load downloads. Reported: the clients' time against
//! the baseline, the daemon's CPU seconds against the baseline's, and where the junk died.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use anyhow::Context as _;

use super::baseline::Baseline;
use super::daemon::{Daemon, SCRAPE_TIMEOUT, Target, Workdir, metric_sum};
use super::legit::{Load, Served};
use super::sources::{Pacer, Sources, Tally};
use super::table::{Row, times};
use super::wire::{Ledger, amplification, rrq};

/// 127.104.0.0/16.
const BLOCK: u8 = 104;

/// The longest wait for the spoofed transfers to give up (the default horizon is 6 s).
const HORIZON: Duration = Duration::from_secs(10);

/// Junk for the listener, one of each kind the filter names.
const JUNK: [&[u8]; 5] = [
    b"\x00\x03\x00\x01DATA sent to the listener", // bad_opcode
    b"\x00\x04\x00\x01",                          // bad_opcode (an ACK)
    b"\xff\xffjunk",                              // bad_opcode
    b"\x00",                                      // too_short
    b"\x00\x01no terminating NUL",                // malformed_request
];

#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub(crate) junk_rate: f64,
    pub(crate) request_rate: f64,
    pub(crate) length: Duration,
    pub(crate) legit_after: Duration,
    pub(crate) legit: Load,
}

impl Plan {
    pub(crate) const FULL: Self = Self {
        junk_rate: 20_000.0,
        request_rate: 200.0,
        length: Duration::from_secs(3),
        legit_after: Duration::from_millis(300),
        legit: Load::STANDARD,
    };

    /// The tests': a quarter of the junk rate for half as long.
    pub(crate) const SHORT: Self = Self {
        junk_rate: 5_000.0,
        length: Duration::from_millis(1500),
        ..Self::FULL
    };

    fn count(rate: f64, length: Duration) -> u64 {
        (rate * length.as_secs_f64()) as u64
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) plan: Plan,
    pub(crate) junk: Ledger,
    pub(crate) requests: Ledger,
    /// What the spoofed sources were sent.
    pub(crate) received: Tally,
    pub(crate) cpu_secs: f64,
    /// Filter drops counted by a kernel filter (eBPF, classic BPF, XDP) and by the daemon.
    pub(crate) dropped_kernel: f64,
    pub(crate) dropped_userspace: f64,
    pub(crate) legit: Served,
}

pub(crate) fn run(target: &Target, plan: Plan) -> anyhow::Result<Outcome> {
    let dir = Workdir::new()?;
    let d = Daemon::start(target, &dir, "")?;
    let requests_n = Plan::count(plan.request_rate, plan.length);
    let mut sources = Sources::bind(BLOCK, requests_n as usize)?;
    let request = rrq("f.bin", &[]);
    let cpu0 = d.cpu_seconds()?;
    let (junk, legit) = std::thread::scope(|s| {
        let junk = s.spawn(|| junk_flood(d.addr(), plan));
        let legit = s.spawn(|| {
            std::thread::sleep(plan.legit_after);
            target.clients.run(d.addr(), dir.root(), plan.legit)
        });
        let pacer = Pacer::new(plan.request_rate);
        for i in 0..requests_n {
            pacer.wait(i);
            sources.send(i as usize, &request, d.addr())?;
        }
        let panicked = || anyhow::anyhow!("a flood thread panicked");
        anyhow::Ok((
            junk.join().map_err(|_| panicked())??,
            legit.join().map_err(|_| panicked())??,
        ))
    })?;
    let cpu_secs = d.cpu_seconds()? - cpu0;
    // The spoofed transfers keep retransmitting to their sources until they give up: their
    // echo counts in full, up to a bound.
    sources.drain_until(HORIZON, Duration::from_millis(100), |_| {
        d.metric("tftpd_active_transfers", "")
            .is_ok_and(|n| n == 0.0)
    });
    let body = d.scrape(SCRAPE_TIMEOUT)?;
    let drops = |labels| metric_sum(&body, "tftpd_filter_packets_total", labels);
    let dropped_userspace = drops("path=\"userspace\",verdict=\"drop\"");
    Ok(Outcome {
        plan,
        junk,
        requests: sources.sent(),
        received: sources.total(),
        cpu_secs,
        dropped_kernel: drops("verdict=\"drop\"") - dropped_userspace,
        dropped_userspace,
        legit,
    })
}

/// Sends junk to the listener at the plan's rate for its length.
fn junk_flood(to: SocketAddr, plan: Plan) -> anyhow::Result<Ledger> {
    let socket = UdpSocket::bind("127.0.0.1:0").context("binding the junk socket")?;
    let pacer = Pacer::new(plan.junk_rate);
    let mut sent = Ledger::default();
    for i in 0..Plan::count(plan.junk_rate, plan.length) {
        pacer.wait(i);
        let j = JUNK[i as usize % JUNK.len()];
        // Our own full send buffer is not the server's doing: such a datagram is not counted.
        if socket.send_to(j, to).is_ok() {
            sent.add(j.len());
        }
    }
    Ok(sent)
}

impl Outcome {
    pub(crate) fn row(&self, baseline: &Baseline) -> Row {
        let p = &self.plan;
        let mut sent = self.junk;
        sent.merge(self.requests);
        Row {
            attack: "g. junk plus request flood".into(),
            sent: format!(
                "{} junk datagrams ({:.0}/s) and {} spoofed RRQs ({:.0}/s, never answering \
                 127.{BLOCK}.x.y sources) over {:.1} s, during the load",
                self.junk.datagrams,
                p.junk_rate,
                self.requests.datagrams,
                p.request_rate,
                p.length.as_secs_f64()
            ),
            server: format!(
                "daemon CPU {:.2} s (baseline load: {:.2} s); junk dropped by a kernel filter \
                 {:.0}, by the daemon {:.0}; the spoofed sources got {}",
                self.cpu_secs,
                baseline.cpu_secs,
                self.dropped_kernel,
                self.dropped_userspace,
                self.received.kinds()
            ),
            legit: self.legit.describe(Some(&baseline.served)),
            ratio: format!(
                "{} (the spoofed RRQs alone: {})",
                times(amplification(sent, self.received.all)),
                times(amplification(self.requests, self.received.all))
            ),
        }
    }
}
