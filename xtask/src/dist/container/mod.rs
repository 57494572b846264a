//! `cargo xtask container`: builds the image of `dist/Containerfile` with podman, from
//! Debian's packages alone (no image registry), then smoke-tests it (`smoke.rs`).
//!
//! The base is Debian 13 (trixie) made by mmdebstrap (`--variant=minbase`, the package set of
//! debian:trixie-slim, with the same documentation excluded) and imported as
//! `localhost/tftpd-base:trixie`; it is made once and reused (`podman rmi` it to refresh).
//! The context is a directory holding only the stripped release binary and
//! `docs/examples/container.toml`. Beside it goes `seccomp.json`: podman's default profile
//! allows bpf(2) only with CAP_SYS_ADMIN, so the eBPF filters would need that capability;
//! the derived profile allows bpf(2) with CAP_BPF instead (moby/moby#43374 asks the same).

mod smoke;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use super::files::{copy, write};
use super::{capture, target_dir, version};
use crate::{build_ebpf, exec, workspace_root};

pub(crate) use self::smoke::run as run_test;

/// The base image mmdebstrap makes, and the suite and variant it holds.
const BASE_IMAGE: &str = "localhost/tftpd-base:trixie";
const SUITE: &str = "trixie";
/// The image this task builds (tagged with the daemon's version).
const IMAGE: &str = "localhost/tftpd";
/// The Debian mirror: the host's (TFTPD_DEBIAN_MIRROR overrides it).
const MIRROR: &str = "http://deb.debian.org/debian";
/// podman's default seccomp profile, from Debian's golang-github-containers-common.
const DEFAULT_SECCOMP: &str = "/usr/share/containers/seccomp.json";
/// What debian:trixie-slim leaves out (debuerreotype's slimming), except the copyrights.
const SLIM: [&str; 6] = [
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
];

/// The open-file limit the container gets: the unit's LimitNOFILE, or less when this process
/// may not grant as much (see `ulimits`).
const NOFILE: u64 = 65_536;
/// Processes and threads per user in the container (tftpd runs a few dozen threads).
const NPROC: u64 = 32_768;

/// podman, with an OCI runtime this host can use: crun (podman's default) refuses a host whose
/// cgroups are a v1/v2 hybrid ("cgroups in hybrid mode not supported, drop all controllers
/// from cgroupv2"); runc runs there. Debian 13 mounts cgroup v2 alone, where crun runs.
pub(super) fn podman() -> Command {
    let mut cmd = Command::new("podman");
    let unified = nix::sys::statfs::statfs("/sys/fs/cgroup")
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC);
    if !unified {
        cmd.args(["--runtime", "runc"]);
    }
    cmd
}

/// `--ulimit` flags within this process's own hard limits: podman's defaults (a million open
/// files, four million processes) are more than a sandboxed root may set, and the runtime
/// then refuses to start the container (setrlimit: EPERM).
pub(super) fn ulimits() -> Vec<String> {
    use nix::sys::resource::{Resource, getrlimit};
    let within = |r, want: u64| getrlimit(r).map_or(want, |(_, hard)| hard.min(want));
    let nofile = within(Resource::RLIMIT_NOFILE, NOFILE);
    let nproc = within(Resource::RLIMIT_NPROC, NPROC);
    vec![
        format!("--ulimit=nofile={nofile}:{nofile}"),
        format!("--ulimit=nproc={nproc}:{nproc}"),
    ]
}

/// What `build` made.
pub(crate) struct Image {
    /// `localhost/tftpd:VERSION`.
    pub(crate) tag: String,
    /// The binary embeds the eBPF object (else it filters with classic BPF).
    pub(crate) embeds_ebpf: bool,
    /// The seccomp profile to run it with.
    pub(crate) seccomp: PathBuf,
}

/// `cargo xtask container`: build, then the smoke test.
pub(crate) fn run() -> anyhow::Result<()> {
    smoke::run()
}

