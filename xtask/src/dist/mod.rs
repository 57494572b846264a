//! `cargo xtask dist`: the release binary, the man pages (tftpd(8) rendered from the clap
//! definitions, tftpd.toml(5) from `dist/man/`), shell completions, and a Debian package
//! assembled by hand and built with `dpkg-deb --root-owner-group`. Everything lands in
//! `<target>/dist/`. The package's own files (config, maintainer scripts, copyright) live in
//! `dist/debian/`; `test.rs` installs the result and serves a file with it.

mod container;
mod files;
mod man;
mod test;

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use clap::CommandFactory as _;

pub(crate) use self::container::{run as run_container, run_test as run_container_test};
use self::files::{copy, gzip_in_place, gzip_into, walk_dirs, write};
use self::man::{write_completions, write_man_pages};
pub(crate) use self::test::run as run_test;
use crate::{build_ebpf, exec, workspace_root};

/// The Debian package name. Not `tftpd`: that is netkit's old server, and tftpd-hpa (still in
/// Debian) declares `Conflicts: tftpd`, so a package of that name cannot sit beside it.
/// The binary, units and config keep the name tftpd. The one file tftpd-hpa also ships,
/// the tftpd(8) alias, is diverted by `dist/debian/preinst`.
const PACKAGE: &str = "tftpd-rs";
/// The control file's one-line synopsis (no leading article, under 80 characters).
const SYNOPSIS: &str = "TFTP server for network boot and provisioning, with eBPF filters";
const MAINTAINER: &str = "tftpd maintainers <maintainers@users.noreply.github.com>";

/// Where the installed files go; the unit file and the config must agree with these.
const BINARY: &str = "/usr/sbin/tftpd";
const CONFIG: &str = "/etc/tftpd/tftpd.toml";
const UNIT_DIR: &str = "/usr/lib/systemd/system";

/// What `build` produced.
struct Artifacts {
    deb: PathBuf,
    embeds_ebpf: bool,
}

pub(crate) fn run() -> anyhow::Result<()> {
    let artifacts = build()?;
    let filter = if artifacts.embeds_ebpf {
        "embeds the eBPF filters"
    } else {
        "has no eBPF object: userspace filter only"
    };
    println!("{} ({filter})", artifacts.deb.display());
    Ok(())
}

/// The cargo target directory (CARGO_TARGET_DIR is honoured, as cargo does).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| {
            if p.is_relative() {
                workspace_root().join(p)
            } else {
                p
            }
        })
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The daemon's version (its clap definition carries tftpd's CARGO_PKG_VERSION), used as is:
/// a native package, built from this tree rather than from an upstream tarball.
fn version() -> String {
    tftpd::cli::Cli::command()
        .get_version()
        .unwrap_or("0")
        .to_string()
}

fn build() -> anyhow::Result<Artifacts> {
    let version = version();
    let embeds_ebpf = build_ebpf::object_path().is_file();
    // Cargo rebuilds nothing when the release binary is current, so the test step reuses
    // the build of `cargo xtask test` or an earlier `cargo xtask dist`.
    exec(Command::new(env!("CARGO")).args([
        "build",
        "--release",
        "--locked",
        "--package",
        "tftpd",
    ]))?;
    let binary = target_dir().join("release/tftpd");
    if embeds_ebpf {
        eprintln!("xtask: the binary embeds the eBPF object (built by `cargo xtask build-ebpf`)");
    } else {
        eprintln!(
            "xtask: no eBPF object at {}: the packaged binary will use the userspace filter \
             (run `cargo xtask build-ebpf` first to embed it)",
            build_ebpf::object_path().display()
        );
    }
    check_unit_agrees()?;

    let out = target_dir().join("dist");
    if out.exists() {
        fs::remove_dir_all(&out).with_context(|| format!("removing {}", out.display()))?;
    }
    let date = SourceDate::get()?;
    let man = out.join("man");
    let pages = write_man_pages(&man, &date)?;
    let completions = out.join("completions");
    write_completions(&completions)?;

    let arch = capture(Command::new("dpkg").arg("--print-architecture"))?;
    let stage = out.join(format!("deb/{PACKAGE}_{version}_{arch}"));
    stage_tree(&stage, &binary, &man, &pages, &completions, &date)?;
    let depends = depends(&stage, &out)?;
    write_control(&stage, &arch, &depends)?;
    let deb = out.join(format!("{PACKAGE}_{version}_{arch}.deb"));
    exec(
        Command::new("dpkg-deb")
            .args(["--build", "--root-owner-group"])
            .arg(&stage)
            .arg(&deb),
    )?;
    eprintln!("xtask: built {}", deb.display());
    Ok(Artifacts { deb, embeds_ebpf })
}

