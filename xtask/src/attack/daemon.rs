//! The daemon under attack: the real binary with its default configuration on loopback, a
//! temporary root holding the sample files, a metrics endpoint to read what it did, and its
//! log captured byte for byte. Started as root it drops to `nobody` exactly as in production
//! (no `--user` is passed); started by anyone else it keeps its user.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::legit::Clients;

/// How long the daemon may take to print its ready line.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one scrape of `/metrics` may take.
pub(crate) const SCRAPE_TIMEOUT: Duration = Duration::from_secs(3);
/// How often a condition is polled.
pub(crate) const POLL: Duration = Duration::from_millis(20);

/// The files every root holds: (name, size).
pub(crate) const SAMPLE_FILES: [(&str, usize); 3] = [
    // The reflection RRQ asks for it by a 5-byte name (a 14-byte RRQ); the boot storm's file.
    ("f.bin", 64 * 1024),
    // What the legitimate clients download.
    ("legit.bin", 1024 * 1024),
    // The single-port blind-ACK attack pulls it to its victim.
    ("4M.bin", 4 * 1024 * 1024),
];

/// What the attacks run against: the daemon binary and the legitimate clients.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) tftpd: PathBuf,
    pub(crate) clients: Clients,
}

/// A unique name for this process's `n`-th temporary thing (tag `atk`).
fn unique(what: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "tftpd-atk-{what}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Deterministic content of a sample file.
pub(crate) fn content(name: &str, size: usize) -> Vec<u8> {
    let seed = name
        .bytes()
        .fold(17u64, |h, b| h.wrapping_mul(31) + u64::from(b));
    (0..size as u64)
        .map(|i| (i.wrapping_mul(seed) ^ (i >> 11)) as u8)
        .collect()
}

/// A served root with the sample files, and a scratch directory beside it (config, client
/// output) that nothing can download. Both are removed on drop.
pub(crate) struct Workdir {
    root: PathBuf,
    scratch: PathBuf,
}

impl Workdir {
    pub(crate) fn new() -> anyhow::Result<Self> {
        use std::os::unix::fs::PermissionsExt as _;
        let base = std::env::temp_dir();
        let w = Self {
            root: base.join(unique("root")),
            scratch: base.join(unique("scratch")),
        };
        for dir in [&w.root, &w.scratch] {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        // World-writable: a daemon that dropped to `nobody` stores uploads here.
        std::fs::set_permissions(&w.root, std::fs::Permissions::from_mode(0o777))?;
        for (name, size) in SAMPLE_FILES {
            std::fs::write(w.root.join(name), content(name, size))?;
        }
        Ok(w)
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn scratch(&self) -> &Path {
        &self.scratch
    }

    /// Names in the root that are not sample files (uploads, temporary files), sorted, with
    /// their sizes.
    pub(crate) fn extra_files(&self) -> anyhow::Result<Vec<(String, u64)>> {
        let mut v = Vec::new();
        for e in std::fs::read_dir(&self.root)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !SAMPLE_FILES.iter().any(|(n, _)| *n == name) {
                v.push((name, e.metadata()?.len()));
            }
        }
        v.sort();
        Ok(v)
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// The running daemon; killed on drop.
pub(crate) struct Daemon {
    child: Child,
    log: Arc<Mutex<Vec<u8>>>,
    addr: SocketAddr,
    metrics: SocketAddr,
    pin_dir: PathBuf,
}

impl Daemon {
    /// Starts `target`'s daemon on `dir`'s root with the default configuration plus `config`
    /// (TOML; top-level keys before any table), listening on 127.0.0.1 at a free port.
    pub(crate) fn start(target: &Target, dir: &Workdir, config: &str) -> anyhow::Result<Self> {
        // The one departure from the defaults: a pin directory of our own, because the
        // default one belongs to whichever tftpd runs on this host (eBPF builds only).
        let pin_dir = PathBuf::from("/sys/fs/bpf").join(unique("pins"));
        let path = dir.scratch().join(unique("config") + ".toml");
        std::fs::write(
            &path,
            format!("{config}\n[ebpf]\npin_dir = \"{}\"\n", pin_dir.display()),
        )?;
        let metrics = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()?));
        let mut child = Command::new(&target.tftpd)
            .arg("--config")
            .arg(&path)
            .arg("--root")
            .arg(dir.root())
            .args(["--listen", "127.0.0.1:0", "--metrics-listen"])
            .arg(metrics.to_string())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", target.tftpd.display()))?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut stderr = child.stderr.take().context("the daemon's stderr")?;
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .extend_from_slice(&buf[..n]);
            }
        });
        let mut d = Self {
            child,
            log,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics,
            pin_dir,
        };
        d.addr = d.wait_ready()?;
        Ok(d)
    }

    /// The listening address, read from the ready line.
    fn wait_ready(&mut self) -> anyhow::Result<SocketAddr> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let text = self.log_text();
            if let Some(line) = text.lines().find(|l| l.contains("tftpd ready")) {
                let addr = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("listen="))
                    .map(|a| a.trim_end_matches(|c: char| !c.is_ascii_digit()))
                    .context("the ready line names no listen address")?;
                let addr: SocketAddr = addr.parse().context("the ready line's address")?;
                // The metrics endpoint may come up just after the ready line.
                if wait_until(START_TIMEOUT, || TcpStream::connect(self.metrics).is_ok()) {
                    return Ok(addr);
                }
                bail!("the metrics endpoint {} never answered", self.metrics);
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("tftpd exited ({status}) before it was ready:\n{text}");
            }
            if Instant::now() > deadline {
                bail!("tftpd printed no ready line within {START_TIMEOUT:?}:\n{text}");
            }
            std::thread::sleep(POLL);
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The metrics endpoint's address.
    pub(crate) fn metrics_addr(&self) -> SocketAddr {
        self.metrics
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Who the daemon runs as: "nobody (uid 65534)", from /proc/PID/status.
    pub(crate) fn identity(&self) -> anyhow::Result<String> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let uid: u32 = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .context("no effective uid in /proc/PID/status")?
            .parse()?;
        let name = nix::unistd::User::from_uid(uid.into())
            .ok()
            .flatten()
            .map_or_else(|| "?".to_string(), |u| u.name);
        Ok(format!("{name} (uid {uid})"))
    }

    /// The packet filter the daemon chose, as its start-up line names it (`socket` for the
    /// eBPF socket filters, `cbpf`, `userspace`).
    pub(crate) fn filter_path(&self) -> String {
        self.log_text()
            .lines()
            .find(|l| l.contains("packet filter"))
            .and_then(|l| l.split("path=\"").nth(1))
            .and_then(|rest| rest.split('"').next())
            .unwrap_or("unknown")
            .to_string()
    }

    /// The log so far, as text (invalid UTF-8 shown as U+FFFD).
    pub(crate) fn log_text(&self) -> String {
        let log = self
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        String::from_utf8_lossy(&log).into_owned()
    }

    /// User plus system CPU seconds the daemon has used (proc(5): `utime`, `stime`).
    pub(crate) fn cpu_seconds(&self) -> anyhow::Result<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))?;
        let after = stat.rsplit_once(')').context("parsing /proc/PID/stat")?.1;
        let fields: Vec<&str> = after.split_whitespace().collect();
        // utime and stime are fields 14 and 15, i.e. 11 and 12 after the ")"; USER_HZ is 100.
        let ticks: u64 = fields.get(11).context("utime")?.parse::<u64>()?
            + fields.get(12).context("stime")?.parse::<u64>()?;
        Ok(ticks as f64 / 100.0)
    }

    /// File descriptors the daemon holds now.
    pub(crate) fn open_fds(&self) -> anyhow::Result<usize> {
        Ok(std::fs::read_dir(format!("/proc/{}/fd", self.pid()))?.count())
    }

    /// One scrape of `/metrics` (body only), bounded by `timeout`.
    pub(crate) fn scrape(&self, timeout: Duration) -> anyhow::Result<String> {
        let mut s = TcpStream::connect_timeout(&self.metrics, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        match text.split_once("\r\n\r\n") {
            Some((head, body)) if head.starts_with("HTTP/1.1 200") => Ok(body.to_string()),
            _ => bail!("the metrics endpoint answered {text:?}"),
        }
    }

    /// The sum of every series of metric `name` whose labels contain `labels` (e.g.
    /// `outcome="busy"`); 0 when there is none.
    pub(crate) fn metric(&self, name: &str, labels: &str) -> anyhow::Result<f64> {
        Ok(metric_sum(&self.scrape(SCRAPE_TIMEOUT)?, name, labels))
    }

    /// SIGKILL, as the OOM killer or a power cut would end it, and reaped.
    pub(crate) fn kill9(&mut self) -> anyhow::Result<()> {
        self.child.kill().context("kill -9 tftpd")?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Killed, not drained: a drain would wait out the grace period for every transfer an
        // attack left behind. Pins of a killed daemon stay, so they are removed here.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.pin_dir);
    }
}

