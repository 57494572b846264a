//! Integration-test harness: starts the real `tftpd` binary on loopback port 0, reads the
//! bound addresses from its ready line, captures its log, and offers a raw UDP client for
//! hand-made packets. Black-box on purpose: nothing here uses the crate's internals.
//!
//! Each test binary uses a different part of this module, so unused-item warnings are
//! expected per binary.
#![allow(
    dead_code,
    reason = "shared by several test binaries, each using a part"
)]

pub(crate) mod bpftool;
pub(crate) mod clients;
pub(crate) mod craft;
pub(crate) mod junk;
pub(crate) mod lan;
pub(crate) mod netns;
pub(crate) mod raw;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the daemon may take to print its ready line.
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a log line may take to appear.
pub(crate) const LOG_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client transfer may take.
pub(crate) const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the daemon may take, after its ready line, to install its signal handlers.
pub(crate) const HANDLER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the metrics may lag behind the log line of the event they count.
pub(crate) const METRICS_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a condition is polled while a test waits on it.
const POLL: Duration = Duration::from_millis(20);

/// A temporary directory, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("tftpd-it-{tag}-{:016x}", random_u64()));
        std::fs::create_dir_all(&p).expect("creating a temp dir");
        // World-writable so a daemon that dropped to `nobody` may write uploads here.
        set_mode(&p, 0o777);
        Self(p)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A cheap random number (no dependency): hash of time and a counter.
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher as _, RandomState};
    RandomState::new().hash_one(Instant::now())
}

/// Deterministic pseudo-random bytes.
pub(crate) fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A TCP port that was free a moment ago (for `--metrics-listen`).
pub(crate) fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("binding a probe socket")
        .local_addr()
        .expect("probe address")
        .port()
}

/// One scrape of the daemon's `/metrics` page on 127.0.0.1:`port` (response head included).
pub(crate) fn scrape_metrics(port: u16) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to metrics");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("metrics request");
    let mut body = String::new();
    s.read_to_string(&mut body).expect("metrics response");
    body
}

/// The value of the first metric line starting with `line_start` (name and labels), or a
/// panic that shows the whole scrape.
pub(crate) fn metric(body: &str, line_start: &str) -> u64 {
    body.lines()
        .find_map(|l| l.strip_prefix(line_start))
        .unwrap_or_else(|| panic!("no {line_start} in:\n{body}"))
        .trim()
        .parse()
        .expect("a number")
}

/// Starts the daemon with `config` and a metrics endpoint; returns it and the metrics port.
pub(crate) fn start_with_metrics(config: String) -> (Daemon, u16) {
    let port = free_tcp_port();
    let d = Daemon::start(DaemonArgs {
        args: vec!["--metrics-listen".into(), format!("127.0.0.1:{port}")],
        config: Some(config),
        ..DaemonArgs::default()
    });
    (d, port)
}

/// Scrapes until the page contains every line in `wanted`, and returns it. The daemon updates
/// some metrics (the active-transfer gauge) just after it logs the event, so one scrape right
/// after a log line can race them.
pub(crate) fn wait_for_metrics(port: u16, wanted: &[&str], timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let body = scrape_metrics(port);
        let missing: Vec<&&str> = wanted.iter().filter(|l| !body.contains(**l)).collect();
        if missing.is_empty() {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "metrics still lack {missing:?} after {timeout:?}:\n{body}"
        );
        std::thread::sleep(POLL);
    }
}