/// The tools this task needs, with the Debian package of each.
const TOOLS: [(&str, &str); 4] = [
    ("podman", "podman"),
    ("mmdebstrap", "mmdebstrap"),
    ("nsenter", "util-linux"),
    ("curl", "curl"),
];

fn check_tools() -> anyhow::Result<()> {
    let missing = crate::setup::missing(&TOOLS);
    if !missing.is_empty() {
        bail!(
            "the container task needs {} (apt-get install {}; cargo xtask setup does it)",
            missing.join(", "),
            missing.join(" ")
        );
    }
    if !Path::new(DEFAULT_SECCOMP).is_file() {
        bail!("{DEFAULT_SECCOMP} is missing: podman's default seccomp profile (containers-common)");
    }
    Ok(())
}

pub(crate) fn build() -> anyhow::Result<Image> {
    check_tools()?;
    let embeds_ebpf = build_ebpf::object_path().is_file();
    exec(Command::new(env!("CARGO")).args([
        "build",
        "--release",
        "--locked",
        "--package",
        "tftpd",
    ]))?;
    base_image()?;
    let dir = target_dir().join("container");
    let context = dir.join("context");
    if context.exists() {
        std::fs::remove_dir_all(&context)
            .with_context(|| format!("removing {}", context.display()))?;
    }
    let binary = context.join("tftpd");
    copy(&target_dir().join("release/tftpd"), &binary, 0o755)?;
    // As the Debian package: the debug info stays in the build tree.
    exec(Command::new("strip").arg("--strip-unneeded").arg(&binary))?;
    copy(
        &workspace_root().join("docs/examples/container.toml"),
        &context.join("tftpd.toml"),
        0o644,
    )?;
    let seccomp = dir.join("seccomp.json");
    write_seccomp(Path::new(DEFAULT_SECCOMP), &seccomp)?;
    let tag = format!("{IMAGE}:{}", version());
    exec(
        podman()
            .args([
                "build",
                "--format",
                "docker",
                "--pull=never",
                "--network",
                "none",
            ])
            .args(ulimits())
            .args(["--build-arg", &format!("BASE={BASE_IMAGE}")])
            .arg("--file")
            .arg(workspace_root().join("dist/Containerfile"))
            .args(["--tag", &tag])
            .arg(&context),
    )?;
    let size = capture(podman().args(["image", "inspect", "--format", "{{.Size}}", &tag]))?;
    eprintln!(
        "xtask: built {tag} on {BASE_IMAGE} ({} MB; the binary {})",
        size.parse::<u64>().unwrap_or(0) / 1_000_000,
        if embeds_ebpf {
            "embeds the eBPF filters"
        } else {
            "has no eBPF object: classic BPF filters"
        }
    );
    Ok(Image {
        tag,
        embeds_ebpf,
        seccomp,
    })
}

/// Makes the Debian 13 base with mmdebstrap unless podman has it already.
fn base_image() -> anyhow::Result<()> {
    let exists = podman()
        .args(["image", "exists", BASE_IMAGE])
        .status()
        .context("running podman image exists")?;
    if exists.success() {
        eprintln!("xtask: reusing {BASE_IMAGE} (podman rmi {BASE_IMAGE} makes it again)");
        return Ok(());
    }
    let mirror = std::env::var("TFTPD_DEBIAN_MIRROR").unwrap_or_else(|_| MIRROR.to_string());
    let tar = target_dir().join("container/base.tar");
    if let Some(parent) = tar.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut mm = Command::new("mmdebstrap");
    mm.args(["--variant=minbase", "--format=tar", "--quiet"]);
    for rule in SLIM {
        mm.arg(format!("--dpkgopt={rule}"));
    }
    exec(mm.arg(SUITE).arg(&tar).arg(&mirror)).with_context(|| {
        format!(
            "making the Debian {SUITE} base from {mirror} (set TFTPD_DEBIAN_MIRROR for another)"
        )
    })?;
    let imported = exec(
        podman()
            .args(["import", "--change", "CMD [\"/bin/bash\"]"])
            .arg(&tar)
            .arg(BASE_IMAGE),
    );
    let _ = std::fs::remove_file(&tar);
    imported
}

