//! The container's smoke test (root only; in `cargo xtask test` and `cargo xtask container`):
//! start the image as production would, with only the capabilities the daemon needs and
//! a read-only root filesystem, in a network namespace of its own (`--network none`: loopback
//! only, so port 69 is its own), with a private bpffs for the pinned maps. Then, through that
//! namespace (nsenter), download a file with `curl tftp://` and compare bytes, read
//! `/metrics`, send datagrams that are not TFTP and see the filter count them, run the image's
//! HEALTHCHECK and `tftpd health` (which must fail for a missing file), check which
//! capabilities the daemon holds after its drop, restart it (the filters must attach again),
//! and stop it with SIGTERM (exit 0). Every
//! wait is bounded; everything made is removed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::{Image, build, podman, ulimits};
use crate::dist::capture;
use crate::exec;

/// How long the daemon may take to answer its first health probe.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the filter counters may take to show the junk (they are read at scrape time).
const COUNT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on each curl, podman exec and stop (seconds).
const TOOL_TIMEOUT_SECS: &str = "60";
/// Datagrams that are not TFTP requests (opcode 9 does not exist), sent to port 69.
const JUNK: usize = 5;

/// The capabilities the daemon needs, with eBPF and without (classic BPF needs none).
/// NET_BIND_SERVICE: port 69; BPF: load the socket filters and create their maps; CHOWN:
/// hand the pinned maps (and, on a restart, the pin directory) to `tftp` and back; SETUID,
/// SETGID: drop to it. Measured on Linux 6.18: without BPF or with podman's own seccomp
/// profile the maps cannot be created, without CHOWN a restart cannot pin, and both fall back
/// to classic BPF; PERFMON is not needed by these programs. NET_ADMIN only attaches XDP,
/// which the container config does not turn on.
const CAPS_EBPF: [&str; 5] = ["NET_BIND_SERVICE", "BPF", "CHOWN", "SETUID", "SETGID"];
const CAPS_CBPF: [&str; 3] = ["NET_BIND_SERVICE", "SETUID", "SETGID"];

pub(crate) fn run() -> anyhow::Result<()> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if !nix::unistd::geteuid().is_root() {
        if ci {
            bail!("CI=true but not root: the container smoke test needs root (podman, bpffs)");
        }
        eprintln!("xtask: skipping: the container smoke test needs root (podman, mount -t bpf)");
        return Ok(());
    }
    let started = Instant::now();
    let image = build()?;
    let built = started.elapsed();
    let smoke = Smoke::start(&image)?;
    let result = smoke.check(&image);
    let stopped = smoke.stop_and_remove();
    result.with_context(|| format!("container log:\n{}", smoke.log()))?;
    stopped?;
    eprintln!(
        "xtask: container smoke test passed ({}: built in {:.0?}, tested in {:.0?})",
        image.tag,
        built,
        started.elapsed() - built
    );
    Ok(())
}

/// The running container and what was made for it.
struct Smoke {
    name: String,
    root: PathBuf,
    bpffs: PathBuf,
    file: &'static str,
    content: Vec<u8>,
}

