//! The servers under test: this daemon and the established peers, how each is installed,
//! started (inside its own cgroup, so forked children are counted too) and stopped.

use std::ffi::OsString;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::measure::Cgroup;
use super::peers::{self, Package};

/// dnsmasq serves TFTP only on port 69, so every server takes its turn there.
pub(super) const LISTEN: &str = "127.0.0.1:69";
/// How long a server may take to answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A server the bench compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Server {
    Tftpd,
    /// This daemon with every fast path off: the portable path the fast paths are
    /// measured against (issue #5).
    TftpdPortable,
    /// This daemon with adaptive retransmission off (`protocol.adaptive_timeout = false`):
    /// what the adaptive timer is measured against on the noisy-link rows (issue #22).
    TftpdFixed,
    TftpHpa,
    Atftpd,
    Dnsmasq,
    /// `tftp-load raw-server --engine epoll`: a TFTP-shaped responder with no server logic,
    /// the concurrent rows' ceiling (never a peer).
    RawEpoll,
    /// The same on one io_uring for every transfer: what a shared ring is worth.
    RawUring,
}

impl Server {
    pub(super) const ALL: [Self; 5] = [
        Self::Tftpd,
        Self::TftpdPortable,
        Self::TftpHpa,
        Self::Atftpd,
        Self::Dnsmasq,
    ];

    /// Run by default in the concurrent scenarios only: the raw references (the
    /// single-client rows have `tftp-load ceiling`).
    pub(super) const REFERENCES: [Self; 2] = [Self::RawEpoll, Self::RawUring];

    /// Run by default in the noisy-link scenarios only (loss or delay): on a clean fast
    /// link the fixed timer never fires, so it would only repeat `tftpd`.
    pub(super) const NOISY_ONLY: [Self; 1] = [Self::TftpdFixed];

    /// Every server `--servers` knows.
    fn every() -> impl Iterator<Item = Self> {
        Self::ALL
            .into_iter()
            .chain(Self::NOISY_ONLY)
            .chain(Self::REFERENCES)
    }

    /// The server called `name`, as `--servers` takes it.
    pub(super) fn named(name: &str) -> Option<Self> {
        Self::every().find(|s| s.name() == name)
    }