/// The unit runs the packaged binary on the packaged config; tftpd drops to the config's
/// `user` itself, so the unit must not set User= (it would stop the bind to port 69).
fn check_unit_agrees() -> anyhow::Result<()> {
    let path = workspace_root().join("dist/systemd/tftpd.service");
    let unit = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let exec_start = format!("ExecStart={BINARY} --config {CONFIG}");
    if !unit.lines().any(|l| l.trim() == exec_start) {
        bail!(
            "{} must contain `{exec_start}` to match the package",
            path.display()
        );
    }
    if unit.lines().any(|l| l.trim_start().starts_with("User=")) {
        bail!(
            "{} sets User=, but tftpd binds as root and drops to `user` itself",
            path.display()
        );
    }
    let config = workspace_root().join("dist/debian/tftpd.toml");
    let text =
        fs::read_to_string(&config).with_context(|| format!("reading {}", config.display()))?;
    let parsed = tftpd::config::Config::from_toml_str(&text, None)
        .with_context(|| format!("parsing {}", config.display()))?;
    if parsed.root != Path::new("/srv/tftp") || parsed.user != "tftp" {
        bail!(
            "{} must serve /srv/tftp as user tftp (what postinst creates); it has root {} and user {}",
            config.display(),
            parsed.root.display(),
            parsed.user
        );
    }
    Ok(())
}

/// The date the package claims: SOURCE_DATE_EPOCH, else the last commit's, so two builds of
/// one commit are identical.
struct SourceDate {
    /// 2026-11-25, for the man pages.
    day: String,
    /// RFC 2822, for the changelog.
    rfc2822: String,
}

impl SourceDate {
    fn get() -> anyhow::Result<Self> {
        let epoch = match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(e) => e,
            Err(_) => capture(
                Command::new("git")
                    .args(["log", "-1", "--format=%ct"])
                    .current_dir(workspace_root()),
            )?,
        };
        let date =
            |fmt: &str| capture(Command::new("date").args(["-u", "-d", &format!("@{epoch}"), fmt]));
        Ok(Self {
            day: date("+%Y-%m-%d")?,
            rfc2822: date("-R")?,
        })
    }
}

/// The package's files, with the modes Debian expects whatever the umask.
fn stage_tree(
    stage: &Path,
    binary: &Path,
    man: &Path,
    pages: &[String],
    completions: &Path,
    date: &SourceDate,
) -> anyhow::Result<()> {
    let debian = workspace_root().join("dist/debian");
    let systemd = workspace_root().join("dist/systemd");
    let doc = format!("usr/share/doc/{PACKAGE}");

    let sbin = stage.join(BINARY.trim_start_matches('/'));
    copy(binary, &sbin, 0o755)?;
    // As dh_strip does: the debug info stays in the build tree, the package ships code.
    exec(
        Command::new("strip")
            .args([
                "--strip-unneeded",
                "--remove-section=.comment",
                "--remove-section=.note",
            ])
            .arg(&sbin),
    )?;
    // Debian 13 (trixie) ships units under /usr only (DEP 17); /lib is a symlink there.
    for unit in ["tftpd.service", "tftpd.socket"] {
        copy(
            &systemd.join(unit),
            &stage.join(UNIT_DIR.trim_start_matches('/')).join(unit),
            0o644,
        )?;
    }
    // Not installed as a drop-in: it adds CAP_SYS_ADMIN, which only kernels before 5.8 need.
    copy(
        &systemd.join("tftpd-sys-admin.conf"),
        &stage.join(&doc).join("examples/sys-admin.conf"),
        0o644,
    )?;
    copy(
        &debian.join("tftpd.toml"),
        &stage.join(CONFIG.trim_start_matches('/')),
        0o644,
    )?;
    for page in pages {
        // The section is the file name's last extension: tftpd.toml.5 goes to man5.
        let section = page.rsplit('.').next().unwrap_or("8");
        gzip_into(
            &man.join(page),
            &stage.join(format!("usr/share/man/man{section}/{page}.gz")),
        )?;
    }
    copy(
        &completions.join("tftpd.bash"),
        &stage.join("usr/share/bash-completion/completions/tftpd"),
        0o644,
    )?;
    copy(
        &completions.join("_tftpd"),
        &stage.join("usr/share/zsh/vendor-completions/_tftpd"),
        0o644,
    )?;
    copy(
        &completions.join("tftpd.fish"),
        &stage.join("usr/share/fish/vendor_completions.d/tftpd.fish"),
        0o644,
    )?;
    copy(
        &debian.join("copyright"),
        &stage.join(&doc).join("copyright"),
        0o644,
    )?;
    copy(
        &debian.join("README.Debian"),
        &stage.join(&doc).join("README.Debian"),
        0o644,
    )?;
    let changelog = stage.join(&doc).join("changelog");
    write(&changelog, changelog_text(date).as_bytes(), 0o644)?;
    gzip_in_place(&changelog)?;

    let control = stage.join("DEBIAN");
    for script in ["preinst", "postinst", "prerm", "postrm"] {
        copy(&debian.join(script), &control.join(script), 0o755)?;
    }
    write(
        &control.join("conffiles"),
        format!("{CONFIG}\n").as_bytes(),
        0o644,
    )?;
    let md5sums = capture(
        Command::new("sh")
            .args(["-c", "find . -path ./DEBIAN -prune -o -type f -printf '%P\\0' | sort -z | xargs -0 md5sum"])
            .current_dir(stage),
    )?;
    write(
        &control.join("md5sums"),
        format!("{md5sums}\n").as_bytes(),
        0o644,
    )?;
    // Directories: 0755 whatever the umask made them.
    for dir in walk_dirs(stage)? {
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
            .with_context(|| format!("chmod 0755 {}", dir.display()))?;
    }
    Ok(())
}

