//! `tftpd stats`: what an operator asks a running daemon first — how many transfers run, how
//! requests ended, what the packet filter dropped and why — as a table or as JSON.
//!
//! Two sources, both read from outside the daemon, with the daemon's own config so no
//! address or directory has to be typed twice:
//!
//! - the daemon's `/metrics` page at `metrics.listen`: the only source of the active
//!   transfers and the request outcomes, and of the filter counters under the classic-BPF
//!   and userspace fallbacks, which only the daemon counts;
//! - the eBPF counter maps pinned under `ebpf.pin_dir` ([`pinned`]), per socket role and
//!   summed over CPUs, readable even with the metrics endpoint off.
//!
//! Whatever is missing is said, naming the key to set; with neither source there is an error.

pub mod pinned;
mod report;
pub mod scrape;

use crate::cli::Cli;
pub use crate::cli::StatsArgs;
pub use report::{DaemonCounts, Report};

/// Why `tftpd stats` has nothing to show.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// The configuration could not be loaded.
    #[error("loading the configuration")]
    Config(#[source] crate::cli::merge::LoadError),
    /// No metrics endpoint is configured and nothing is pinned.
    #[error(
        "no counters to read: metrics.listen is not set (the daemon serves no /metrics) and \
         {pins}; the active transfers, the requests and, under the classic-BPF and userspace \
         filters, the filter counters are known only to the daemon: set metrics.listen (or \
         pass --metrics-listen) in its configuration, restart it, and run tftpd stats with \
         the same configuration"
    )]
    MetricsOff {
        /// What was found of the pins.
        pins: String,
    },
    /// The configured endpoint does not answer and nothing is pinned.
    #[error(
        "the daemon does not answer at http://{addr}/metrics (metrics.listen): is tftpd \
         running with this configuration? ({cause}); and {pins}"
    )]
    NotRunning {
        /// The address tried.
        addr: std::net::SocketAddr,
        /// Why it failed.
        cause: String,
        /// What was found of the pins.
        pins: String,
    },
}

/// Gathers the report for `cli`'s configuration.
pub fn gather(cli: &Cli, args: &StatsArgs) -> Result<Report, StatsError> {
    let mut cli = cli.clone();
    if let Some(c) = &args.config {
        cli.config = Some(c.clone());
    }
    let config = crate::cli::load(&cli).map_err(StatsError::Config)?;
    let pin_dir = args
        .pin_dir
        .clone()
        .unwrap_or_else(|| config.ebpf.pin_dir.clone());
    let pins = pinned::read(&pin_dir);
    let pins_text = |p: &Result<pinned::Pinned, pinned::PinnedError>| match p {
        Ok(_) => String::new(),
        Err(e) => crate::logging::error_chain(e),
    };
    let mut notes = Vec::new();
    let daemon = match config.metrics.listen {
        None => {
            if pins.is_err() {
                return Err(StatsError::MetricsOff {
                    pins: pins_text(&pins),
                });
            }
            notes.push(
                "metrics.listen is not set: active transfers and requests are known only to \
                 the daemon's /metrics (set metrics.listen)"
                    .to_string(),
            );
            None
        }
        Some(listen) => {
            let addr = scrape::reachable(listen);
            match scrape::scrape(addr) {
                Ok(samples) => Some(DaemonCounts::from_samples(addr, &samples)),
                Err(e) if pins.is_err() => {
                    return Err(StatsError::NotRunning {
                        addr,
                        cause: crate::logging::error_chain(&e),
                        pins: pins_text(&pins),
                    });
                }
                Err(e) => {
                    notes.push(format!(
                        "the daemon's /metrics (metrics.listen) did not answer: {}",
                        crate::logging::error_chain(&e)
                    ));
                    None
                }
            }
        }
    };
    let pinned = match pins {
        Ok(p) => {
            if p.holder_pid.is_none() {
                notes.push(format!(
                    "no running tftpd holds {}: these pins are left from a daemon that did not \
                     stop cleanly, and count nothing now",
                    p.dir.display()
                ));
            }
            Some(p)
        }
        Err(pinned::PinnedError::Absent { .. }) => None,
        Err(e) => {
            notes.push(crate::logging::error_chain(&e));
            None
        }
    };
    Ok(Report {
        daemon,
        pinned,
        notes,
    })
}

/// `tftpd stats`: the report as text or JSON.
pub fn run(cli: &Cli, args: &StatsArgs) -> Result<String, StatsError> {
    let report = gather(cli, args)?;
    Ok(if args.json {
        report.json()
    } else {
        report.table()
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::cli::Command;

    fn args(line: &[&str]) -> (Cli, StatsArgs) {
        let cli = Cli::try_parse_from(line).expect("parses");
        match &cli.command {
            Some(Command::Stats(a)) => {
                let a = a.clone();
                (cli, a)
            }
            other => panic!("not stats: {other:?}"),
        }
    }

    #[test]
    fn the_config_comes_before_or_after_stats_and_the_old_flag_still_parses() {
        let (cli, a) = args(&["tftpd", "--config", "/etc/a.toml", "stats", "--json"]);
        assert_eq!(
            cli.config.as_deref(),
            Some(std::path::Path::new("/etc/a.toml"))
        );
        assert!(a.json && a.config.is_none() && a.pin_dir.is_none());
        let (_, a) = args(&[
            "tftpd",
            "stats",
            "--config",
            "/etc/b.toml",
            "--pin-dir",
            "/sys/fs/bpf/x",
        ]);
        assert_eq!(
            a.config.as_deref(),
            Some(std::path::Path::new("/etc/b.toml"))
        );
        assert_eq!(
            a.pin_dir.as_deref(),
            Some(std::path::Path::new("/sys/fs/bpf/x"))
        );
        let (_, a) = args(&["tftpd", "--metrics-listen", "127.0.0.1:9169", "stats"]);
        assert!(!a.json);
    }

    #[test]
    fn a_config_that_does_not_load_is_the_error() {
        let cli = Cli {
            config: Some("/nonexistent/tftpd.toml".into()),
            ..Cli::default()
        };
        let e = gather(&cli, &StatsArgs::default()).expect_err("no such file");
        assert!(matches!(e, StatsError::Config(_)), "{e}");
    }
}