    /// The names `--servers` takes.
    pub(super) fn names() -> Vec<&'static str> {
        Self::every().map(Self::name).collect()
    }

    /// This daemon, in any configuration, or a raw reference: never "the best peer".
    pub(super) fn is_ours(name: &str) -> bool {
        [Self::Tftpd, Self::TftpdPortable, Self::TftpdFixed]
            .into_iter()
            .chain(Self::REFERENCES)
            .any(|s| s.name() == name)
    }

    /// Run in the concurrent rows only ([`Self::REFERENCES`]).
    pub(super) fn is_reference(self) -> bool {
        Self::REFERENCES.contains(&self)
    }

    /// A raw responder, not a TFTP server.
    fn is_raw(self) -> bool {
        matches!(self, Self::RawEpoll | Self::RawUring)
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Tftpd => "tftpd",
            Self::TftpdPortable => "tftpd-portable",
            Self::TftpdFixed => "tftpd-fixed",
            Self::TftpHpa => "tftp-hpa",
            Self::Atftpd => "atftpd",
            Self::Dnsmasq => "dnsmasq",
            Self::RawEpoll => "raw-epoll",
            Self::RawUring => "raw-uring",
        }
    }

    /// The Debian package a peer comes from (none for this daemon).
    pub(super) fn package(self) -> Option<&'static Package> {
        const HPA: Package = Package {
            name: "tftpd-hpa",
            binary: "usr/sbin/in.tftpd",
        };
        const ATFTPD: Package = Package {
            name: "atftpd",
            binary: "usr/sbin/atftpd",
        };
        const DNSMASQ: Package = Package {
            name: "dnsmasq-base",
            binary: "usr/sbin/dnsmasq",
        };
        match self {
            Self::Tftpd
            | Self::TftpdPortable
            | Self::TftpdFixed
            | Self::RawEpoll
            | Self::RawUring => None,
            Self::TftpHpa => Some(&HPA),
            Self::Atftpd => Some(&ATFTPD),
            Self::Dnsmasq => Some(&DNSMASQ),
        }
    }

    /// The program to run (the raw references are `tftp-load`, built beside `tftpd`).
    pub(super) fn program(self, tftpd: &Path) -> PathBuf {
        if self.is_raw() {
            return tftpd.with_file_name("tftp-load");
        }
        self.package()
            .map_or_else(|| tftpd.to_path_buf(), peers::binary)
    }

    /// The command line: each server's defaults, except the address, the root, an
    /// unprivileged user, no logging to files, and the concurrency caps that would otherwise
    /// refuse the 1000-client storm (atftpd: 100 threads, dnsmasq: 50 transfers).
    fn args(self, root: &Path) -> Vec<OsString> {
        let root = root.as_os_str().to_owned();
        let with = |prefix: &str| {
            let mut s = OsString::from(prefix);
            s.push(&root);
            s
        };
        let strs = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        match self {
            Self::Tftpd | Self::TftpdPortable | Self::TftpdFixed => {
                let mut a = Vec::new();
                if self.config().is_some() {
                    a.push("--config".into());
                    a.push(self.config_path(Path::new(&root)).into_os_string());
                }
                a.extend(strs(&["--listen", LISTEN, "--user", "nobody", "--root"]));
                a.push(root);
                a
            }
            Self::TftpHpa => {
                let mut a = strs(&["--foreground", "--address", LISTEN, "--secure"]);
                a.extend(strs(&["--user", "nobody"]));
                a.push(root);
                a
            }
            Self::Atftpd => {
                let mut a = strs(&[
                    "--daemon",
                    "--no-fork",
                    "--port",
                    "69",
                    "--bind-address",
                    "127.0.0.1",
                    "--maxthread",
                    "2000",
                    "--logfile",
                    "/dev/null",
                    "--user",
                    "nobody",
                    "--group",
                    "nogroup",
                ]);
                a.push(root);
                a
            }
            Self::Dnsmasq => {
                let mut a = strs(&[
                    "--keep-in-foreground",
                    "--conf-file=/dev/null",
                    "--port=0",
                    "--enable-tftp",
                    "--tftp-max=2000",
                    "--listen-address=127.0.0.1",
                    "--bind-interfaces",
                    "--user=nobody",
                    "--group=nogroup",
                    "--pid-file",
                ]);
                a.push(with("--tftp-root="));
                a
            }
            Self::RawEpoll | Self::RawUring => {
                let engine = if self == Self::RawEpoll {
                    "epoll"
                } else {
                    "uring"
                };
                let mut a = strs(&["raw-server", "--engine", engine, "--listen", LISTEN]);
                a.push("--root".into());
                a.push(root);
                a
            }
        }
    }

    /// One line naming the version, for the methodology section.
    pub(super) fn version(self, tftpd: &Path) -> String {
        if self.is_raw() {
            return format!("{} (tftp-load raw-server)", self.name());
        }
        if let Some(package) = self.package() {
            return peers::version(package)
                .unwrap_or_else(|| format!("{} (version unknown)", package.name));
        }
        Command::new(tftpd)
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|_| "tftpd (version unknown)".to_string())
    }
}

impl Server {
    /// The config file this daemon variant runs with (none for the shipped defaults or a
    /// peer).
    pub(super) fn config(self) -> Option<&'static str> {
        match self {
            Self::TftpdPortable => Some(PORTABLE_CONFIG),
            Self::TftpdFixed => Some(FIXED_CONFIG),
            _ => None,
        }
    }

    /// Where [`Self::config`] is written for the served root `root`: beside it.
    pub(super) fn config_path(self, root: &Path) -> PathBuf {
        root.with_extension(format!("{}.toml", self.name()))
    }
}

