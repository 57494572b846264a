//! `cargo xtask attack`: issue #18's attacks against the release daemon, as an attacker on
//! the same host can mount them (spoofed sources are 127.x addresses bound on `lo` that never
//! answer), each bounded in packets and seconds, printed as one Markdown table: what was
//! sent, what the server did, whether legitimate clients were served (and how fast against a
//! baseline taken in the same run), and bytes out per byte in at the IP level.
//!
//! The attacks themselves live in the files below this one and drive the tests too
//! (`tftpd/tests/attack.rs` includes them), so the suite and the tests measure alike. This
//! file is the command only: build, run with progress, print.

mod baseline;
mod blind_ack;
mod daemon;
mod junk_flood;
mod legit;
mod lockout;
mod log_forging;
mod metrics_flood;
mod peer;
mod reflection;
mod sources;
mod storm;
mod table;
pub(crate) mod time_left;
mod upload_debris;
mod wire;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::{build_ebpf, exec, workspace_root};
use baseline::Baseline;
use daemon::Target;
use legit::Clients;
use table::Row;

/// One row: its letter in the list, its name, how long it took on a 2-vCPU machine
/// shared with other builds (release build, full plan) and how to run it.
struct Entry {
    letter: char,
    name: &'static str,
    estimate: Duration,
    /// Runs the row; `true`: the tests' shortened plan where there is one.
    run: fn(&Target, &Baseline, bool) -> anyhow::Result<Row>,
}

const ENTRIES: [Entry; 9] = [
    Entry {
        letter: 'a',
        name: "spoofed-request lock-out",
        estimate: Duration::from_secs(4),
        run: |t, b, quick| {
            let plan = if quick {
                lockout::Plan::SHORT
            } else {
                lockout::Plan::FULL
            };
            Ok(lockout::run(t, plan)?.row(b))
        },
    },
    Entry {
        letter: 'b',
        name: "reflection factor",
        estimate: Duration::from_secs(10),
        run: |t, _, _| Ok(reflection::run(t, reflection::Plan::FULL)?.row()),
    },
    Entry {
        letter: 'c',
        name: "single-port blind ACKs",
        estimate: Duration::from_secs(3),
        run: |t, _, _| Ok(blind_ack::run(t, blind_ack::Plan::FULL)?.row()),
    },
    Entry {
        letter: 'i',
        name: "single-port blind ACKs by a spoofer who knows the window cap",
        estimate: Duration::from_secs(20),
        run: |t, _, quick| {
            let plan = if quick {
                blind_ack::Plan::KNOWS_THE_CAP_QUICK
            } else {
                blind_ack::Plan::KNOWS_THE_CAP
            };
            Ok(blind_ack::run(t, plan)?.row())
        },
    },
    Entry {
        letter: 'd',
        name: "log forging",
        estimate: Duration::from_secs(2),
        run: |t, _, _| Ok(log_forging::run(t)?.row()),
    },
    Entry {
        letter: 'e',
        name: "kill -9 during an upload",
        estimate: Duration::from_secs(1),
        run: |t, _, _| Ok(upload_debris::run(t, upload_debris::Plan::FULL)?.row()),
    },
    Entry {
        letter: 'f',
        name: "metrics connection flood",
        estimate: Duration::from_secs(4),
        run: |t, b, _| Ok(metrics_flood::run(t, metrics_flood::Plan::FULL)?.row(b)),
    },
    Entry {
        letter: 'g',
        name: "junk plus request flood",
        estimate: Duration::from_secs(10),
        run: |t, b, quick| {
            let plan = if quick {
                junk_flood::Plan::SHORT
            } else {
                junk_flood::Plan::FULL
            };
            Ok(junk_flood::run(t, plan)?.row(b))
        },
    },
    Entry {
        letter: 'h',
        name: "overload (boot storm)",
        estimate: Duration::from_secs(3),
        run: |t, _, quick| {
            let plan = if quick {
                storm::Plan::QUICK
            } else {
                storm::Plan::FULL
            };
            Ok(storm::run(t, plan)?.row())
        },
    },
];

/// The baseline's estimate.
const BASELINE_ESTIMATE: Duration = Duration::from_secs(1);

pub(crate) fn run(mut args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let mut only: Option<String> = None;
    let mut quick = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--only" => only = args.next(),
            "--quick" => quick = true,
            other => bail!(
                "cargo xtask attack: unknown argument {other:?} (allowed: --only LETTERS, --quick)"
            ),
        }
    }
    let chosen: Vec<&Entry> = ENTRIES
        .iter()
        .filter(|e| only.as_deref().is_none_or(|o| o.contains(e.letter)))
        .collect();
    if chosen.is_empty() {
        bail!("--only {only:?} names no attack (allowed letters: a to h)");
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!(
            "xtask attack: not root: the daemon keeps your user (no privilege drop) and cannot \
             load eBPF; run it with sudo to measure the production set-up"
        );
    }
    // The daemon as shipped: with its eBPF socket filters embedded where they can be built.
    if let Err(e) = build_ebpf::run() {
        eprintln!(
            "xtask attack: the eBPF object could not be built ({e:#}); the daemon will use classic BPF"
        );
    }
    exec(Command::new(env!("CARGO")).args([
        "build",
        "--release",
        "--package",
        "tftpd",
        "--package",
        "tftpd-benches",
    ]))?;
    daemon::raise_fd_limit();
    let target = Target {
        tftpd: workspace_root().join("target/release/tftpd"),
        clients: Clients(Arc::new(legit::Binary(
            workspace_root().join("target/release/tftp-load"),
        ))),
    };
    let estimates: Vec<Duration> = std::iter::once(BASELINE_ESTIMATE)
        .chain(chosen.iter().map(|e| e.estimate))
        .collect();
    let t0 = Instant::now();
    eprintln!(
        "{}",
        table::progress(0, "baseline", &estimates, t0.elapsed())
    );
    let baseline = baseline::run(&target)?;
    let mut rows = vec![baseline.row()];
    for (i, e) in chosen.iter().enumerate() {
        eprintln!(
            "{}",
            table::progress(i + 1, e.name, &estimates, t0.elapsed())
        );
        let row_start = Instant::now();
        let row = (e.run)(&target, &baseline, quick).unwrap_or_else(|err| Row {
            attack: format!("{}. {}", e.letter, e.name),
            sent: "—".into(),
            server: format!("the attack could not run: {err:#}"),
            legit: "—".into(),
            ratio: "—".into(),
        });
        eprintln!(
            "xtask attack: {} took {:.1} s",
            e.name,
            row_start.elapsed().as_secs_f64()
        );
        rows.push(row);
    }
    let mut out = format!(
        "tftpd attack suite{}: {}, commit {}, {} s; the daemon ran as {} with the {} packet \
         filter\n\n{}\n",
        if quick {
            " (--quick: the tests' shortened plans)"
        } else {
            ""
        },
        output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"])),
        output(Command::new("git").args(["describe", "--always", "--dirty"])),
        t0.elapsed().as_secs(),
        baseline.identity,
        baseline.filter,
        table::HEADER
    );
    for r in &rows {
        out += &r.markdown();
        out.push('\n');
    }
    let dir = workspace_root().join("target/attack");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("table.md"), &out)?;
    println!("\n{out}");
    eprintln!(
        "xtask attack: the table is also in {}",
        dir.join("table.md").display()
    );
    Ok(())
}

/// A command's first line of output, run in the workspace root ("unknown" if it fails).
fn output(cmd: &mut Command) -> String {
    cmd.current_dir(workspace_root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(
            || "unknown".into(),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_string(),
        )
}
