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
        Command::RawServer(args) => {
            raw_server(&args)?;
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

/// Serves until killed (SIGTERM or SIGINT end it; it holds nothing that needs saving).
fn raw_server(args: &tftpd_benches::cli::RawServerArgs) -> anyhow::Result<()> {
    use tftpd_benches::raw_server::{Engine, Files, serve};
    let engine = Engine::named(&args.engine)
        .with_context(|| format!("--engine {}: not on this platform", args.engine))?;
    let files = Files::load(&args.root)
        .with_context(|| format!("reading the files of --root {}", args.root.display()))?;
    let socket = std::net::UdpSocket::bind(args.listen)
        .with_context(|| format!("binding --listen {}", args.listen))?;
    raise_fd_limit();
    eprintln!(
        "tftp-load raw-server: serving {} on {} with {}",
        args.root.display(),
        args.listen,
        args.engine
    );
    let never = std::sync::atomic::AtomicBool::new(false);
    serve(socket, &files, engine, &never).context("serving")?;
    Ok(())
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