/// The config of [`Server::TftpdFixed`]: the shipped defaults but the fixed 1 s timer.
const FIXED_CONFIG: &str = "\
[protocol]
adaptive_timeout = false
";

/// The config of [`Server::TftpdPortable`], beside the served root: every
/// `[performance]` switch off, buffers at the kernel's default. The kernel packet filter
/// stays as shipped: it is not a fast path.
const PORTABLE_CONFIG: &str = "\
[performance]
io = \"portable\"

[performance.socket]
recv_buffer = 0
send_buffer = 0
reuseport_workers = 1

[performance.file_io]
cache_size = 0
read_ahead = 0
fadvise = false

[performance.cpu]
intake_threads = false
";

/// A running server in its own cgroup; killed (with every forked child) on drop.
pub(super) struct Running {
    child: Child,
    pub(super) cgroup: Cgroup,
}

impl Running {
    /// Starts `server` on [`LISTEN`] serving `root` and waits until it answers `probe_file`.
    /// Its output goes to `log`, which a failed start quotes.
    pub(super) fn start(
        server: Server,
        tftpd: &Path,
        root: &Path,
        probe_file: &str,
        log: &Path,
    ) -> anyhow::Result<Self> {
        ensure_port_free()?;
        let output =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let cgroup = Cgroup::create(server.name())?;
        let program = server.program(tftpd);
        // The shell joins the cgroup, raises the descriptor limit (a transfer is a socket and
        // a file), then becomes the server, so the server and all it forks are counted.
        let child = Command::new("sh")
            .arg("-c")
            .arg(r#"ulimit -n 65536; echo $$ > "$0"; exec "$@""#)
            .arg(cgroup.procs_file())
            .arg(&program)
            .args(server.args(root))
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output)
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let mut running = Self { child, cgroup };
        if let Err(e) = running.wait_until_serving(server, probe_file) {
            let said = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = said.lines().rev().take(5).collect();
            return Err(e.context(format!(
                "{} did not start; the end of {}: {}",
                server.name(),
                log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            )));
        }
        Ok(running)
    }

    /// Sends a plain RRQ until the server answers, then ends that transfer with an ERROR.
    fn wait_until_serving(&mut self, server: Server, file: &str) -> anyhow::Result<()> {
        let listen: SocketAddr = LISTEN.parse()?;
        let probe = UdpSocket::bind("127.0.0.1:0")?;
        probe.set_read_timeout(Some(Duration::from_millis(100)))?;
        let mut rrq = vec![0, 1];
        rrq.extend_from_slice(file.as_bytes());
        rrq.push(0);
        rrq.extend_from_slice(b"octet\0");
        let deadline = Instant::now() + START_TIMEOUT;
        let mut buf = [0u8; 1024];
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("{} exited with {status} before serving", server.name());
            }
            probe.send_to(&rrq, listen)?;
            if let Ok((_, from)) = probe.recv_from(&mut buf) {
                probe.send_to(b"\x00\x05\x00\x00probe done\x00", from)?;
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("no answer on {LISTEN} within {START_TIMEOUT:?}");
            }
        }
    }
}

/// How long a server may take to exit on SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

impl Drop for Running {
    fn drop(&mut self) {
        // SIGTERM first: tftpd then removes its pinned eBPF maps (a SIGKILL would leave them
        // under /sys/fs/bpf/tftpd for the next run, and for the tests, to find).
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.cgroup.kill_all();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fails with the owner's name when something already holds port 69 on loopback (an
/// installed tftpd-hpa or atftpd service, typically).
fn ensure_port_free() -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match UdpSocket::bind(LISTEN) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => {
                let owner = Command::new("ss")
                    .args(["-ulpnH", "sport = :69"])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                    .unwrap_or_default();
                bail!(
                    "UDP {LISTEN} is taken ({e}); the bench runs every server there in turn. \
                     Stop what holds it (e.g. `systemctl stop tftpd-hpa atftpd`): {owner}"
                );
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}
