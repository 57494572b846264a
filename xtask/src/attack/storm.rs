//! (h) Overload: a storm of real clients, more than the default `limits.max_transfers`
//! (2048), each downloading 64 KiB at once, as a rack of machines booting together does.
//! Nobody is hostile here; what matters is whether each of them gets its file.

use super::daemon::{Daemon, SCRAPE_TIMEOUT, Target, Workdir, metric_sum};
use super::legit::{Load, Served};
use super::table::Row;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub(crate) load: Load,
    /// The daemon's config ("" = the defaults).
    pub(crate) config: &'static str,
}

impl Plan {
    pub(crate) const FULL: Self = Self {
        load: Load {
            clients: 3000,
            file: "f.bin",
            blksize: Some(1428),
        },
        config: "",
    };

    /// The same shape, five clients per place, small enough for a debug daemon to serve
    /// within the clients' retry horizon (the test's plan).
    pub(crate) const QUICK: Self = Self {
        load: Load {
            clients: 500,
            file: "f.bin",
            blksize: Some(1428),
        },
        config: "[limits]\nmax_transfers = 100\nmax_transfers_per_client = 100\nmax_half_open = 100\n",
    };
}

#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) plan: Plan,
    pub(crate) served: Served,
    /// `tftpd_requests_total{outcome="busy"}`.
    pub(crate) busy: f64,
}

pub(crate) fn run(target: &Target, plan: Plan) -> anyhow::Result<Outcome> {
    let dir = Workdir::new()?;
    let d = Daemon::start(target, &dir, plan.config)?;
    let served = target.clients.run(d.addr(), dir.root(), plan.load)?;
    let busy = metric_sum(
        &d.scrape(SCRAPE_TIMEOUT)?,
        "tftpd_requests_total",
        "outcome=\"busy\"",
    );
    Ok(Outcome { plan, served, busy })
}

impl Outcome {
    pub(crate) fn row(&self) -> Row {
        let l = &self.plan.load;
        Row {
            attack: "h. overload (boot storm)".into(),
            sent: format!(
                "{} real clients × {} (64 KiB) at once, blksize {}, {}",
                l.clients,
                l.file,
                l.blksize.map_or("512".into(), |b| b.to_string()),
                if self.plan.config.is_empty() {
                    "default limits"
                } else {
                    "max_transfers 100"
                }
            ),
            server: format!("refused {:.0} requests \"server busy\"", self.busy),
            legit: self.served.describe(None),
            ratio: "n/a".into(),
        }
    }
}
