//! `cargo xtask bench [--quick] [--runs N] [--servers LIST] [--scenarios LIST]`: tftpd side
//! by side with the established TFTP servers (tftp-hpa's in.tftpd, atftpd, dnsmasq) and with
//! its own portable path (every fast path off) on loopback, in one run, alternating.
//!
//! Every server runs in turn on 127.0.0.1:69 inside its own cgroup v2, started fresh for each
//! sample. The release `tftp-load` drives it and verifies every byte; the cgroup's CPU time
//! (which includes forked children, as in.tftpd forks one per transfer), `perf stat`'s count
//! of syscalls inside the cgroup, and the drops at the listening socket are read around the
//! client run. Each column is the median over the rounds; each figure is also given as a
//! ratio to the best peer's. Nothing is asserted: the machine is shared and noisy.
//!
//! This module is the composition: `run` takes the command line (`args`), sets up the served
//! root and the server configs, measures every scenario against every server (`run_plan`,
//! one `sample` at a time), and writes the report (`render`).

mod args;
mod measure;
mod noisy_table;
mod peers;
mod progress;
mod render;
mod sample;
mod scenario;
mod server;
mod table;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use args::{Parsed, Request};
use render::render;
use sample::{ceiling, measure_once};
use scenario::{File, Plan, Scenario};
use server::Server;
use table::{Sample, ScenarioResult, summarize};

use crate::{build_ebpf, exec, workspace_root};

struct Context {
    tftpd: PathBuf,
    load: PathBuf,
    root: PathBuf,
    perf_out: PathBuf,
    out_dir: PathBuf,
    perf: bool,
}

pub(crate) fn run(args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let Request {
        plan,
        servers,
        chosen,
    } = match args::parse(args)? {
        Parsed::Help => {
            println!("{}", crate::USAGE);
            return Ok(());
        }
        Parsed::Bench(request) => request,
    };
    if !is_root() {
        bail!(
            "cargo xtask bench needs root: dnsmasq serves TFTP only on port 69, and each server's \
             CPU and syscalls are counted in a cgroup with perf. Run: sudo cargo xtask bench"
        );
    }
    let tftpd = workspace_root().join("target/release/tftpd");
    let packages: Vec<_> = servers.iter().filter_map(|s| s.package()).collect();
    peers::ensure(&packages)?;
    peers::ensure_perf()?;
    // The daemon is measured as shipped: with its eBPF socket filters embedded.
    build_ebpf::run()?;
    exec(Command::new(env!("CARGO")).args([
        "build",
        "--release",
        "--package",
        "tftpd",
        "--package",
        "tftpd-benches",
    ]))?;
    let out_dir = workspace_root().join("target/bench");
    std::fs::create_dir_all(&out_dir)?;
    let root = std::env::temp_dir().join(format!("tftpd-bench-{}", std::process::id()));
    let ctx = Context {
        tftpd: tftpd.clone(),
        load: workspace_root().join("target/release/tftp-load"),
        root: root.clone(),
        perf_out: out_dir.join("perf.out"),
        out_dir: out_dir.clone(),
        perf: crate::have("perf"),
    };
    if !ctx.perf {
        eprintln!("xtask: perf is missing: syscalls per MiB will read n/a");
    }
    write_root(&root, &plan)?;
    let variants: Vec<(PathBuf, &str)> = servers
        .iter()
        .filter_map(|s| Some((s.config_path(&root), s.config()?)))
        .collect();
    for (path, toml) in &variants {
        std::fs::write(path, toml).with_context(|| format!("writing {}", path.display()))?;
    }
    let result = run_plan(&plan, &ctx, &servers, chosen);
    let _ = std::fs::remove_dir_all(&root);
    for (path, _) in &variants {
        let _ = std::fs::remove_file(path);
    }
    let results = result?;
    let markdown = render(&plan, &ctx, &results, &servers, chosen);
    println!("\n{markdown}");
    std::fs::write(out_dir.join("side-by-side.md"), &markdown)?;
    std::fs::write(
        out_dir.join("side-by-side.json"),
        serde_json::to_string_pretty(&results)?,
    )?;
    eprintln!(
        "xtask: wrote {0}/side-by-side.md and {0}/side-by-side.json",
        out_dir.display()
    );
    Ok(())
}

