//! `tftpd health` against the real daemon: exit 0 with a line per probe while it serves, and
//! exit 1 naming what failed for a missing file or once the daemon is gone. The probe reads
//! the same config as the daemon; the flags before `health` override it, as for the daemon.

mod harness;

use std::process::{Command, Output};

use harness::{DaemonArgs, TempDir, free_tcp_port};

fn health(listen: &str, metrics: &str, extra: &[&str]) -> Output {
    // An empty file, not the machine's /etc/tftpd/tftpd.toml: the defaults, then the flags.
    let dir = TempDir::new("health-cfg");
    let config = dir.path().join("empty.toml");
    std::fs::write(&config, "").expect("writing the config");
    Command::new(env!("CARGO_BIN_EXE_tftpd"))
        .arg("--config")
        .arg(&config)
        .args(["--listen", listen, "--metrics-listen", metrics, "health"])
        .args(["--timeout", "2"])
        .args(extra)
        .env_remove("RUST_LOG")
        .output()
        .expect("running tftpd health")
}

#[test]
fn health_passes_on_a_serving_daemon_and_fails_with_the_reason_otherwise() {
    let port = free_tcp_port();
    let metrics = format!("127.0.0.1:{port}");
    let daemon = harness::Daemon::start(DaemonArgs {
        args: vec!["--metrics-listen".into(), metrics.clone()],
        ..DaemonArgs::default()
    });
    daemon.put_file("probe.bin", &harness::pattern(1300, 7));
    let listen = daemon.addr().to_string();

    let ok = health(&listen, &metrics, &["--file", "probe.bin"]);
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "exit 0 while serving: {out}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(out.contains("200 with tftpd_build_info"), "{out}");
    assert!(out.contains("1300 bytes"), "the whole file: {out}");

    let missing = health(&listen, &metrics, &["--file", "absent.bin"]);
    let err = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(1), "a missing file: {err}");
    assert!(
        err.contains("ERROR 1") && err.contains("absent.bin"),
        "{err}"
    );

    drop(daemon);
    let gone = health(&listen, &metrics, &[]);
    let err = String::from_utf8_lossy(&gone.stderr);
    assert_eq!(gone.status.code(), Some(1), "no daemon: {err}");
    assert!(
        err.contains("cannot connect"),
        "names the metrics endpoint: {err}"
    );
}
