//! The command line of `cargo xtask bench`: `--quick`, `--runs N`, `--servers LIST` and
//! `--scenarios LIST` turned into the Plan to run and the servers to run it against.

use anyhow::{Context as _, bail};

use super::scenario::Plan;
use super::server::Server;

/// Rounds of the full run (the issue: "median of several runs").
const FULL_RUNS: usize = 3;

/// What the command line asked for.
pub(super) enum Parsed {
    /// `--help`: print the usage and run nothing.
    Help,
    Bench(Request),
}

/// A bench run as asked for on the command line.
pub(super) struct Request {
    pub(super) plan: Plan,
    pub(super) servers: Vec<Server>,
    /// `--servers` was given: the report repeats it, and CI does not demand every peer.
    pub(super) chosen: bool,
}

pub(super) fn parse(args: impl Iterator<Item = String>) -> anyhow::Result<Parsed> {
    let mut quick = false;
    let mut runs = None;
    let mut servers: Option<Vec<Server>> = None;
    let mut only: Option<Vec<String>> = None;
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--servers" => {
                let list = args
                    .next()
                    .context("--servers needs a list, e.g. tftpd,dnsmasq")?;
                let names = Server::names();
                servers = Some(
                    list.split(',')
                        .map(|n| {
                            Server::named(n).with_context(|| {
                                format!(
                                    "--servers: unknown server {n:?} (allowed: {})",
                                    names.join(", ")
                                )
                            })
                        })
                        .collect::<anyhow::Result<_>>()?,
                );
            }
            "--scenarios" => {
                let list = args
                    .next()
                    .context("--scenarios needs a list, e.g. 1a,1b,3")?;
                only = Some(list.split(',').map(str::to_string).collect());
            }
            "--runs" => {
                let n = args.next().context("--runs needs a number")?;
                runs = Some(
                    n.parse::<usize>()
                        .ok()
                        .filter(|&n| n > 0)
                        .with_context(|| {
                            format!("--runs {n:?}: expected a whole number of rounds, at least 1")
                        })?,
                );
            }
            "--help" | "-h" => {
                return Ok(Parsed::Help);
            }
            other => {
                bail!(
                    "cargo xtask bench: unknown argument {other:?} (allowed: --quick, --runs N, \
                     --servers LIST, --scenarios LIST)"
                )
            }
        }
    }
    let mut plan = if quick {
        Plan::quick(runs.unwrap_or(1))
    } else {
        Plan::full(runs.unwrap_or(FULL_RUNS))
    };
    if let Some(ids) = &only {
        let known: Vec<&str> = plan.scenarios.iter().map(|s| s.id).collect();
        if let Some(bad) = ids
            .iter()
            .find(|id| !plan.scenarios.iter().any(|s| s.picked_by(id)))
        {
            bail!(
                "--scenarios: unknown scenario {bad:?} (allowed: {}, or a group such as 1 or 5)",
                known.join(", ")
            );
        }
        plan.scenarios
            .retain(|s| ids.iter().any(|id| s.picked_by(id)));
    }
    let chosen = servers.is_some();
    let servers = servers.unwrap_or_else(|| {
        Server::ALL
            .into_iter()
            .chain(Server::NOISY_ONLY)
            .chain(Server::REFERENCES)
            .collect()
    });
    Ok(Parsed::Bench(Request {
        plan,
        servers,
        chosen,
    }))
}
