//! Project tasks: `cargo xtask demo` runs the server on the bundled sample root, and
//! `cargo xtask test` installs what the tests need and runs every check CI runs; `cargo xtask
//! attack` measures the daemon against issue #18's attacks.

mod attack;
mod bench;
mod bench_flood;
mod build_ebpf;
mod demo;
mod dist;
mod dist_check;
#[cfg(test)]
mod doc_check;
mod fuzz;
mod setup;
mod test;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context as _, bail};

const USAGE: &str = "usage: cargo xtask <demo|test|setup|fuzz|build-ebpf|bench|bench-flood|attack|dist|dist-test|container|check-dist>

  demo        build and run tftpd on the bundled sample root (demo/root) at 127.0.0.1:6969
  build-ebpf  build the eBPF object tftpd embeds (installs nightly rust-src and bpf-linker
              when missing)
  bench       tftpd side by side with in.tftpd, atftpd and dnsmasq (root; installs them with apt;
              loopback port 69): a Markdown table of throughput, CPU per GiB, syscalls per MiB,
              init latency and failures, as ratios to the best peer, in target/bench/.
              --quick: small sizes, one round (proves the harness); --runs N: rounds;
              --servers tftpd,dnsmasq: only these (tftpd, tftpd-portable, tftp-hpa, atftpd,
              dnsmasq; and, in the concurrent rows 2 and 3 only, the raw references
              raw-epoll, raw-uring that have no server logic); --scenarios 2,3:
              only these (1a-1f, 2, 3, 4)
  bench-flood junk flood during a 64 MiB download and alone: userspace, classic BPF, eBPF, generic
              and native XDP (root; a veth pair into a network namespace; bounded); prints a
              Markdown table with drops per CPU-second
  attack      issue #18's attacks against the release daemon on loopback (run with sudo: the
              daemon then drops to nobody as in production): spoofed-request lock-out,
              reflection factor, single-port blind ACKs, log forging, kill -9 mid-upload,
              metrics connection flood, junk plus request flood, a 3000-client storm; each
              bounded in packets and seconds (about 30 s in all, plus the build). Prints a
              Markdown table (also in target/attack/table.md). --only LETTERS: only these
              rows (a-h); --quick: the tests' shortened plans
  test        install what the tests need (when possible), build the eBPF object, then run
              fmt, clippy, the dist/ checks, all tests, the package test and a short
              fuzz run
  setup       only install what the tests need
  fuzz        every cargo-fuzz target in tftpd/fuzz for SECONDS each (default 60; installs
              nightly and cargo-fuzz when missing; TFTPD_SKIP_FUZZ=1 skips it, here and in test)
  dist        build the release binary, man pages, shell completions and a Debian package
              into target/dist/ (tftpd-rs_<version>_<arch>.deb)
  dist-test   the package step of `test` alone (root): build, lintian, dpkg -i, man, serve a
              file with the installed daemon, dpkg --purge
  container   build the image of dist/Containerfile with podman on a Debian 13 base made by
              mmdebstrap (no registry), then run it with only the capabilities it needs and
              smoke-test it: curl tftp://, /metrics, the filter counters, tftpd health (root)
  check-dist  check the Prometheus rules, Grafana dashboard, Containerfile and Kubernetes
              manifest in dist/ (promtool, hadolint, kubernetes-validate, a real Prometheus)";

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("demo") => demo::run(),
        Some("build-ebpf") => build_ebpf::run(),
        Some("bench") => bench::run(args),
        Some("bench-flood") => bench_flood::run(),
        Some("attack") => attack::run(args),
        Some("test") => test::run(),
        Some("setup") => setup::run(),
        Some("fuzz") => {
            let seconds = match args.next() {
                Some(s) => s.parse().context("fuzz: SECONDS must be a whole number")?,
                None => 60,
            };
            fuzz::run(seconds)
        }
        Some("dist") => dist::run(),
        Some("dist-test") => dist::run_test(),
        Some("container") => dist::run_container(),
        Some("check-dist") => dist_check::run(),
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => {
            eprintln!("{USAGE}");
            bail!("unknown or missing task")
        }
    }
}

/// The workspace root (xtask lives one level below it).
fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// Runs a command in the workspace root, failing with its command line if it fails.
fn exec(cmd: &mut Command) -> anyhow::Result<()> {
    exec_in(&workspace_root(), cmd)
}

/// Runs a command in `dir`, failing with its command line if it fails.
fn exec_in(dir: &std::path::Path, cmd: &mut Command) -> anyhow::Result<()> {
    let line = format!("{cmd:?}");
    eprintln!("xtask: running {line}");
    let status = cmd
        .current_dir(dir)
        .status()
        .with_context(|| format!("starting {line}"))?;
    if !status.success() {
        bail!("{line} failed with {status}");
    }
    Ok(())
}

/// True when `program` is on PATH.
fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
}
