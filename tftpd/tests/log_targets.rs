//! `log.target` with the real daemon: syslog lines on a socket the test binds
//! (`log.syslog_socket`), stderr when `JOURNAL_STREAM` names another stream, and, as root in
//! a mount namespace where a socket the test binds is `/run/systemd/journal/socket`, native
//! journal records when `JOURNAL_STREAM` names the daemon's stderr (`auto`). Client text with
//! a CR or LF arrives escaped on every path.

mod harness;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::raw::{self, Raw, Reply};
use harness::{Daemon, DaemonArgs, START_TIMEOUT, TempDir, current_user, is_root, skip};

const REPLY: Duration = Duration::from_secs(5);

/// The daemon, killed on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `wrapper… tftpd` serving `root` on loopback with `config`, stderr to a file.
fn spawn(wrapper: &[&str], root: &Path, config: &Path, stderr: &Path) -> Running {
    let mut cmd = match wrapper.split_first() {
        None => Command::new(env!("CARGO_BIN_EXE_tftpd")),
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(env!("CARGO_BIN_EXE_tftpd"));
            c
        }
    };
    cmd.arg("--root")
        .arg(root)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--ebpf",
            "off",
            "--user",
            &current_user(),
        ])
        .arg("--config")
        .arg(config)
        .env_remove("RUST_LOG")
        .env_remove("JOURNAL_STREAM")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr).expect("a stderr file"));
    Running(cmd.spawn().expect("starting tftpd"))
}

/// Datagrams from `socket` until one contains `needle` (returned) or the deadline.
fn wait_for(socket: &UnixDatagram, needle: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 65536];
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no record with {needle:?} within {timeout:?}; got:\n{}",
            seen.join("\n---\n")
        );
        socket.set_read_timeout(Some(left)).expect("a timeout");
        let Ok(n) = socket.recv(&mut buf) else {
            continue;
        };
        let record = String::from_utf8_lossy(&buf[..n]).into_owned();
        if record.contains(needle) {
            return record;
        }
        seen.push(record);
    }
}

/// The listen address in a ready record.
fn listen_addr(record: &str) -> std::net::SocketAddr {
    record
        .split_whitespace()
        .find_map(|w| w.strip_prefix("listen="))
        .map(|a| a.trim_matches(|c: char| !(c.is_ascii_hexdigit() || ".:[]".contains(c))))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no listen address in {record}"))
}

/// Asks for a name with a CR LF in it (refused by the name checks) and returns the ERROR
/// code.
fn request_forging_name(server: std::net::SocketAddr) -> u16 {
    let client = Raw::new(server);
    client.send(&raw::request(1, b"a\r\nINFO forged", "octet", &[]));
    match client.expect(REPLY, "the refusal").0 {
        Reply::Error { code, .. } => code,
        other => panic!("an ERROR, got {other:?}"),
    }
}

#[test]
fn syslog_target_sends_one_line_per_event_to_the_configured_socket() {
    let dir = TempDir::new("syslog");
    let socket_path = dir.path().join("log");
    let syslogd = UnixDatagram::bind(&socket_path).expect("binding a syslog socket");
    let config = dir.path().join("tftpd.toml");
    std::fs::write(
        &config,
        format!(
            "[log]\ntarget = \"syslog\"\nsyslog_socket = \"{}\"\n",
            socket_path.display()
        ),
    )
    .expect("writing the config");
    let root = TempDir::new("root");
    let stderr = dir.path().join("stderr");
    let d = spawn(&[], root.path(), &config, &stderr);
    let pid = d.0.id();
    let ready = wait_for(&syslogd, "tftpd ready", START_TIMEOUT);
    assert!(
        ready.starts_with(&format!("<30>tftpd[{pid}]: ")),
        "daemon.info: {ready}"
    );
    assert_eq!(
        request_forging_name(listen_addr(&ready)),
        2,
        "access violation"
    );
    let refused = wait_for(&syslogd, "forged", REPLY);
    assert!(
        refused.contains("a\\x0d\\x0aINFO forged"),
        "escaped: {refused}"
    );
    assert!(!refused.contains(['\r', '\n']), "one line: {refused:?}");
    let on_stderr = std::fs::read_to_string(&stderr).unwrap_or_default();
    assert!(
        !on_stderr.contains("tftpd ready"),
        "records go to syslog only: {on_stderr}"
    );
}

#[test]
fn a_syslog_socket_nobody_listens_on_fails_start_up_naming_the_key() {
    let dir = TempDir::new("syslog-none");
    let config = dir.path().join("tftpd.toml");
    let missing = dir.path().join("nobody");
    std::fs::write(
        &config,
        format!(
            "[log]\ntarget = \"syslog\"\nsyslog_socket = \"{}\"\n",
            missing.display()
        ),
    )
    .expect("writing the config");
    let root = TempDir::new("root");
    let stderr = dir.path().join("stderr");
    let mut d = spawn(&[], root.path(), &config, &stderr);
    let status = d.0.wait().expect("the daemon exits");
    assert!(!status.success());
    let said = std::fs::read_to_string(&stderr).expect("stderr");
    assert!(
        said.contains("log.target = \"syslog\"")
            && said.contains("log.syslog_socket")
            && said.contains(&missing.display().to_string()),
        "{said}"
    );
}

#[test]
fn auto_writes_to_stderr_when_journal_stream_names_another_stream() {
    // systemd's variable, inherited by a daemon whose stderr was redirected.
    let d = Daemon::start_with(DaemonArgs::default(), |cmd| {
        cmd.env("JOURNAL_STREAM", "1:1");
    });
    assert!(d.log().contains("tftpd ready"), "{}", d.log());
}

