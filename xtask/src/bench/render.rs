//! The Markdown report of a bench run (printed, and written to `target/bench/side-by-side.md`):
//! the command and machine it ran on, then the summary, noisy-link, fast-path and
//! per-scenario tables.

use std::process::Command;

use super::Context;
use super::noisy_table;
use super::scenario::Plan;
use super::server::Server;
use super::table::{self, ScenarioResult};

pub(super) fn render(
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
