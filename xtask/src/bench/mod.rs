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

mod measure;
mod noisy_table;
mod peers;
mod progress;
mod scenario;
mod server;
mod table;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use measure::{SyscallCounter, listener_drops, reaped_switches};
use scenario::{File, Plan, Scenario};
use server::{Running, Server};
use table::{Sample, ScenarioResult, summarize};
use tftpd_benches::ceiling::CeilingReport;
use tftpd_benches::report::Report;

use crate::{build_ebpf, exec, workspace_root};

/// Rounds of the full run (the issue: "median of several runs").
const FULL_RUNS: usize = 3;

struct Context {
    tftpd: PathBuf,
    load: PathBuf,
    root: PathBuf,
    perf_out: PathBuf,
    out_dir: PathBuf,
    perf: bool,
}

pub(crate) fn run(args: impl Iterator<Item = String>) -> anyhow::Result<()> {
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
                println!("{}", crate::USAGE);
                return Ok(());
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

fn measure_once(server: Server, scenario: &Scenario, ctx: &Context) -> anyhow::Result<Sample> {
    let log = ctx.out_dir.join(format!("{}.log", server.name()));
    let running = Running::start(server, &ctx.tftpd, &ctx.root, File::Small.name(), &log)?;
    let counter = if ctx.perf {
        Some(SyscallCounter::start(&running.cgroup, &ctx.perf_out)?)
    } else {
        None
    };
    let drops0 = listener_drops(69)?;
    let cpu0 = running.cgroup.cpu_seconds()?;
    let report = load(ctx, scenario)?;
    let cpu1 = running.cgroup.cpu_seconds()?;
    let drops1 = listener_drops(69)?;
    let syscalls = counter.map(SyscallCounter::stop).transpose()?.flatten();
    // The load generator has been reaped already: what the stop reaps is the server.
    let reaped = reaped_switches()?;
    drop(running);
    let switches = reaped_switches()?.saturating_sub(reaped);
    let ran_as = report
        .negotiated
        .iter()
        .map(|n| format!("{}/{}", n.blksize, n.windowsize))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Sample {
        mb_per_s: report.mb_per_s,
        cpu_seconds: cpu1 - cpu0,
        bytes: report.bytes,
        syscalls,
        switches,
        init_p50_ms: report.init_latency.map(|s| s.p50_ms),
        init_p99_ms: report.init_latency.map(|s| s.p99_ms),
        transfers: report.transfers,
        failures: report.failures,
        listener_drops: drops1.saturating_sub(drops0),
        ran_as: if ran_as.is_empty() {
            "none".into()
        } else {
            ran_as
        },
        secs: report.wall_secs,
        spurious: report.spurious,
        blocks: report.blocks,
    })
}

/// One `tftp-load get` run of `scenario`; a run with failed transfers is a result, not an
/// error (they are counted in the table).
fn load(ctx: &Context, scenario: &Scenario) -> anyhow::Result<Report> {
    let mut cmd = Command::new(&ctx.load);
    cmd.args(["get", "--json", "--server", server::LISTEN, "--file"])
        .arg(scenario.file.name())
        .arg("--verify")
        .arg(ctx.root.join(scenario.file.name()))
        .arg("--clients")
        .arg(scenario.clients.to_string());
    if let Some(b) = scenario.blksize {
        cmd.arg("--blksize").arg(b.to_string());
    }
    if let Some(w) = scenario.windowsize {
        cmd.arg("--windowsize").arg(w.to_string());
    }
    if let Some(t) = scenario.timeout {
        cmd.arg("--timeout").arg(t.to_string());
    }
    if scenario.loss > 0.0 {
        // A fixed seed per round makes the loss pattern the same for every server.
        cmd.arg("--loss").arg(scenario.loss.to_string());
        cmd.arg("--seed").arg("4");
    }
    if !scenario.rtt.is_zero() {
        let each_way_ms = scenario.rtt.as_secs_f64() * 1000.0 / 2.0;
        cmd.arg("--delay").arg(each_way_ms.to_string());
    }
    let out = cmd.output().context("running tftp-load")?;
    serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "tftp-load gave no report ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The median raw ceiling (MB/s) at a shape, over `runs` measurements of `bytes`.
fn ceiling(
    ctx: &Context,
    blksize: u16,
    windowsize: u16,
    bytes: usize,
    runs: usize,
) -> anyhow::Result<f64> {
    let mut v = Vec::new();
    for _ in 0..runs {
        let out = Command::new(&ctx.load)
            .args(["ceiling", "--json", "--blksize"])
            .arg(blksize.to_string())
            .arg("--windowsize")
            .arg(windowsize.to_string())
            .arg("--bytes")
            .arg(bytes.to_string())
            .output()
            .context("running tftp-load ceiling")?;
        let report: CeilingReport = serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "tftp-load ceiling: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
        v.push(report.mb_per_s);
    }
    v.sort_by(f64::total_cmp);
    Ok(v[v.len() / 2])
}

fn render(
    plan: &Plan,
    ctx: &Context,
    results: &[ScenarioResult],
    servers: &[Server],
    chosen: bool,
) -> String {
    let sh = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let versions: Vec<String> = servers
        .iter()
        .filter(|s| {
            **s != Server::TftpdPortable && !s.is_reference() && s.program(&ctx.tftpd).exists()
        })
        .map(|s| s.version(&ctx.tftpd))
        .collect();
    let mut command = if plan.quick {
        format!("sudo cargo xtask bench --quick --runs {}", plan.runs)
    } else {
        format!("sudo cargo xtask bench --runs {}", plan.runs)
    };
    if chosen {
        let names: Vec<&str> = servers.iter().map(|s| s.name()).collect();
        command.push_str(&format!(" --servers {}", names.join(",")));
    }
    if plan.scenarios.len() < Plan::full(1).scenarios.len() {
        let ids: Vec<&str> = plan.scenarios.iter().map(|s| s.id).collect();
        command.push_str(&format!(" --scenarios {}", ids.join(",")));
    }
    let mut out = format!(
        "## Side by side ({})\n\n`{command}` — {} UTC; kernel {}; {} CPUs; {}. Medians of {} round(s); \
         loopback; every byte verified.\n\n",
        if plan.quick {
            "quick: proves the harness, not a measurement"
        } else {
            "full"
        },
        sh("date", &["-u", "+%Y-%m-%d %H:%M"]),
        sh("uname", &["-r"]),
        sh("nproc", &[]),
        versions.join(", "),
        plan.runs,
    );
    out.push_str("### tftpd against the best peer\n\n");
    out.push_str(&table::summary_table(results));
    out.push('\n');
    let noisy = noisy_table::noisy_table(results);
    if !noisy.is_empty() {
        out.push_str(
            "### Noisy links: time to finish and spurious DATA (issue #22)\n\n\
             Seconds for the whole download (median), as a ratio to the best peer's and to \
             tftpd with `protocol.adaptive_timeout = false`; spurious DATA are blocks the \
             client received again although its ACK of them had got through, per 1000 \
             blocks. The client negotiates no `timeout` and keeps its own 1 s timer; loss is \
             seeded, so every server meets the same losses.\n\n",
        );
        out.push_str(&noisy);
        out.push('\n');
    }
    let fast = table::fast_path_table(results);
    if !fast.is_empty() {
        out.push_str("### tftpd against its portable path (every fast path off)\n\n");
        out.push_str(&fast);
        out.push('\n');
    }
    for r in results {
        out.push_str(&table::scenario_table(r));
        out.push('\n');
    }
    out
}
