//! systemd integration without systemd: the test plays systemd's part. A python3 wrapper binds
//! a UDP socket as fd 3, sets LISTEN_FDS/LISTEN_PID and execs tftpd (keeping the pid), as
//! socket activation does; the test owns the NOTIFY_SOCKET and reads what tftpd reports.

mod harness;

use std::io::{BufRead as _, BufReader};
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::raw::Raw;
use harness::{TempDir, current_user, skip};

/// What systemd does before exec: a bound socket at fd 3 and the LISTEN_* variables.
const ACTIVATE: &str = r#"
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
if s.fileno() != 3:
    os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
print(s.getsockname()[1], flush=True)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[1], sys.argv[1:])
"#;

const WAIT: Duration = Duration::from_secs(10);

/// True when python3 (which plays systemd here) runs; otherwise reports `test` skipped.
fn python_or_skip(test: &str, why: &str) -> bool {
    let have = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        skip(test, why);
    }
    have
}

fn next_notification(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    let n = sock
        .recv(&mut buf)
        .expect("a notification within the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn socket_activation_and_sd_notify_lifecycle() {
    if !python_or_skip(
        "socket_activation_and_sd_notify_lifecycle",
        "needs python3 to play systemd",
    ) {
        return;
    }
    let root = TempDir::new("sd-root");
    std::fs::write(root.path().join("f.bin"), b"socket activated").expect("file");
    let notify_dir = TempDir::new("sd-notify");
    let notify_path = notify_dir.path().join("notify");
    let notify = UnixDatagram::bind(&notify_path).expect("notify socket");
    notify.set_read_timeout(Some(WAIT)).expect("timeout");

    let mut child = Command::new("python3")
        .args(["-c", ACTIVATE, env!("CARGO_BIN_EXE_tftpd"), "--root"])
        .arg(root.path())
        .args(["--user", &current_user(), "--ebpf", "off"])
        .env("NOTIFY_SOCKET", &notify_path)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the wrapper");
    let mut port_line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut port_line)
        .expect("the wrapper prints the port");
    let port: u16 = port_line.trim().parse().expect("a port number");

    let ready = next_notification(&notify);
    assert!(ready.starts_with("READY=1"), "first notification: {ready}");
    assert!(
        ready.contains(&format!("listen=127.0.0.1:{port}")),
        "serves the passed socket, not `listen`: {ready}"
    );
    let c = Raw::new(format!("127.0.0.1:{port}").parse().expect("addr"));
    assert_eq!(
        c.download("f.bin", &[], WAIT).expect("download"),
        b"socket activated"
    );

    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let reloading = next_notification(&notify);
    assert!(
        reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{reloading}"
    );
    assert_eq!(
        next_notification(&notify),
        "READY=1",
        "ready again after the reload"
    );

    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let stopping = next_notification(&notify);
    assert!(stopping.starts_with("STOPPING=1"), "{stopping}");
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "exit 0, got {status}");
            break;
        }
        assert!(Instant::now() < deadline, "tftpd did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_passed_fd_that_is_not_a_udp_socket_is_refused_by_number() {
    if !python_or_skip(
        "a_passed_fd_that_is_not_a_udp_socket_is_refused_by_number",
        "needs python3",
    ) {
        return;
    }
    let tcp = ACTIVATE.replace("socket.SOCK_DGRAM", "socket.SOCK_STREAM");
    let root = TempDir::new("sd-bad");
    let out = Command::new("python3")
        .args(["-c", &tcp, env!("CARGO_BIN_EXE_tftpd"), "--root"])
        .arg(root.path())
        .args(["--user", &current_user(), "--ebpf", "off"])
        .env_remove("NOTIFY_SOCKET")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "refuses to start");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("fd 3") && err.contains("datagram"),
        "names the fd: {err}"
    );
}

#[test]
fn listen_fds_zero_refuses_to_start_rather_than_bind_listen() {
    if !python_or_skip(
        "listen_fds_zero_refuses_to_start_rather_than_bind_listen",
        "needs python3",
    ) {
        return;
    }
    // systemd's variables, for this very process, but no socket: what a .socket unit without
    // a Listen line would hand over.
    const NONE: &str = r#"
import os, sys
os.environ["LISTEN_FDS"] = "0"
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[1], sys.argv[1:])
"#;
    let root = TempDir::new("sd-none");
    let mut child = Command::new("python3")
        .args(["-c", NONE, env!("CARGO_BIN_EXE_tftpd"), "--root"])
        .arg(root.path())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--user",
            &current_user(),
            "--ebpf",
            "off",
        ])
        .env_remove("NOTIFY_SOCKET")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run");
    // A daemon that took zero sockets would serve nothing forever: bound the wait.
    let deadline = Instant::now() + WAIT;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tftpd kept running with LISTEN_FDS=0 for {WAIT:?} instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "refuses to start: {err}");
    assert!(
        err.contains("LISTEN_FDS=0") && err.contains("no sockets"),
        "says why: {err}"
    );
    assert!(!err.contains("tftpd ready"), "never served `listen`: {err}");
}

#[test]
fn unit_files_pass_systemd_analyze_verify_without_warnings() {
    let have = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        skip(
            "unit_files_pass_systemd_analyze_verify_without_warnings",
            "needs systemd-analyze",
        );
        return;
    }
    let units = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/systemd");
    let dir = TempDir::new("units");
    // verify checks that ExecStart exists: point it at the binary under test.
    let service = std::fs::read_to_string(units.join("tftpd.service")).expect("service unit");
    assert!(service.contains("ExecStart=/usr/sbin/tftpd --config /etc/tftpd/tftpd.toml"));
    std::fs::write(
        dir.path().join("tftpd.service"),
        service.replace("/usr/sbin/tftpd", env!("CARGO_BIN_EXE_tftpd")),
    )
    .expect("write");
    std::fs::copy(units.join("tftpd.socket"), dir.path().join("tftpd.socket")).expect("copy");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(dir.path().join("tftpd.service"))
        .arg(dir.path().join("tftpd.socket"))
        .output()
        .expect("systemd-analyze");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify: {said}"
    );
}