/// podman's default profile, with bpf(2) allowed to a container holding CAP_BPF, as the
/// kernel itself allows it since 5.8. Everything else is left as the default has it.
fn write_seccomp(default: &Path, out: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(default)
        .with_context(|| format!("reading {}", default.display()))?;
    let mut profile: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", default.display()))?;
    let rules = profile
        .get_mut("syscalls")
        .and_then(Value::as_array_mut)
        .with_context(|| format!("{} has no syscalls list", default.display()))?;
    let mut had_bpf = false;
    for rule in rules.iter_mut() {
        if let Some(names) = rule.get_mut("names").and_then(Value::as_array_mut) {
            let before = names.len();
            names.retain(|n| n != "bpf");
            had_bpf |= names.len() != before;
        }
    }
    if !had_bpf {
        bail!(
            "{} has no rule for bpf(2): the derivation assumes podman's usual profile",
            default.display()
        );
    }
    rules.retain(|r| {
        r.get("names")
            .and_then(Value::as_array)
            .is_none_or(|n| !n.is_empty())
    });
    // One allow rule per capability that lets the kernel run bpf(2), and EPERM without either.
    for cap in ["CAP_BPF", "CAP_SYS_ADMIN"] {
        rules.push(json!({"names": ["bpf"], "action": "SCMP_ACT_ALLOW",
                          "includes": {"caps": [cap]}}));
    }
    rules.push(
        json!({"names": ["bpf"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                      "excludes": {"caps": ["CAP_BPF", "CAP_SYS_ADMIN"]}}),
    );
    let json = serde_json::to_string_pretty(&profile).context("encoding the seccomp profile")?;
    write(out, json.as_bytes(), 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_derived_seccomp_profile_allows_bpf_with_cap_bpf_and_keeps_the_rest() {
        let dir = std::env::temp_dir().join(format!("xtask-seccomp-{}", std::process::id()));
        let default = dir.join("default.json");
        let profile = json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["bpf", "perf_event_open"], "action": "SCMP_ACT_ALLOW",
             "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["bpf"], "action": "SCMP_ACT_ERRNO",
             "excludes": {"caps": ["CAP_SYS_ADMIN"]}}]});
        write(&default, profile.to_string().as_bytes(), 0o644).expect("default profile");
        let out = dir.join("out.json");
        write_seccomp(&default, &out).expect("derived");
        let got: Value =
            serde_json::from_str(&std::fs::read_to_string(&out).expect("read")).expect("json");
        let rules = got["syscalls"].as_array().expect("rules");
        let bpf: Vec<&Value> = rules
            .iter()
            .filter(|r| {
                r["names"]
                    .as_array()
                    .is_some_and(|n| n.iter().any(|x| x == "bpf"))
            })
            .collect();
        assert_eq!(bpf.len(), 3, "two allows and one EPERM: {bpf:?}");
        assert!(
            bpf.iter()
                .any(|r| r["action"] == "SCMP_ACT_ALLOW"
                    && r["includes"]["caps"] == json!(["CAP_BPF"])),
            "bpf(2) with CAP_BPF alone: {bpf:?}"
        );
        assert!(
            rules
                .iter()
                .any(|r| r["names"] == json!(["perf_event_open"])),
            "the rest of the SYS_ADMIN rule stays: {rules:?}"
        );
        assert_eq!(got["defaultAction"], "SCMP_ACT_ERRNO");
        write(&default, br#"{"syscalls": []}"#, 0o644).expect("profile");
        assert!(
            write_seccomp(&default, &out).is_err(),
            "an unexpected profile is refused"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