/// `cargo xtask test`'s step: `bench --quick` as root; a clear skip otherwise (a failure
/// under CI=true, where everything must run).
pub(crate) fn run_quick_in_test() -> anyhow::Result<()> {
    if !is_root() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            bail!("CI=true but not root: the side-by-side bench harness cannot run");
        }
        eprintln!("xtask: skipping: the side-by-side bench (bench --quick) needs root");
        return Ok(());
    }
    run(["--quick".to_string()].into_iter())
}

/// tftp-hpa's `in.tftpd` for the test suite (`benches/tests/peers.rs`), unpacked from its
/// package like the bench's peers; `None` when not root (apt needs it: those tests then say
/// they skip, and fail under CI=true).
pub(crate) fn in_tftpd_for_tests() -> anyhow::Result<Option<PathBuf>> {
    if !is_root() {
        return Ok(None);
    }
    let Some(hpa) = Server::TftpHpa.package() else {
        return Ok(None);
    };
    peers::ensure(&[hpa])?;
    Ok(Some(peers::binary(hpa)))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// The served root: one file per role, a pattern that tells every offset apart, readable by
/// `nobody` (every server drops to it).
fn write_root(root: &Path, plan: &Plan) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(root)?;
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755))?;
    for file in File::ALL {
        let size = plan.size_of(file);
        let data: Vec<u8> = (0..size).map(|i| (i * 31 + i / 4099) as u8).collect();
        let path = root.join(file.name());
        std::fs::write(&path, data).with_context(|| format!("writing {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
    }
    Ok(())
}

fn run_plan(
    plan: &Plan,
    ctx: &Context,
    servers: &[Server],
    chosen: bool,
) -> anyhow::Result<Vec<ScenarioResult>> {
    let servers: Vec<Server> = servers
        .iter()
        .copied()
        .filter(|s| {
            let present = s.program(&ctx.tftpd).exists();
            if !present {
                eprintln!("xtask: {} is not installed: left out", s.name());
            }
            present
        })
        .collect();
    if !chosen
        && !Server::ALL.iter().all(|s| servers.contains(s))
        && std::env::var("CI").is_ok_and(|v| v == "true")
    {
        bail!(
            "CI=true but not every peer is installed: the side-by-side run must include them all"
        );
    }
    let mut results = Vec::new();
    let every = servers;
    // The raw references answer the concurrent rows; one client has `tftp-load ceiling`.
    // The fixed-timer variant runs where a timer can fire: the noisy-link rows.
    let servers_of = |scenario: &Scenario| -> Vec<Server> {
        every
            .iter()
            .copied()
            .filter(|s| !s.is_reference() || scenario.clients > 1)
            .filter(|s| !Server::NOISY_ONLY.contains(s) || scenario.is_noisy())
            .collect()
    };
    let total = plan
        .scenarios
        .iter()
        .map(|s| servers_of(s).len() * plan.runs)
        .sum();
    let mut progress = progress::Progress::new(total);
    let started = std::time::Instant::now();
    for scenario in &plan.scenarios {
        let servers = servers_of(scenario);
        let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); servers.len()];
        for round in 0..plan.runs {
            // Alternate: each round starts with a different server, so a slow phase of the
            // machine does not always hit the same one.
            for k in 0..servers.len() {
                let i = (k + round) % servers.len();
                let server = servers[i];
                let what = format!(
                    "scenario {} round {}/{}: {}",
                    scenario.id,
                    round + 1,
                    plan.runs,
                    server.name()
                );
                eprintln!("{}", progress.next(&what, started.elapsed()));
                let sample = measure_once(server, scenario, ctx).with_context(|| {
                    format!("scenario {} against {}", scenario.id, server.name())
                })?;
                samples[i].push(sample);
            }
        }
        let ceiling = match scenario.ceiling_shape() {
            Some((blksize, windowsize)) => Some(ceiling(
                ctx,
                blksize,
                windowsize,
                plan.size_of(scenario.file),
                plan.runs,
            )?),
            None => None,
        };
        results.push(ScenarioResult {
            id: scenario.id,
            title: scenario.title.clone(),
            rows: servers
                .iter()
                .zip(&samples)
                .map(|(s, v)| summarize(*s, v))
                .collect(),
            ceiling_mb_per_s: ceiling,
        });
    }
    Ok(results)
}
