//! The package test in `cargo xtask test` (root only): build the .deb, lint it, install it,
//! read both man pages with `man`, run the installed daemon on the installed config (only
//! `listen` overridden, to a free loopback port), download a file with tftp-hpa and compare
//! bytes, stop it with SIGTERM, then purge the package and undo what the test added, so the
//! machine is left as it was. Every wait is bounded.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::{BINARY, CONFIG, PACKAGE, UNIT_DIR, capture};
use crate::{exec, have};

mod machine_state;
use machine_state::{MachineState, enable_as_an_administrator, test_file};

/// How long the installed daemon may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one tftp download may take (seconds, for `timeout`).
const DOWNLOAD_TIMEOUT_SECS: &str = "20";
/// How long the daemon may take to exit after SIGTERM (its drain has nothing to wait for).
const EXIT_TIMEOUT: Duration = Duration::from_secs(15);
/// Bound on dpkg, lintian and man (seconds, for `timeout`).
const TOOL_TIMEOUT_SECS: &str = "300";

/// The served directory the packaged config names.
const ROOT: &str = "/srv/tftp";

pub(crate) fn run() -> anyhow::Result<()> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if !is_root() {
        if ci {
            bail!("CI=true but not root: the Debian package test cannot install the package");
        }
        eprintln!("xtask: skipping: the Debian package test needs root (it runs dpkg -i)");
        return Ok(());
    }
    for tool in [
        "dpkg-deb",
        "dpkg-shlibdeps",
        "man",
        "tftp",
        "timeout",
        "lintian",
    ] {
        if !have(tool) {
            bail!("the Debian package test needs `{tool}` (cargo xtask setup installs it)");
        }
    }
    let installed = capture(Command::new("dpkg-query").args(["-W", "-f=${Status}", PACKAGE]));
    if installed.is_ok_and(|s| s.contains("installed") && !s.contains("not-installed")) {
        bail!("{PACKAGE} is already installed here; the test would replace and then purge it");
    }
    let artifacts = super::build()?;
    lint(&artifacts.deb)?;

    let before = MachineState::record();
    let result = installed_package_works(&artifacts.deb, artifacts.embeds_ebpf);
    let cleanup = before.restore();
    result?;
    cleanup?;
    eprintln!(
        "xtask: Debian package test passed ({})",
        artifacts.deb.display()
    );
    Ok(())
}

fn is_root() -> bool {
    capture(Command::new("id").arg("-u")).is_ok_and(|u| u == "0")
}

