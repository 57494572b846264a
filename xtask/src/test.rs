//! `cargo xtask test`: everything CI checks, in the order that fails fastest: formatting,
//! lints, the whole test suite (unit, property, integration with real clients, root-only),
//! then a short fuzz run when the nightly toolchain is there.

use std::process::Command;

use crate::{exec, exec_in, have, setup, workspace_root};

/// Seconds each fuzz target runs in `xtask test`: enough to catch a shallow crash in CI.
const FUZZ_SECONDS: &str = "20";

pub(crate) fn run() -> anyhow::Result<()> {
    setup::run()?;
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
    exec(Command::new(cargo).args(["test", "--workspace", "--all-targets"]))?;
    exec(Command::new(cargo).args(["test", "--workspace", "--doc"]))?;
    fuzz()
}

/// Runs each fuzz target briefly. Needs nightly and cargo-fuzz; under CI both are installed
/// (cargo-fuzz from crates.io), elsewhere a missing one is reported and the step skipped.
fn fuzz() -> anyhow::Result<()> {
    let nightly = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if !nightly {
        if ci {
            anyhow::bail!("CI=true but the nightly toolchain is missing: the fuzz run cannot run");
        }
        eprintln!(
            "xtask: skipping the fuzz run: no nightly toolchain (rustup toolchain install nightly)"
        );
        return Ok(());
    }
    if !have("cargo-fuzz") {
        if ci {
            exec(Command::new(env!("CARGO")).args(["install", "cargo-fuzz", "--locked"]))?;
        } else {
            eprintln!(
                "xtask: skipping the fuzz run: cargo-fuzz is not installed (cargo install cargo-fuzz)"
            );
            return Ok(());
        }
    }
    let fuzz_dir = workspace_root().join("tftpd/fuzz");
    for target in ["decode_packet", "netascii"] {
        exec_in(
            &fuzz_dir,
            Command::new("cargo")
                .args(["+nightly", "fuzz", "run", target, "--"])
                .arg(format!("-max_total_time={FUZZ_SECONDS}")),
        )?;
    }
    Ok(())
}