impl Smoke {
    fn start(image: &Image) -> anyhow::Result<Self> {
        let id = std::process::id();
        let base = std::env::temp_dir().join(format!("xtask-container-{id}"));
        let root = base.join("root");
        let bpffs = base.join("bpffs");
        for dir in [&root, &bpffs] {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        // Bytes a netascii conversion or a wrong block boundary would damage.
        let content: Vec<u8> = (0..70_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        let file = "smoke.bin";
        std::fs::write(root.join(file), &content).context("writing the served file")?;
        // The host may have no bpffs mounted; this one is the test's own, gone afterwards.
        exec(Command::new("mount").args(["-t", "bpf", "bpf"]).arg(&bpffs))?;
        let smoke = Self {
            name: format!("xtask-tftpd-smoke-{id}"),
            root,
            bpffs,
            file,
            content,
        };
        let caps: &[&str] = if image.embeds_ebpf {
            &CAPS_EBPF
        } else {
            &CAPS_CBPF
        };
        let started = exec(
            podman()
                .args([
                    "run",
                    "--detach",
                    "--name",
                    &smoke.name,
                    "--network",
                    "none",
                ])
                .args(["--cap-drop", "ALL", "--cap-add", &caps.join(",")])
                .args(["--read-only", "--security-opt", "no-new-privileges"])
                .args(ulimits())
                .arg("--security-opt")
                .arg(format!("seccomp={}", image.seccomp.display()))
                .arg("--volume")
                .arg(format!("{}:/srv/tftp:ro", smoke.root.display()))
                .arg("--volume")
                .arg(format!("{}:/sys/fs/bpf", smoke.bpffs.display()))
                .arg(&image.tag),
        );
        if let Err(e) = started {
            let _ = smoke.stop_and_remove();
            return Err(e);
        }
        Ok(smoke)
    }

    fn check(&self, image: &Image) -> anyhow::Result<()> {
        self.wait_healthy()?;
        let pid = self.pid()?;
        self.downloads(&pid)?;
        self.filter_counts_junk(&pid, image)?;
        exec(Command::new("timeout").args([
            TOOL_TIMEOUT_SECS,
            "podman",
            "healthcheck",
            "run",
            &self.name,
        ]))
        .context("the image's HEALTHCHECK")?;
        self.health_fails_for_a_missing_file()?;
        capabilities_dropped(&pid)?;
        // A restart finds the pin directory the last run handed to `tftp`; the filters must
        // attach again (root holds no CAP_DAC_OVERRIDE to enter it).
        exec(Command::new("timeout").args([
            TOOL_TIMEOUT_SECS,
            "podman",
            "restart",
            "--time",
            "45",
            &self.name,
        ]))?;
        self.wait_healthy()?;
        let pid = self.pid()?;
        self.filter_counts_junk(&pid, image)
            .context("after a restart")
    }

    fn pid(&self) -> anyhow::Result<String> {
        capture(podman().args(["inspect", "--format", "{{.State.Pid}}", &self.name]))
    }

    /// Junk sent to port 69 is dropped and counted by the filter the binary should use.
    fn filter_counts_junk(&self, pid: &str, image: &Image) -> anyhow::Result<()> {
        let before = filter_drops(&self.metrics(pid)?).1;
        self.send_junk(pid)?;
        let deadline = Instant::now() + COUNT_TIMEOUT;
        let (path, after) = loop {
            let metrics = self.metrics(pid)?;
            let (path, after) = filter_drops(&metrics);
            if after >= before + JUNK as u64 {
                if !metrics.lines().any(|l| l.starts_with("tftpd_build_info")) {
                    bail!("/metrics has no tftpd_build_info");
                }
                break (path, after);
            }
            if Instant::now() >= deadline {
                bail!(
                    "{JUNK} junk datagrams sent, the filter counted {after} drops (from {before}) within {COUNT_TIMEOUT:?}"
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let expected = if image.embeds_ebpf { "socket" } else { "cbpf" };
        if path.as_deref() != Some(expected) {
            bail!("the drops were counted on path {path:?}, not the {expected:?} filter");
        }
        eprintln!(
            "xtask: container: the {expected} filter dropped {JUNK} junk datagrams ({after} in all)"
        );
        Ok(())
    }

    /// Polls `tftpd health --file` in the container: the first success means TFTP and
    /// metrics both answer.
    fn wait_healthy(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let out = Command::new("timeout")
                .args([TOOL_TIMEOUT_SECS, "podman", "exec", &self.name])
                .args(["/usr/sbin/tftpd", "health", "--file", self.file])
                .output()
                .context("running podman exec tftpd health")?;
            if out.status.success() {
                for line in String::from_utf8_lossy(&out.stdout).lines() {
                    eprintln!("xtask: container: {line}");
                }
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "tftpd health did not pass within {READY_TIMEOUT:?}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn health_fails_for_a_missing_file(&self) -> anyhow::Result<()> {
        let out = Command::new("timeout")
            .args([TOOL_TIMEOUT_SECS, "podman", "exec", &self.name])
            .args(["/usr/sbin/tftpd", "health", "--file", "no-such-file"])
            .output()
            .context("running podman exec tftpd health")?;
        let said = String::from_utf8_lossy(&out.stderr);
        if out.status.code() != Some(1) || !said.contains("ERROR 1") {
            bail!(
                "tftpd health of a missing file must exit 1 naming ERROR 1; got {}: {said}",
                out.status
            );
        }
        eprintln!(
            "xtask: container: tftpd health of a missing file exits 1: {}",
            said.trim()
        );
        Ok(())
    }

    /// curl in the container's network namespace, as a client on its network would be.
    fn curl(&self, pid: &str, url: &str, out: &Path) -> anyhow::Result<()> {
        exec(
            Command::new("nsenter")
                .args(["--target", pid, "--net", "curl", "--silent", "--show-error"])
                .args(["--max-time", TOOL_TIMEOUT_SECS, "--output"])
                .arg(out)
                .arg(url),
        )
    }

    fn downloads(&self, pid: &str) -> anyhow::Result<()> {
        let out = self.root.with_file_name("download");
        self.curl(pid, &format!("tftp://127.0.0.1/{}", self.file), &out)?;
        let got = std::fs::read(&out).context("curl wrote nothing")?;
        if got != self.content {
            bail!(
                "curl tftp:// got {} bytes that differ from the {} served",
                got.len(),
                self.content.len()
            );
        }
        eprintln!(
            "xtask: container: curl tftp:// downloaded {} bytes; bytes match",
            got.len()
        );
        Ok(())
    }

    fn metrics(&self, pid: &str) -> anyhow::Result<String> {
        let out = self.root.with_file_name("metrics");
        self.curl(pid, "http://127.0.0.1:9169/metrics", &out)?;
        std::fs::read_to_string(&out).context("reading the scraped metrics")
    }

    fn send_junk(&self, pid: &str) -> anyhow::Result<()> {
        let script = format!(
            "for i in $(seq {JUNK}); do printf '\\000\\011junk' > /dev/udp/127.0.0.1/69; done"
        );
        exec(Command::new("nsenter").args(["--target", pid, "--net", "bash", "-c", &script]))
    }

    fn log(&self) -> String {
        capture(podman().args(["logs", &self.name]))
            .unwrap_or_else(|e| format!("(podman logs failed: {e:#})"))
    }

    /// SIGTERM with the DaemonSet's grace period; tftpd must exit 0. Then removes it all.
    fn stop_and_remove(&self) -> anyhow::Result<()> {
        let stopped = exec(Command::new("timeout").args([
            TOOL_TIMEOUT_SECS,
            "podman",
            "stop",
            "--time",
            "45",
            &self.name,
        ]));
        let code =
            capture(podman().args(["inspect", "--format", "{{.State.ExitCode}}", &self.name]));
        let _ = podman().args(["rm", "--force", &self.name]).output();
        let unmounted = exec(Command::new("umount").arg(&self.bpffs));
        if let Some(base) = self.root.parent() {
            let _ = std::fs::remove_dir_all(base);
        }
        stopped?;
        unmounted?;
        match code?.as_str() {
            "0" => Ok(()),
            other => bail!("tftpd in the container exited with {other} after SIGTERM, not 0"),
        }
    }
}

/// The filter path that counted drops, and the drops summed over every reason.
fn filter_drops(metrics: &str) -> (Option<String>, u64) {
    let mut path = None;
    let mut total = 0;
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("tftpd_filter_packets_total{"))
    {
        if !line.contains("verdict=\"drop\"") {
            continue;
        }
        let n: u64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if n > 0 {
            path = line
                .split("path=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .map(str::to_string);
        }
        total += n;
    }
    (path, total)
}

/// After the drop to `tftp` the daemon holds no capability at all (effective, permitted).
fn capabilities_dropped(pid: &str) -> anyhow::Result<()> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or("?")
            .to_string()
    };
    let (eff, prm, bnd) = (field("CapEff:"), field("CapPrm:"), field("CapBnd:"));
    if eff != "0000000000000000" || prm != "0000000000000000" {
        bail!("tftpd still holds capabilities after its drop: CapEff {eff}, CapPrm {prm}");
    }
    eprintln!("xtask: container: after the drop CapEff and CapPrm are 0 (bounding set {bnd})");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::filter_drops;

    #[test]
    fn drops_are_summed_over_reasons_and_the_path_is_read() {
        let m = "tftpd_filter_packets_total{path=\"socket\",verdict=\"drop\",reason=\"bad_opcode\"} 5\n\
                 tftpd_filter_packets_total{path=\"socket\",verdict=\"drop\",reason=\"too_short\"} 2\n\
                 tftpd_filter_packets_total{path=\"socket\",verdict=\"pass\",reason=\"passed\"} 9\n";
        assert_eq!(filter_drops(m), (Some("socket".to_string()), 7));
        assert_eq!(filter_drops("tftpd_up 1\n"), (None, 0));
    }
}
