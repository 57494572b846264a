//! `cargo xtask test`: everything CI checks, in the order that fails fastest: formatting,
//! lints, the deployment files in `dist/`, the whole test suite (unit, property, integration
//! with real clients, root-only), the Debian package installed and serving and the container
//! image built and smoke-tested (both root only), then
//! a short run of every fuzz target (`fuzz.rs`).

use std::process::Command;

use anyhow::Context as _;

use crate::{bench, build_ebpf, dist, dist_check, exec, fuzz, setup, workspace_root};

/// The BSD target the portable code is compile-checked for.
const BSD_TARGET: &str = "x86_64-unknown-freebsd";

pub(crate) fn run() -> anyhow::Result<()> {
    setup::run()?;
    // Built first so the daemon under test embeds the real eBPF programs.
    build_ebpf::run()?;
    let cargo = env!("CARGO");
    exec(Command::new(cargo).args(["fmt", "--all", "--", "--check"]))?;
    exec(Command::new(cargo).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // Seconds: the alert rules' unit tests, the Containerfile and Kubernetes manifest lints.
    dist_check::run()?;
    // The BSD build must keep compiling: userspace code is checked for FreeBSD (no linking).
    exec(Command::new("rustup").args(["target", "add", BSD_TARGET]))?;
    exec(Command::new(cargo).args(["check", "--package", "tftpd", "--target", BSD_TARGET]))?;
    // `--all-targets` includes the criterion benches (`benches/benches/`): started without
    // `--bench`, criterion runs each bench once as a test (its own rule), every byte still
    // verified, no timing: 9 s for both bench binaries in a debug build here (34 s when the
    // 2 vCPUs ran other builds too).
    let mut tests = Command::new(cargo);
    tests.args(["test", "--workspace", "--all-targets"]);
    // tftp-load's tests run against tftp-hpa's in.tftpd too: unpacked from its package, as
    // the bench does (installing tftpd-hpa would start a service on port 69).
    if let Some(in_tftpd) = bench::in_tftpd_for_tests()? {
        tests.env("TFTPD_TEST_IN_TFTPD", in_tftpd);
    }
    let counts = exec_counting(&mut tests)?;
    // The Debian package: built, linted, installed, serving a file, purged (root only).
    dist::run_test()?;
    // The container image: built with podman on a mmdebstrap'd Debian 13 base, run with only
    // its capabilities and smoke-tested (root only).
    dist::run_container_test()?;
    // The side-by-side harness, short: proves every server starts and every column is read
    // (root only: port 69, cgroups, perf). It asserts no speed.
    bench::run_quick_in_test()?;
    fuzz::run(fuzz::TEST_SECONDS)?;
    // One plain closing line with the totals of every test binary, so a reader (or CI) does
    // not mistake the last binary's count for the whole run's.
    println!("tests: {} passed, {} failed", counts.passed, counts.failed);
    Ok(())
}

#[derive(Default)]
struct Counts {
    passed: u64,
    failed: u64,
}

/// Runs `cargo test`, echoing its output and adding up every "test result:" line, and each
/// criterion bench that passed in test mode ("Testing NAME" then "Success": criterion prints
/// no summary line). A failing bench panics, so its binary and `cargo test` fail.
fn exec_counting(cmd: &mut Command) -> anyhow::Result<Counts> {
    use std::io::{BufRead as _, BufReader};
    let line = format!("{cmd:?}");
    eprintln!("xtask: running {line}");
    let mut child = cmd
        .current_dir(workspace_root())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {line}"))?;
    let mut counts = Counts::default();
    if let Some(out) = child.stdout.take() {
        let mut previous = String::new();
        for l in BufReader::new(out).lines() {
            let l = l.context("reading cargo test output")?;
            println!("{l}");
            if let Some(rest) = l.strip_prefix("test result: ") {
                counts.passed += count_before(rest, " passed");
                counts.failed += count_before(rest, " failed");
            }
            if criterion_passed(&previous, &l) {
                counts.passed += 1;
            }
            previous = l;
        }
    }
    let status = child.wait().context("waiting for cargo test")?;
    if !status.success() {
        println!(
            "tests: {} passed, {} failed",
            counts.passed,
            counts.failed.max(1)
        );
        anyhow::bail!("{line} failed with {status}");
    }
    Ok(counts)
}

/// The number just before `word` in a "test result:" line.
fn count_before(text: &str, word: &str) -> u64 {
    text.split(';')
        .find_map(|part| part.trim().strip_suffix(word.trim()).map(str::trim))
        .and_then(|n| n.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// True when `line` is criterion's test-mode "Success" for the bench named on `previous`.
fn criterion_passed(previous: &str, line: &str) -> bool {
    previous.starts_with("Testing ") && line == "Success"
}

#[cfg(test)]
mod tests {
    use super::{count_before, criterion_passed};

    #[test]
    fn counts_are_read_from_a_cargo_test_summary() {
        let line =
            "ok. 82 passed; 3 failed; 1 ignored; 0 measured; 0 filtered out; finished in 1.03s";
        assert_eq!(count_before(line, " passed"), 82);
        assert_eq!(count_before(line, " failed"), 3);
        assert_eq!(count_before("FAILED. 0 passed; 1 failed;", " passed"), 0);
    }

    #[test]
    fn a_criterion_bench_passing_in_test_mode_is_counted() {
        assert!(criterion_passed("Testing codec/decode/ack", "Success"));
        assert!(
            !criterion_passed("", "Success"),
            "a Success without its Testing line is someone else's output"
        );
        assert!(
            !criterion_passed("Testing codec/decode/ack", "thread 'main' panicked"),
            "a panic is not a pass"
        );
    }
}