/// The user the daemon should run as: the current one, so temp files stay accessible.
pub(crate) fn current_user() -> String {
    let out = Command::new("id")
        .arg("-un")
        .output()
        .expect("running id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// True when CI=true: a test that would skip must fail instead.
pub(crate) fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips (prints why) or, under CI, fails.
pub(crate) fn skip(test: &str, why: &str) {
    assert!(!in_ci(), "{test} cannot run under CI=true: {why}");
    eprintln!("skipping: {test} {why}");
}

/// How to start the daemon.
#[derive(Default, Clone)]
pub(crate) struct DaemonArgs {
    /// Extra command-line arguments.
    pub(crate) args: Vec<String>,
    /// A config file's content (written to a temp file and passed with --config).
    pub(crate) config: Option<String>,
    /// Also listen on [::1]:0.
    pub(crate) ipv6: bool,
    /// Leave out --user (for the privilege-drop test).
    pub(crate) no_user: bool,
    /// A program (and its arguments) that runs the daemon, e.g. `setpriv` to take
    /// capabilities away; empty: the daemon runs directly.
    pub(crate) wrapper: Vec<String>,
}

/// The daemon's command line for `args`: serving `root` on loopback port 0, with the config
/// (if any) written into `config_dir`, stdout discarded and stderr piped.
pub(crate) fn command(args: &DaemonArgs, root: &Path, config_dir: &Path) -> Command {
    let mut cmd = match args.wrapper.split_first() {
        None => Command::new(env!("CARGO_BIN_EXE_tftpd")),
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(env!("CARGO_BIN_EXE_tftpd"));
            c
        }
    };
    cmd.arg("--root").arg(root);
    cmd.args(["--listen", "127.0.0.1:0"]);
    if args.ipv6 {
        cmd.args(["--listen", "[::1]:0"]);
    }
    if !args.no_user {
        cmd.args(["--user", &current_user()]);
    }
    if let Some(text) = &args.config {
        let path = config_dir.join("tftpd.toml");
        std::fs::write(&path, text).expect("writing the config");
        cmd.arg("--config").arg(&path);
    }
    // The eBPF pins are global (/sys/fs/bpf/tftpd), so daemons that run side by side in
    // tests use the userspace rules unless a test asks for eBPF itself.
    if !args.args.iter().any(|a| a == "--ebpf") {
        cmd.args(["--ebpf", "off"]);
    }
    cmd.args(&args.args);
    cmd.env_remove("RUST_LOG");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// The running daemon. Killed on drop.
pub(crate) struct Daemon {
    child: Child,
    log: Arc<Mutex<String>>,
    addrs: Vec<SocketAddr>,
    root: TempDir,
    config_dir: TempDir,
}

impl Daemon {
    pub(crate) fn start(args: DaemonArgs) -> Self {
        Self::start_with(args, |_| {})
    }

    /// Like `start`, with `customise` applied to the command before it is spawned (e.g. a
    /// `pre_exec` hook that installs a seccomp filter).
    pub(crate) fn start_with(args: DaemonArgs, customise: impl FnOnce(&mut Command)) -> Self {
        let root = TempDir::new("root");
        let config_dir = TempDir::new("cfg");
        let mut cmd = command(&args, root.path(), config_dir.path());
        customise(&mut cmd);
        let mut child = cmd.spawn().expect("starting tftpd");
        let stderr = child.stderr.take().expect("stderr pipe");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut l = sink.lock().expect("log lock");
                l.push_str(&line);
                l.push('\n');
            }
        });
        let mut d = Self {
            child,
            log,
            addrs: Vec::new(),
            root,
            config_dir,
        };
        let line = d.wait_for_log("tftpd ready", START_TIMEOUT);
        d.addrs = line
            .split_whitespace()
            .filter_map(|w| w.strip_prefix("listen="))
            // In JSON logs the last address is followed by the closing quote and braces.
            .map(|a| {
                let end = a
                    .find(|c: char| !(c.is_ascii_hexdigit() || ".:[]".contains(c)))
                    .unwrap_or(a.len());
                &a[..end]
            })
            .map(|a| a.parse().expect("a listen address in the ready line"))
            .collect();
        assert!(!d.addrs.is_empty(), "ready line without addresses: {line}");
        d
    }

    /// Every listening address, in the order of the ready line.
    pub(crate) fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The first (IPv4) listening address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// The IPv6 listening address (start with `ipv6: true`).
    pub(crate) fn addr_v6(&self) -> SocketAddr {
        *self
            .addrs
            .iter()
            .find(|a| a.is_ipv6())
            .expect("the daemon was started with an IPv6 listener")
    }

    pub(crate) fn root(&self) -> &Path {
        self.root.path()
    }

    pub(crate) fn config_path(&self) -> PathBuf {
        self.config_dir.path().join("tftpd.toml")
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The daemon's threads now: each one's name and the CPUs it may run on (its
    /// `Cpus_allowed_list`).
    pub(crate) fn threads(&self) -> Vec<(String, String)> {
        std::fs::read_dir(format!("/proc/{}/task", self.pid()))
            .expect("task dir")
            .map(|t| {
                let t = t.expect("task").path();
                let name = std::fs::read_to_string(t.join("comm")).expect("comm");
                let status = std::fs::read_to_string(t.join("status")).expect("status");
                let cpus = status
                    .lines()
                    .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                    .expect("Cpus_allowed_list")
                    .trim()
                    .to_string();
                (name.trim().to_string(), cpus)
            })
            .collect()
    }

    /// Writes a file into the served root.
    pub(crate) fn put_file(&self, name: &str, content: &[u8]) -> PathBuf {
        let p = self.root.path().join(name);
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir).expect("mkdir in root");
        }
        std::fs::write(&p, content).expect("writing a file into the root");
        p
    }

    /// The log so far.
    pub(crate) fn log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    /// Waits until a log line contains `needle`; returns that line.
    pub(crate) fn wait_for_log(&self, needle: &str, timeout: Duration) -> String {
        self.wait_for_log_after(needle, 0, timeout)
    }

    /// Like `wait_for_log`, counting only log text after byte `from` (see `log_len`).
    pub(crate) fn wait_for_log_after(
        &self,
        needle: &str,
        from: usize,
        timeout: Duration,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let log = self.log.lock().expect("log lock");
                if let Some(line) = log[from.min(log.len())..]
                    .lines()
                    .find(|l| l.contains(needle))
                {
                    return line.to_string();
                }
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {needle:?} within {timeout:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(POLL);
        }
    }

    pub(crate) fn log_len(&self) -> usize {
        self.log.lock().expect("log lock").len()
    }

    /// Sends a signal by name (TERM, HUP, INT) once the daemon catches it. The wait is there
    /// because the ready line has been seen to come before the handlers are installed, and a
    /// signal in that gap kills the daemon (the default action); lifecycle.rs tests the gap
    /// itself with `signal_now`, so the other tests are not made flaky by it.
    pub(crate) fn signal(&self, sig: &str) {
        let deadline = Instant::now() + HANDLER_TIMEOUT;
        while !catches(self.pid(), sig) {
            assert!(
                Instant::now() < deadline,
                "tftpd installed no SIG{sig} handler within {HANDLER_TIMEOUT:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(POLL);
        }
        self.signal_now(sig);
    }

    /// Replaces the config file with `config`, sends SIGHUP and waits for the reload's log
    /// line.
    pub(crate) fn reload_with(&self, config: &str, timeout: Duration) {
        std::fs::write(self.config_path(), config).expect("edit config");
        let from = self.log_len();
        self.signal("HUP");
        self.wait_for_log_after("config reloaded", from, timeout);
    }

    /// Sends a signal by name at once, handler or not.
    pub(crate) fn signal_now(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([format!("-{sig}"), self.pid().to_string()])
            .status()
            .expect("running kill")
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Waits for the daemon to exit.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "tftpd did not exit within {timeout:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(POLL);
        }
    }

    /// Names in the root's directory `dir` (relative), sorted.
    pub(crate) fn list(&self, dir: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.root.path().join(dir))
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

/// True when process `pid` has a handler for `sig` (TERM, HUP or INT): its bit, signal number
/// minus one, in the `SigCgt` mask of /proc/PID/status (proc(5)).
fn catches(pid: u32, sig: &str) -> bool {
    let number = match sig {
        "HUP" => 1,
        "INT" => 2,
        "TERM" => 15,
        other => panic!("no signal number known for SIG{other}"),
    };
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (number - 1)) != 0)
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
