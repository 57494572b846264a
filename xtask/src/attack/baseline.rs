//! The no-attack baseline, taken in the same run as the attacks: the standard legitimate load
//! against a fresh daemon, so every row can say how much slower its clients were.

use super::daemon::{Daemon, Target, Workdir};
use super::legit::{Load, Served};
use super::table::Row;

/// What the standard load did with nobody attacking.
#[derive(Debug, Clone, Default)]
pub(crate) struct Baseline {
    pub(crate) served: Served,
    /// Daemon CPU seconds the load cost.
    pub(crate) cpu_secs: f64,
    /// Who the daemon ran as, and its packet filter (for the table's heading).
    pub(crate) identity: String,
    pub(crate) filter: String,
}

pub(crate) fn run(target: &Target) -> anyhow::Result<Baseline> {
    let dir = Workdir::new()?;
    let d = Daemon::start(target, &dir, "")?;
    let cpu0 = d.cpu_seconds()?;
    let served = target.clients.run(d.addr(), dir.root(), Load::STANDARD)?;
    Ok(Baseline {
        served,
        cpu_secs: d.cpu_seconds()? - cpu0,
        identity: d.identity()?,
        filter: d.filter_path(),
    })
}

impl Baseline {
    pub(crate) fn row(&self) -> Row {
        let l = Load::STANDARD;
        Row {
            attack: "baseline (no attack)".into(),
            sent: "nothing".into(),
            server: format!(
                "served {} × {}; daemon CPU {:.2} s",
                l.clients, l.file, self.cpu_secs
            ),
            legit: self.served.describe(None),
            ratio: "n/a".into(),
        }
    }
}
