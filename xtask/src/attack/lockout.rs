//! (a) Spoofed-request lock-out: a burst of RRQs asking for `timeout=255`, each from its own
//! source that never answers, fills the transfer slots; a steady spoofed stream keeps them
//! full while legitimate clients try to download. A slot held for a peer that never answered
//! is what issue #18 calls half-open.

use std::time::{Duration, Instant};

use super::baseline::Baseline;
use super::daemon::{Daemon, SCRAPE_TIMEOUT, Target, Workdir, metric_sum};
use super::legit::{Load, Served};
use super::sources::{Pacer, Sources, Tally};
use super::table::{Row, times};
use super::wire::{Ledger, amplification, rrq};

/// 127.101.0.0/16.
const BLOCK: u8 = 101;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// RRQs sent back to back first (more than the 2048 default slots).
    pub(crate) burst: usize,
    /// The `timeout` option each asks for, seconds.
    pub(crate) timeout: u8,
    /// The steady stream that follows: per second, and for how long.
    pub(crate) stream_rate: f64,
    pub(crate) stream: Duration,
    /// When the legitimate clients start, into the stream.
    pub(crate) legit_after: Duration,
    pub(crate) legit: Load,
}

impl Plan {
    pub(crate) const FULL: Self = Self {
        burst: 2100,
        timeout: 255,
        stream_rate: 1000.0,
        stream: Duration::from_secs(3),
        legit_after: Duration::from_millis(300),
        legit: Load::STANDARD,
    };

    /// The tests': the same burst and clients, a shorter stream.
    pub(crate) const SHORT: Self = Self {
        stream: Duration::from_millis(1500),
        ..Self::FULL
    };

    fn stream_count(&self) -> usize {
        (self.stream_rate * self.stream.as_secs_f64()) as usize
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) plan: Plan,
    pub(crate) burst_secs: f64,
    /// Everything the spoofed sources sent, and what they got back.
    pub(crate) sent: Ledger,
    pub(crate) received: Tally,
    /// `tftpd_active_transfers` just before the stream began.
    pub(crate) held_after_burst: f64,
    /// `tftpd_requests_total{outcome="busy"}` at the end (spoofed and legitimate).
    pub(crate) busy: f64,
    pub(crate) legit: Served,
}

pub(crate) fn run(target: &Target, plan: Plan) -> anyhow::Result<Outcome> {
    let dir = Workdir::new()?;
    let d = Daemon::start(target, &dir, "")?;
    let mut sources = Sources::bind(BLOCK, plan.burst + plan.stream_count())?;
    let timeout = plan.timeout.to_string();
    let request = rrq("f.bin", &[("timeout", &timeout)]);
    let t0 = Instant::now();
    for i in 0..plan.burst {
        sources.send(i, &request, d.addr())?;
    }
    let burst_secs = t0.elapsed().as_secs_f64();
    // Let the listener take the burst in before counting what it holds.
    std::thread::sleep(Duration::from_millis(300));
    let held_after_burst = d.metric("tftpd_active_transfers", "")?;
    let legit = std::thread::scope(|s| {
        let legit = s.spawn(|| {
            std::thread::sleep(plan.legit_after);
            target.clients.run(d.addr(), dir.root(), plan.legit)
        });
        let pacer = Pacer::new(plan.stream_rate);
        for j in 0..plan.stream_count() {
            pacer.wait(j as u64);
            sources.send(plan.burst + j, &request, d.addr())?;
        }
        legit
            .join()
            .unwrap_or_else(|_| anyhow::bail!("the legitimate clients panicked"))
    })?;
    std::thread::sleep(Duration::from_millis(200));
    sources.drain();
    let busy = metric_sum(
        &d.scrape(SCRAPE_TIMEOUT)?,
        "tftpd_requests_total",
        "outcome=\"busy\"",
    );
    Ok(Outcome {
        plan,
        burst_secs,
        sent: sources.sent(),
        received: sources.total(),
        held_after_burst,
        busy,
        legit,
    })
}

impl Outcome {
    pub(crate) fn row(&self, baseline: &Baseline) -> Row {
        let p = &self.plan;
        Row {
            attack: "a. spoofed-request lock-out".into(),
            sent: format!(
                "{} RRQs with timeout={} in {:.2} s, each from its own never-answering 127.{BLOCK}.x.y \
                 source; then {} more at {:.0}/s for {:.1} s",
                p.burst,
                p.timeout,
                self.burst_secs,
                p.stream_count(),
                p.stream_rate,
                p.stream.as_secs_f64()
            ),
            server: format!(
                "held {:.0} transfers after the burst; {:.0} requests refused \"server busy\"; \
                 the sources got {}",
                self.held_after_burst,
                self.busy,
                self.received.kinds()
            ),
            legit: self.legit.describe(Some(&baseline.served)),
            ratio: times(amplification(self.sent, self.received.all)),
        }
    }
}