/// The sum of the series of `name` (with labels containing `labels`) in a metrics page.
pub(crate) fn metric_sum(body: &str, name: &str, labels: &str) -> f64 {
    body.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (series, value) = rest.rsplit_once(' ')?;
            let ok = (series.is_empty() || series.starts_with('{')) && series.contains(labels);
            ok.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// Polls `cond` until it holds (true) or `timeout` passes (false).
pub(crate) fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
fn free_tcp_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Raises this process's soft open-file limit to the hard one: thousands of spoofed sources
/// and idle connections each hold a descriptor.
pub(crate) fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_sums_match_name_and_labels_only() {
        let body = "tftpd_active_transfers 3\n\
                    tftpd_active_transfers_peak 9\n\
                    tftpd_requests_total{kind=\"read\",outcome=\"busy\"} 4\n\
                    tftpd_requests_total{kind=\"write\",outcome=\"busy\"} 1\n\
                    tftpd_requests_total{kind=\"read\",outcome=\"completed\"} 7\n";
        assert_eq!(metric_sum(body, "tftpd_active_transfers", ""), 3.0);
        assert_eq!(
            metric_sum(body, "tftpd_requests_total", "outcome=\"busy\""),
            5.0
        );
        assert_eq!(metric_sum(body, "tftpd_missing", ""), 0.0);
    }
}
