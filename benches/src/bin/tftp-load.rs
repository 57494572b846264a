//! `tftp-load`: parse the command line, run, print the report (text or JSON). Exits 1 when
//! any transfer or check failed, so a script can tell a clean run from a faulty one.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;

use tftpd_benches::cli::{Cli, Command};
use tftpd_benches::{ceiling, run};

fn main() -> ExitCode {
    match start(Cli::parse()) {
        Ok(clean) if clean => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("tftp-load: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs the command; `Ok(false)` when the run completed with failures.
fn start(cli: Cli) -> anyhow::Result<bool> {
    let (spec, json) = match cli.command {
        Command::Ceiling(args) => {
            let report = ceiling(&args.spec()).context("measuring the raw ceiling")?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
            return Ok(true);
        }
        Command::Get(args) => (args.spec()?, args.common.json),
        Command::Put(args) => (args.spec()?, args.common.json),
    };
    raise_fd_limit();
    let report = run(&spec).context("running the load")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(report.failed() == 0)
}

/// Raises the soft open-file limit to the hard one: 2000 clients hold 2000 sockets, over the
/// usual soft limit of 1024.
fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        eprintln!("tftp-load: could not raise the open-file limit from {soft}: {e}");
    }
}