/// A native package's changelog (Debian policy 12.7), one entry for this version.
fn changelog_text(date: &SourceDate) -> String {
    let version = version();
    format!(
        "{PACKAGE} ({version}) unstable; urgency=medium\n\n  \
         * Local build of tftpd {version} with `cargo xtask dist`.\n\n \
         -- {MAINTAINER}  {}\n",
        date.rfc2822
    )
}

/// Depends: what dpkg-shlibdeps finds the binary links against, plus adduser for postinst.
fn depends(stage: &Path, out: &Path) -> anyhow::Result<String> {
    // dpkg-shlibdeps insists on a debian/control naming the package.
    let work = out.join("shlibdeps");
    write(
        &work.join("debian/control"),
        format!("Source: {PACKAGE}\n\nPackage: {PACKAGE}\nArchitecture: any\n").as_bytes(),
        0o644,
    )?;
    let line = capture(
        Command::new("dpkg-shlibdeps")
            .arg("-O")
            .arg(stage.join(BINARY.trim_start_matches('/')))
            .current_dir(&work),
    )?;
    let shlibs = line
        .lines()
        .find_map(|l| l.strip_prefix("shlibs:Depends="))
        .with_context(|| format!("dpkg-shlibdeps printed no shlibs:Depends line: {line:?}"))?;
    Ok(format!("{shlibs}, adduser"))
}

fn write_control(stage: &Path, arch: &str, depends: &str) -> anyhow::Result<()> {
    let size_kib = capture(
        Command::new("du")
            .args(["-sk", "--exclude=DEBIAN", "."])
            .current_dir(stage),
    )?;
    let size_kib = size_kib.split_whitespace().next().unwrap_or("0");
    let version = version();
    let control = format!(
        "Package: {PACKAGE}\n\
         Version: {version}\n\
         Architecture: {arch}\n\
         Maintainer: {MAINTAINER}\n\
         Installed-Size: {size_kib}\n\
         Depends: {depends}\n\
         Section: net\n\
         Priority: optional\n\
         Description: {SYNOPSIS}\n \
         tftpd serves files over TFTP for network boot and device provisioning (PXE,\n \
         routers, phones, embedded boards). It implements RFC 1350 with option\n \
         negotiation (blksize, timeout, tsize, windowsize), resolves every path beneath\n \
         the served root, keeps uploads off by default, drops root after binding, and\n \
         can drop non-TFTP datagrams in the kernel with eBPF socket filters.\n \
         .\n \
         The package installs a systemd service and socket but enables neither.\n"
    );
    write(&stage.join("DEBIAN/control"), control.as_bytes(), 0o644)
}

/// Runs a command and returns its trimmed stdout, failing with the command line and stderr.
fn capture(cmd: &mut Command) -> anyhow::Result<String> {
    let line = format!("{cmd:?}");
    let output = cmd.output().with_context(|| format!("starting {line}"))?;
    if !output.status.success() {
        bail!(
            "{line} failed with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}