/// Lintian errors fail the step; warnings and pedantic tags are reported only.
fn lint(deb: &Path) -> anyhow::Result<()> {
    let output = Command::new("timeout")
        .args([
            TOOL_TIMEOUT_SECS,
            "lintian",
            "--pedantic",
            "--info",
            "--no-tag-display-limit",
        ])
        .arg(deb)
        .output()
        .context("running lintian")?;
    let text = String::from_utf8_lossy(&output.stdout);
    for line in text.lines().filter(|l| !l.starts_with("N:")) {
        eprintln!("xtask: lintian: {line}");
    }
    if text
        .lines()
        .all(|l| l.starts_with("N:") || l.trim().is_empty())
    {
        eprintln!("xtask: lintian --pedantic: no tags on {}", deb.display());
    }
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("E:")).collect();
    if !errors.is_empty() {
        bail!(
            "lintian reports errors on {}:\n{}",
            deb.display(),
            errors.join("\n")
        );
    }
    // Exit 1 with no E: line would be an internal failure, e.g. an unreadable package.
    if !output.status.success() && errors.is_empty() && !text.lines().any(|l| l.starts_with("W:")) {
        bail!(
            "lintian failed on {} ({}): {}",
            deb.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

fn installed_package_works(deb: &Path, embeds_ebpf: bool) -> anyhow::Result<()> {
    exec(
        Command::new("timeout")
            .args([TOOL_TIMEOUT_SECS, "dpkg", "-i"])
            .arg(deb),
    )?;
    let service = format!("{UNIT_DIR}/tftpd.service");
    let socket = format!("{UNIT_DIR}/tftpd.socket");
    for path in [BINARY, CONFIG, service.as_str(), socket.as_str()] {
        if !Path::new(path).is_file() {
            bail!("dpkg -i did not install {path}");
        }
    }
    capture(Command::new("getent").args(["passwd", "tftp"]))
        .context("postinst did not create the tftp user")?;
    enable_as_an_administrator()?;
    if !Path::new(ROOT).is_dir() {
        bail!("postinst did not create {ROOT}");
    }
    man_renders(&["8", "tftpd"], "--check-config")?;
    // The sections xtask adds after clap's, so the page is ours and not tftpd-hpa's alias.
    man_renders(&["8", "tftpd"], "SIGNALS")?;
    man_renders(&["5", "tftpd.toml"], "max_transfers_per_client")?;
    man_renders(&["8", "tftpd-stats"], "--pin-dir")?;
    exec(Command::new(BINARY).args(["--config", CONFIG, "--check-config"]))?;
    serves_a_file(embeds_ebpf)
}

/// `man SECTION PAGE` renders without warnings, and the text is this package's page.
fn man_renders(args: &[&str], expected: &str) -> anyhow::Result<()> {
    let output = Command::new("timeout")
        .args([TOOL_TIMEOUT_SECS, "man", "--warnings", "-P", "cat"])
        .args(args)
        // Wide enough that no expected word is hyphenated; a pipe gets no overstrike.
        .env("MANWIDTH", "200")
        .env_remove("MAN_KEEP_FORMATTING")
        .output()
        .with_context(|| format!("running man {}", args.join(" ")))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let warnings = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() || !text.contains(expected) {
        bail!(
            "man {} did not render the packaged page ({}; it should mention {expected}): {}",
            args.join(" "),
            output.status,
            warnings.trim()
        );
    }
    if !warnings.trim().is_empty() {
        bail!("man {} warns: {}", args.join(" "), warnings.trim());
    }
    eprintln!(
        "xtask: man {} renders ({} lines, mentions {expected})",
        args.join(" "),
        text.lines().count()
    );
    Ok(())
}

/// Starts the installed daemon on the installed config, fetches a file, stops it.
fn serves_a_file(embeds_ebpf: bool) -> anyhow::Result<()> {
    // Bytes that would be damaged by a netascii conversion or a wrong block boundary.
    let content: Vec<u8> = (0..70_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let file = test_file();
    std::fs::write(&file, &content).with_context(|| format!("writing {}", file.display()))?;
    let mut daemon = Daemon::start()?;
    let result = download(&daemon, &file, &content);
    let log = daemon.stop();
    result.with_context(|| format!("daemon log:\n{}", daemon.log()))?;
    log?;
    // Root and an embedded object: the packaged binary must really attach its filters.
    let log = daemon.log();
    if embeds_ebpf && !log.contains("eBPF socket filters attached") {
        bail!("the binary embeds the eBPF object but did not attach its filters:\n{log}");
    }
    Ok(())
}

fn download(daemon: &Daemon, file: &Path, expected: &[u8]) -> anyhow::Result<()> {
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .context("test file name")?;
    let dest = std::env::temp_dir().join(format!("xtask-dist-download-{}", std::process::id()));
    let _ = std::fs::remove_file(&dest);
    let output = Command::new("timeout")
        .args([DOWNLOAD_TIMEOUT_SECS, "tftp", "-m", "binary", "127.0.0.1"])
        .arg(daemon.port.to_string())
        .args(["-c", "get", name])
        .arg(&dest)
        .output()
        .context("running tftp")?;
    let got = std::fs::read(&dest);
    let _ = std::fs::remove_file(&dest);
    if !output.status.success() {
        bail!(
            "tftp get {name} from 127.0.0.1:{} failed ({}): {}{}",
            daemon.port,
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let got = got.with_context(|| format!("tftp wrote no {}", dest.display()))?;
    if got != expected {
        bail!(
            "downloaded {name}: {} bytes that differ from the {} served",
            got.len(),
            expected.len()
        );
    }
    eprintln!(
        "xtask: downloaded {} bytes with tftp-hpa from the installed tftpd; bytes match",
        got.len()
    );
    Ok(())
}

/// The installed daemon, its stderr collected by a thread.
struct Daemon {
    child: Child,
    port: u16,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Daemon {
    fn start() -> anyhow::Result<Self> {
        let mut child = Command::new(BINARY)
            .args(["--config", CONFIG, "--listen", "127.0.0.1:0"])
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {BINARY}"))?;
        let stderr = child.stderr.take().context("the daemon's stderr")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut daemon = Self {
            child,
            port: 0,
            lines,
            seen: Vec::new(),
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match daemon.lines.recv_timeout(left) {
                Ok(line) => {
                    let port = ready_port(&line);
                    daemon.seen.push(line);
                    if let Some(port) = port {
                        daemon.port = port;
                        return Ok(daemon);
                    }
                }
                Err(_) => {
                    let _ = daemon.child.kill();
                    let _ = daemon.child.wait();
                    bail!(
                        "{BINARY} printed no ready line within {READY_TIMEOUT:?}:\n{}",
                        daemon.log()
                    );
                }
            }
        }
    }

    /// SIGTERM, then wait (bounded) for exit 0.
    fn stop(&mut self) -> anyhow::Result<()> {
        exec(Command::new("kill").args(["-TERM", &self.child.id().to_string()]))?;
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().context("waiting for the daemon")? {
                self.drain();
                if !status.success() {
                    bail!("{BINARY} exited with {status} after SIGTERM");
                }
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("{BINARY} did not exit within {EXIT_TIMEOUT:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Collects what the reader thread has so far.
    fn drain(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(line);
        }
    }

    fn log(&self) -> String {
        self.seen.join("\n")
    }
}

/// The port in a `tftpd ready listen=127.0.0.1:PORT` line.
fn ready_port(line: &str) -> Option<u16> {
    if !line.contains("tftpd ready") {
        return None;
    }
    line.split_whitespace()
        .filter_map(|w| w.strip_prefix("listen=127.0.0.1:"))
        .map(|p| p.trim_end_matches(|c: char| !c.is_ascii_digit()))
        .find_map(|p| p.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::ready_port;

    #[test]
    fn the_port_is_read_from_the_ready_line() {
        let line = "2026-11-25T07:00:00Z  INFO tftpd: tftpd ready listen=127.0.0.1:41234";
        assert_eq!(ready_port(line), Some(41234));
        assert_eq!(ready_port("tftpd starting listen=127.0.0.1:69"), None);
    }
}
