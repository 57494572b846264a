//! (b) Reflection factor: one RRQ from a source that never answers, and what the server sends
//! that source until it gives up (the server's whole retry horizon, capped). Once without
//! options (14 bytes, the smallest useful RRQ) and once with `blksize`, which is answered
//! with an OACK instead of DATA 1.

use std::time::{Duration, Instant};

use super::daemon::{Daemon, Target, Workdir};
use super::sources::{Sources, Tally};
use super::table::{Row, times};
use super::wire::{Ledger, amplification, rrq};

/// 127.102.0.0/16.
const BLOCK: u8 = 102;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// The longest wait for the server to give up: past the default horizon of
    /// `timeout_ms × (max_retries + 1)` = 6 s.
    pub(crate) cap: Duration,
    /// Silence after which the server has given up: three default retransmit timeouts.
    pub(crate) quiet: Duration,
}

impl Plan {
    pub(crate) const FULL: Self = Self {
        cap: Duration::from_secs(15),
        quiet: Duration::from_secs(3),
    };
}

/// One request and its echo.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Echo {
    pub(crate) sent: Ledger,
    pub(crate) received: Tally,
}

impl Echo {
    pub(crate) fn ratio(&self) -> Option<f64> {
        amplification(self.sent, self.received.all)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) plain: Echo,
    pub(crate) with_option: Echo,
    /// From the requests to the server giving up on both (or the cap).
    pub(crate) secs: f64,
    pub(crate) gave_up: bool,
}

pub(crate) fn run(target: &Target, plan: Plan) -> anyhow::Result<Outcome> {
    let dir = Workdir::new()?;
    let d = Daemon::start(target, &dir, "")?;
    let mut sources = Sources::bind(BLOCK, 2)?;
    let requests = [rrq("f.bin", &[]), rrq("f.bin", &[("blksize", "1428")])];
    let t0 = Instant::now();
    for (i, r) in requests.iter().enumerate() {
        sources.send(i, r, d.addr())?;
    }
    // Given up: both sources heard something, then nothing for longer than the server waits
    // between retransmissions. Neither an ERROR at the end (today's way) nor the
    // active-transfer gauge (which need not count a half-open transfer) is relied on.
    let gave_up = sources.drain_until(plan.cap, Duration::from_millis(50), |s| {
        (0..2).all(|i| s.tally(i).all.datagrams > 0)
            && s.quiet_for().is_some_and(|q| q >= plan.quiet)
    });
    // Until the last datagram, not until the silence was judged long enough.
    let secs = t0.elapsed().as_secs_f64() - sources.quiet_for().map_or(0.0, |q| q.as_secs_f64());
    let echo = |i: usize| {
        let mut sent = Ledger::default();
        sent.add(requests[i].len());
        Echo {
            sent,
            received: sources.tally(i),
        }
    };
    Ok(Outcome {
        plain: echo(0),
        with_option: echo(1),
        secs,
        gave_up,
    })
}

impl Outcome {
    pub(crate) fn row(&self) -> Row {
        let (p, o) = (&self.plain, &self.with_option);
        let until = if self.gave_up {
            format!("the last {:.1} s after the request", self.secs)
        } else {
            format!(
                "still sending {:.1} s after the request, when the wait ended",
                self.secs
            )
        };
        Row {
            attack: "b. reflection factor".into(),
            sent: format!(
                "1 RRQ of {} B without options, 1 of {} B with blksize, from never-answering \
                 sources",
                p.sent.bytes, o.sent.bytes
            ),
            server: format!(
                "no options: {} ({} B at IP level); blksize: {}; {until}",
                p.received.kinds(),
                p.received.all.ip_bytes(),
                o.received.kinds()
            ),
            legit: "n/a".into(),
            ratio: format!("{} (with blksize: {})", times(p.ratio()), times(o.ratio())),
        }
    }
}