#[test]
fn auto_speaks_the_journals_protocol_when_stderr_is_the_journal_stream() {
    let test = "auto_speaks_the_journals_protocol_when_stderr_is_the_journal_stream";
    if !is_root() {
        skip(
            test,
            "needs root (a mount namespace to stand in for /run/systemd/journal)",
        );
        return;
    }
    let dir = TempDir::new("journal");
    let journal = UnixDatagram::bind(dir.path().join("socket")).expect("binding a journal socket");
    let config = dir.path().join("tftpd.toml");
    std::fs::write(&config, "[log]\ntarget = \"auto\"\n").expect("writing the config");
    let root = TempDir::new("root");
    let stderr = dir.path().join("stderr");
    // In its own mount namespace the daemon finds the test's socket at the journal's path,
    // and JOURNAL_STREAM names its stderr, as systemd sets it for a service.
    let script = format!(
        "mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal && \
         mount --bind {} /run/systemd/journal && \
         export JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) && exec \"$0\" \"$@\"",
        dir.path().display()
    );
    let d = spawn(
        &[
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ],
        root.path(),
        &config,
        &stderr,
    );
    let ready = wait_for(&journal, "tftpd ready", START_TIMEOUT);
    let field = |record: &str, name: &str| -> String {
        record
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in {record}"))
            .to_string()
    };
    assert_eq!(field(&ready, "PRIORITY"), "6", "{ready}");
    assert_eq!(field(&ready, "SYSLOG_IDENTIFIER"), "tftpd", "{ready}");
    assert!(
        field(&ready, "MESSAGE").starts_with("tftpd ready"),
        "{ready}"
    );
    assert_eq!(
        request_forging_name(listen_addr(&field(&ready, "MESSAGE"))),
        2,
        "access violation"
    );
    let refused = wait_for(&journal, "forged", REPLY);
    assert!(
        refused.lines().all(|l| l.contains('=')),
        "every line one field, none forged: {refused}"
    );
    assert!(
        refused.contains("a\\x0d\\x0aINFO forged"),
        "escaped: {refused}"
    );
    let on_stderr = std::fs::read_to_string(&stderr).unwrap_or_default();
    assert!(
        !on_stderr.contains("tftpd ready"),
        "records go to the journal only: {on_stderr}"
    );
    drop(d);
}

/// systemd's journal daemon, where the distribution installs it.
const JOURNALD: &str = "/lib/systemd/systemd-journald";

#[test]
fn the_real_journal_stores_the_daemons_records_with_their_fields() {
    let test = "the_real_journal_stores_the_daemons_records_with_their_fields";
    if !is_root() {
        skip(
            test,
            "needs root (a mount namespace for a journal of its own)",
        );
        return;
    }
    if !Path::new(JOURNALD).is_file() {
        skip(test, "needs systemd-journald (apt-get install systemd)");
        return;
    }
    let dir = TempDir::new("real-journal");
    let store = dir.path().join("store");
    std::fs::create_dir_all(&store).expect("the journal's directory");
    let config = dir.path().join("tftpd.toml");
    std::fs::write(&config, "[log]\ntarget = \"journald\"\n").expect("writing the config");
    let root = TempDir::new("root");
    let stderr = dir.path().join("stderr");
    let pid_file = dir.path().join("journald.pid");
    // A journald of its own in the daemon's mount namespace: its sockets on a private /run,
    // its files in the test's directory (and none in the host's /var/log/journal).
    let script = format!(
        "mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /var/log/journal && \
         mkdir -p /run/systemd/journal /run/log/journal && \
         mount --bind {store} /run/log/journal || exit 1; \
         {JOURNALD} & echo $! > {pid}; \
         for i in $(seq 100); do [ -S /run/systemd/journal/socket ] && break; sleep 0.05; done; \
         exec \"$0\" \"$@\"",
        store = store.display(),
        pid = pid_file.display(),
    );
    let d = spawn(
        &[
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ],
        root.path(),
        &config,
        &stderr,
    );
    // Ends that journald however the test ends (it outlives the daemon it was started for).
    struct StopJournald(std::path::PathBuf);
    impl Drop for StopJournald {
        fn drop(&mut self) {
            let pid = std::fs::read_to_string(&self.0).unwrap_or_default();
            if !pid.trim().is_empty() {
                let _ = Command::new("kill").arg(pid.trim()).status();
            }
        }
    }
    let _stop = StopJournald(pid_file.clone());
    let entries = |filter: &str| -> Vec<serde_json::Value> {
        let out = Command::new("journalctl")
            .arg("-D")
            .arg(&store)
            .args(["--no-pager", "-o", "json", "SYSLOG_IDENTIFIER=tftpd"])
            .output()
            .expect("journalctl");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["MESSAGE"].as_str().is_some_and(|m| m.contains(filter)))
            .collect()
    };
    let wait = |filter: &str| -> serde_json::Value {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(e) = entries(filter).into_iter().next() {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "no journal entry with {filter:?}; daemon stderr: {}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let ready = wait("tftpd ready");
    assert_eq!(ready["PRIORITY"], "6", "{ready}");
    assert_eq!(
        ready["_TRANSPORT"], "journal",
        "the native protocol: {ready}"
    );
    assert_eq!(ready["_PID"], d.0.id().to_string(), "{ready}");
    let message = ready["MESSAGE"].as_str().unwrap_or_default().to_string();
    assert_eq!(request_forging_name(listen_addr(&message)), 2);
    let refused = wait("forged");
    let raw = refused.to_string();
    assert!(
        raw.contains("a\\\\x0d\\\\x0aINFO forged"),
        "escaped in the journal: {raw}"
    );
    assert!(
        entries("INFO forged").iter().all(|e| !e["MESSAGE"]
            .as_str()
            .unwrap_or_default()
            .starts_with("INFO forged")),
        "no entry forged"
    );
    drop(d);
}
