//! (f) Metrics connection flood: many idle TCP connections to the metrics endpoint (nothing is
//! ever sent on them). What matters is what they cost the daemon: the file descriptors it
//! holds for them are the ones its TFTP sockets need. Then, with the connections still open,
//! a scrape and the standard TFTP download load.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::baseline::Baseline;
use super::daemon::{Daemon, POLL, SCRAPE_TIMEOUT, Target, Workdir};
use super::legit::{Load, Served};
use super::table::Row;

/// The longest the connections may take to open, all together.
const CONNECT_BOUND: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub(crate) connections: usize,
    /// How long the daemon's descriptors are watched once every connection is open.
    pub(crate) hold: Duration,
    pub(crate) legit: Load,
}

impl Plan {
    pub(crate) const FULL: Self = Self {
        connections: 1000,
        hold: Duration::from_secs(1),
        legit: Load::STANDARD,
    };
}

#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) plan: Plan,
    /// Connections the kernel completed (the rest were refused or timed out).
    pub(crate) opened: usize,
    pub(crate) fds_before: usize,
    /// The most descriptors the daemon held while the connections were open.
    pub(crate) fds_peak: usize,
    /// A scrape during the flood: how long it took, or why it failed.
    pub(crate) scrape: Result<Duration, String>,
    pub(crate) legit: Served,
}

impl Outcome {
    /// Descriptors the flood made the daemon hold.
    pub(crate) fn fds_added(&self) -> usize {
        self.fds_peak.saturating_sub(self.fds_before)
    }
}

pub(crate) fn run(target: &Target, plan: Plan) -> anyhow::Result<Outcome> {
    let dir = Workdir::new()?;
    let d = Daemon::start(target, &dir, "")?;
    let fds_before = d.open_fds()?;
    let mut held = Vec::with_capacity(plan.connections);
    let give_up = Instant::now() + CONNECT_BOUND;
    for _ in 0..plan.connections {
        // A full backlog makes connect wait: bounded per connection and in all.
        if let Ok(c) = TcpStream::connect_timeout(&d.metrics_addr(), Duration::from_secs(1)) {
            held.push(c);
        }
        if Instant::now() > give_up {
            break;
        }
    }
    let mut fds_peak = d.open_fds()?;
    let until = Instant::now() + plan.hold;
    while Instant::now() < until {
        fds_peak = fds_peak.max(d.open_fds()?);
        std::thread::sleep(POLL);
    }
    let t0 = Instant::now();
    let scrape = d
        .scrape(SCRAPE_TIMEOUT)
        .map(|_| t0.elapsed())
        .map_err(|e| format!("{e:#}"));
    let legit = target.clients.run(d.addr(), dir.root(), plan.legit)?;
    let opened = held.len();
    drop(held);
    Ok(Outcome {
        plan,
        opened,
        fds_before,
        fds_peak,
        scrape,
        legit,
    })
}

impl Outcome {
    pub(crate) fn row(&self, baseline: &Baseline) -> Row {
        let scrape = match &self.scrape {
            Ok(t) => format!("answered in {:.0} ms", t.as_secs_f64() * 1e3),
            Err(e) => format!("failed ({e})"),
        };
        Row {
            attack: "f. metrics connection flood".into(),
            sent: format!(
                "{} idle TCP connections to /metrics ({} completed), nothing sent on them",
                self.plan.connections, self.opened
            ),
            server: format!(
                "held {} more file descriptors ({} before, {} at the peak); a scrape during the \
                 flood {scrape}",
                self.fds_added(),
                self.fds_before,
                self.fds_peak
            ),
            legit: self.legit.describe(Some(&baseline.served)),
            ratio: "n/a".into(),
        }
    }
}
