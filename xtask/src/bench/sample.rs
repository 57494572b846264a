//! One measurement: a server started fresh in its cgroup, one `tftp-load get` run against
//! it, and the CPU time, syscalls, context switches and listener drops read around that run
//! (a Sample); and the raw ceiling (`tftp-load ceiling`) a scenario's shape is compared with.

use std::process::Command;

use anyhow::Context as _;

use tftpd_benches::ceiling::CeilingReport;
use tftpd_benches::report::Report;

use super::Context;
use super::measure::{SyscallCounter, listener_drops, reaped_switches};
use super::scenario::{File, Scenario};
use super::server::{self, Running, Server};
use super::table::Sample;

pub(super) fn measure_once(
    server: Server,
    scenario: &Scenario,
    ctx: &Context,
) -> anyhow::Result<Sample> {
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
pub(super) fn ceiling(
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
