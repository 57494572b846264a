//! The fuzz run: every cargo-fuzz target in `tftpd/fuzz` (the `[[bin]]` entries of its
//! Cargo.toml, so a new target cannot be left out) for a few seconds each, starting from the
//! checked-in seeds in `tftpd/fuzz/seeds/<target>/`. What it needs (the nightly toolchain,
//! cargo-fuzz) is installed when missing, on any machine: a fresh clone's `cargo xtask test`
//! fuzzes. `TFTPD_SKIP_FUZZ=1` is the one way out, and says so (refused under `CI=true`).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, bail};

use crate::{exec, exec_in, have, workspace_root};

/// Seconds each target runs in `xtask test`: enough to catch a shallow crash; nine targets
/// at 15 s keep the step near 2.5 minutes once the fuzz crate is built.
pub(crate) const TEST_SECONDS: u32 = 15;

/// True when the fuzz run is switched off by `TFTPD_SKIP_FUZZ=1` (said on stderr). Under
/// CI=true that is an error: CI must fuzz.
fn skipped() -> anyhow::Result<bool> {
    if std::env::var_os("TFTPD_SKIP_FUZZ").is_none_or(|v| v != "1") {
        return Ok(false);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        bail!("TFTPD_SKIP_FUZZ=1 under CI=true: CI runs the fuzz targets");
    }
    eprintln!("xtask: TFTPD_SKIP_FUZZ=1: NOT running the fuzz targets");
    Ok(true)
}

/// Installs the nightly toolchain and cargo-fuzz when missing (`cargo xtask setup`).
pub(crate) fn install_tools() -> anyhow::Result<()> {
    if skipped()? {
        return Ok(());
    }
    let nightly = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !nightly {
        // The minimal profile: rustc, cargo and rust-std, all cargo-fuzz needs.
        exec(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
        ]))
        .context("installing the nightly toolchain for the fuzz targets")?;
    }
    if !have("cargo-fuzz") {
        exec(Command::new(env!("CARGO")).args(["install", "cargo-fuzz", "--locked"]))
            .context("installing cargo-fuzz")?;
    }
    Ok(())
}

/// Builds every target, then runs each for `seconds`; prints the step's wall time.
pub(crate) fn run(seconds: u32) -> anyhow::Result<()> {
    if skipped()? {
        return Ok(());
    }
    install_tools()?;
    let start = Instant::now();
    let fuzz_dir = workspace_root().join("tftpd/fuzz");
    let manifest = std::fs::read_to_string(fuzz_dir.join("Cargo.toml"))
        .context("reading tftpd/fuzz/Cargo.toml")?;
    let targets = targets(&manifest);
    if targets.is_empty() {
        bail!("tftpd/fuzz/Cargo.toml names no [[bin]] target");
    }
    // One build for all: cargo then compiles tftpd once, not once per target.
    exec_in(
        &fuzz_dir,
        Command::new("cargo").args(["+nightly", "fuzz", "build"]),
    )?;
    for target in &targets {
        let mut cmd = Command::new("cargo");
        cmd.args(["+nightly", "fuzz", "run", target]);
        // libFuzzer writes what it finds into the first directory (ignored by git) and only
        // reads the seeds.
        cmd.arg(Path::new("corpus").join(target));
        let seeds = Path::new("seeds").join(target);
        if fuzz_dir.join(&seeds).is_dir() {
            cmd.arg(seeds);
        }
        cmd.arg("--").arg(format!("-max_total_time={seconds}"));
        std::fs::create_dir_all(fuzz_dir.join("corpus").join(target))
            .context("creating the fuzz corpus directory")?;
        exec_in(&fuzz_dir, &mut cmd)?;
    }
    eprintln!(
        "xtask: fuzzed {} targets for {seconds} s each in {:.0} s",
        targets.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The `name` of every `[[bin]]` section of the fuzz crate's manifest.
fn targets(manifest: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_bin = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if in_bin
            && let Some(value) = line.strip_prefix("name").map(str::trim_start)
            && let Some(value) = value.strip_prefix('=')
        {
            out.push(value.trim().trim_matches('"').to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::targets;
    use crate::workspace_root;

    #[test]
    fn every_fuzz_target_file_is_a_bin_the_run_finds() {
        let dir = workspace_root().join("tftpd/fuzz");
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).expect("fuzz manifest");
        let mut listed = targets(&manifest);
        listed.sort();
        let mut files: Vec<String> = std::fs::read_dir(dir.join("fuzz_targets"))
            .expect("fuzz_targets/")
            .map(|e| e.expect("entry").path())
            .filter_map(|p| Some(p.file_stem()?.to_str()?.to_string()))
            .collect();
        files.sort();
        assert_eq!(
            listed, files,
            "each fuzz_targets/*.rs is a [[bin]], and only those"
        );
        assert!(
            !listed.iter().any(|t| t == "tftpd-fuzz"),
            "the package name is not a target"
        );
    }
}
