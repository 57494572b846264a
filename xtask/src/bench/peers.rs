//! Getting the peer servers without installing their packages: tftpd-hpa and atftpd conflict
//! (both own `/usr/sbin/in.tftpd`, so installing one removes the other, and the test suite
//! relies on tftpd-hpa's), and their packages start services on port 69. So the bench
//! downloads each `.deb` with `apt-get download`, unpacks it under `target/bench/peers/`,
//! and installs only the shared libraries it depends on (they conflict with nothing).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::{exec, exec_in, workspace_root};

/// A peer's Debian package and where its server binary sits inside it.
pub(super) struct Package {
    pub name: &'static str,
    pub binary: &'static str,
}

fn peers_dir() -> PathBuf {
    workspace_root().join("target/bench/peers")
}

/// Where `package`'s binary is once unpacked.
pub(super) fn binary(package: &Package) -> PathBuf {
    peers_dir().join(package.name).join(package.binary)
}

/// The unpacked package's version (from its control file).
pub(super) fn version(package: &Package) -> Option<String> {
    let v = std::fs::read_to_string(peers_dir().join(package.name).join("VERSION")).ok()?;
    Some(v.trim().to_string())
}

/// Unpacks every package whose binary is not there yet; `apt-get update` runs once, first.
pub(super) fn ensure(packages: &[&Package]) -> anyhow::Result<()> {
    let missing: Vec<&&Package> = packages.iter().filter(|p| !binary(p).exists()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    apt(&["update", "-q"])?;
    for package in missing {
        unpack(package).with_context(|| format!("getting {}", package.name))?;
    }
    Ok(())
}

fn unpack(package: &Package) -> anyhow::Result<()> {
    let dir = peers_dir().join(package.name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    exec_in(
        &dir,
        Command::new("apt-get").args(["download", "-q", package.name]),
    )?;
    let deb = std::fs::read_dir(&dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .with_context(|| format!("apt-get download left no .deb in {}", dir.display()))?;
    let field = |name: &str| -> anyhow::Result<String> {
        let out = Command::new("dpkg-deb")
            .args(["-f"])
            .arg(&deb)
            .arg(name)
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let libraries = libraries(&field("Depends")?);
    if !libraries.is_empty() {
        let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
        args.extend(libraries.iter().map(String::as_str));
        apt(&args)?;
    }
    exec(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&dir))?;
    std::fs::write(
        dir.join("VERSION"),
        format!("{} {}", package.name, field("Version")?),
    )?;
    check_linked(&binary(package))
}

/// The shared-library packages of a `Depends:` line (the first of each alternative, without
/// version constraints): `libc6 (>= 2.34), libwrap0 (>= 7.6-4~), adduser` → libc6, libwrap0.
fn libraries(depends: &str) -> Vec<String> {
    depends
        .split(',')
        .filter_map(|dep| dep.split('|').next())
        .filter_map(|alt| alt.split_whitespace().next())
        .filter(|name| name.starts_with("lib"))
        .map(str::to_string)
        .collect()
}

/// Fails when the unpacked binary misses a shared library.
fn check_linked(binary: &Path) -> anyhow::Result<()> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .context("running ldd")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let missing: Vec<&str> = text.lines().filter(|l| l.contains("not found")).collect();
    if !missing.is_empty() {
        bail!(
            "{} lacks libraries: {}",
            binary.display(),
            missing.join("; ")
        );
    }
    Ok(())
}

fn apt(args: &[&str]) -> anyhow::Result<()> {
    exec(
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// Installs perf (the syscall counter) when missing; Debian ships it in linux-perf.
pub(super) fn ensure_perf() -> anyhow::Result<()> {
    if crate::have("perf") {
        return Ok(());
    }
    apt(&[
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        "linux-perf",
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_dependencies_are_picked_from_depends() {
        let depends = "debconf (>= 0.5) | debconf-2.0, libc6 (>= 2.34), libpcre2-8-0 (>= 10.22), libwrap0 (>= 7.6-4~)";
        assert_eq!(libraries(depends), ["libc6", "libpcre2-8-0", "libwrap0"]);
        assert_eq!(
            libraries("passwd, libdbus-1-3 (>= 1.9.14) | libfoo"),
            ["libdbus-1-3"]
        );
        assert!(libraries("").is_empty());
    }
}
