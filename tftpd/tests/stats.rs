//! `tftpd stats` against the real daemon on loopback: it reads the running daemon's active
//! transfers, requests and filter counters from the `/metrics` its config names, says which
//! key to set when the endpoint is off and nothing is pinned, and that the daemon is not
//! running when nothing answers. As root: the classic-BPF fallback (only the daemon counts),
//! and the eBPF maps pinned under a configured `ebpf.pin_dir` (needs the eBPF object).

mod harness;

use std::process::Command;
use std::time::Duration;

use harness::raw::{self, Raw, Reply};
use harness::{Daemon, DaemonArgs, METRICS_TIMEOUT, TempDir, free_tcp_port, is_root, skip};

const REPLY: Duration = Duration::from_secs(5);

/// `tftpd ARGS`: (exit status success, stdout, stderr).
fn tftpd(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tftpd"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("running tftpd");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `tftpd stats --config FILE --json` of the daemon `d`, parsed.
fn stats_json(d: &Daemon) -> serde_json::Value {
    let config = d.config_path();
    let (ok, out, err) = tftpd(&[
        "stats",
        "--json",
        "--config",
        config.to_str().expect("UTF-8"),
    ]);
    assert!(ok, "tftpd stats failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: not JSON:\n{out}"))
}

/// An `ebpf.pin_dir` (it must lie below /sys/fs/bpf) where nothing is pinned.
fn no_pins() -> std::path::PathBuf {
    std::path::PathBuf::from(format!(
        "/sys/fs/bpf/tftpd-stats-none-{}-{}",
        std::process::id(),
        harness::random_u64()
    ))
}

fn config(metrics_port: u16, pin_dir: &std::path::Path) -> String {
    format!(
        "[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n[ebpf]\npin_dir = \"{}\"\n",
        pin_dir.display()
    )
}

/// The filter series `path`/`verdict`/`reason` in a JSON report, in packets.
fn filter_packets(v: &serde_json::Value, path: &str, verdict: &str, reason: &str) -> u64 {
    v["daemon"]["filter"]
        .as_array()
        .expect("a filter array")
        .iter()
        .find(|f| f["path"] == path && f["verdict"] == verdict && f["reason"] == reason)
        .and_then(|f| f["packets"].as_u64())
        .unwrap_or_else(|| panic!("no {path}/{verdict}/{reason} in {v}"))
}

#[test]
fn stats_shows_a_running_daemons_transfers_requests_and_filter_drops() {
    let d = Daemon::start(DaemonArgs {
        config: Some(config(free_tcp_port(), &no_pins())),
        ..DaemonArgs::default()
    });
    d.put_file("small.txt", b"hello");
    d.put_file("big.bin", &harness::pattern(200_000, 3));
    Raw::new(d.addr())
        .download("small.txt", &[], REPLY)
        .expect("a download");
    // A download left waiting for the ACK of DATA 1: one active transfer.
    let waiting = Raw::new(d.addr());
    waiting.send(&raw::request(1, b"big.bin", "octet", &[]));
    let (reply, _) = waiting.expect(REPLY, "DATA 1");
    assert!(matches!(reply, Reply::Data { block: 1, .. }), "{reply:?}");
    // Junk the userspace rules drop: one byte is too short to be TFTP.
    Raw::new(d.addr()).send(&[1]);
    let completed = |v: &serde_json::Value| {
        v["daemon"]["requests"]
            .as_array()
            .expect("requests")
            .iter()
            .find(|r| r["kind"] == "read" && r["outcome"] == "completed")
            .and_then(|r| r["count"].as_u64())
    };
    // The daemon counts a transfer's end just after its last ACK arrives: wait for it.
    let settled = |v: &serde_json::Value| {
        filter_packets(v, "userspace", "drop", "too_short") == 1
            && v["daemon"]["active_transfers"] == 1
            && completed(v) == Some(1)
    };
    let deadline = std::time::Instant::now() + METRICS_TIMEOUT;
    let v = loop {
        let v = stats_json(&d);
        if settled(&v) || std::time::Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        filter_packets(&v, "userspace", "drop", "too_short"),
        1,
        "{v}"
    );
    assert_eq!(v["daemon"]["active_transfers"], 1, "{v}");
    assert_eq!(completed(&v), Some(1), "{v}");
    assert!(v["pinned"].is_null(), "nothing pinned: {v}");
    // The table says the same.
    let config = d.config_path();
    let (ok, table, err) = tftpd(&["--config", config.to_str().expect("UTF-8"), "stats"]);
    assert!(ok, "{err}");
    for want in [
        "active transfers: 1",
        "read   completed                  1",
        "userspace drop     too_short                          1              1",
    ] {
        assert!(table.lines().any(|l| l == want), "{want:?} in:\n{table}");
    }
}

#[test]
fn stats_without_metrics_or_pins_names_the_key_to_set() {
    let dir = TempDir::new("stats-off");
    let file = dir.path().join("tftpd.toml");
    std::fs::write(
        &file,
        format!("[ebpf]\npin_dir = \"{}\"\n", no_pins().display()),
    )
    .expect("writing a config");
    let (ok, out, err) = tftpd(&["stats", "--config", file.to_str().expect("UTF-8")]);
    assert!(!ok, "nothing to read must fail: {out}");
    assert!(
        err.contains("metrics.listen is not set") && err.contains("set metrics.listen"),
        "names the key: {err}"
    );
    assert!(
        err.contains("no eBPF counters are pinned under") && err.contains("ebpf.pin_dir"),
        "says where it looked: {err}"
    );
}

#[test]
fn stats_says_when_the_daemon_is_not_running() {
    let dir = TempDir::new("stats-down");
    let port = free_tcp_port();
    let file = dir.path().join("tftpd.toml");
    std::fs::write(&file, config(port, &no_pins())).expect("writing a config");
    let (ok, _, err) = tftpd(&["stats", "--config", file.to_str().expect("UTF-8")]);
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "does not answer at http://127.0.0.1:{port}/metrics (metrics.listen)"
        )) && err.contains("is tftpd running"),
        "{err}"
    );
}

#[test]
fn stats_reads_the_classic_bpf_fallbacks_counts_from_the_daemon() {
    if !is_root() {
        skip(
            "stats_reads_the_classic_bpf_fallbacks_counts_from_the_daemon",
            "needs root (classic BPF socket filters)",
        );
        return;
    }
    let d = Daemon::start(DaemonArgs {
        args: vec!["--ebpf".into(), "cbpf".into()],
        config: Some(config(free_tcp_port(), &no_pins())),
        ..DaemonArgs::default()
    });
    d.wait_for_log("classic BPF socket filters attached", REPLY);
    // An opcode no request has: the listener's filter drops it in the kernel.
    Raw::new(d.addr()).send(&[0, 9, b'x', 0, b'o', b'c', b't', b'e', b't', 0]);
    d.put_file("small.txt", b"hello");
    Raw::new(d.addr())
        .download("small.txt", &[], REPLY)
        .expect("a download");
    let deadline = std::time::Instant::now() + METRICS_TIMEOUT;
    let v = loop {
        let v = stats_json(&d);
        if filter_packets(&v, "cbpf", "drop", "unclassified") >= 1
            || std::time::Instant::now() > deadline
        {
            break v;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        filter_packets(&v, "cbpf", "drop", "unclassified") >= 1,
        "{v}"
    );
    assert!(
        filter_packets(&v, "cbpf", "pass", "passed") >= 1,
        "the RRQ passed: {v}"
    );
    assert_eq!(
        filter_packets(&v, "userspace", "drop", "bad_opcode"),
        0,
        "the kernel dropped it, not the daemon: {v}"
    );
}

#[test]
fn stats_reads_the_ebpf_maps_pinned_under_the_configured_pin_dir() {
    let test = "stats_reads_the_ebpf_maps_pinned_under_the_configured_pin_dir";
    if !is_root() {
        skip(test, "needs root and BPF");
        return;
    }
    let object = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tftp-ebpf/target/bpfel-unknown-none/release/tftp-ebpf");
    if std::env::var_os("TFTPD_EBPF_OBJECT").is_none() && !object.is_file() {
        skip(test, "needs the eBPF object (cargo xtask build-ebpf)");
        return;
    }
    let pin_dir =
        std::path::PathBuf::from(format!("/sys/fs/bpf/tftpd-stats-{}", std::process::id()));
    let mut d = Daemon::start(DaemonArgs {
        args: vec!["--ebpf".into(), "required".into()],
        config: Some(config(free_tcp_port(), &pin_dir)),
        ..DaemonArgs::default()
    });
    d.wait_for_log("eBPF socket filters attached", REPLY);
    for _ in 0..3 {
        Raw::new(d.addr()).send(&[0, 9, b'x', 0, b'o', b'c', b't', b'e', b't', 0]);
    }
    let deadline = std::time::Instant::now() + METRICS_TIMEOUT;
    let (v, row) = loop {
        let v = stats_json(&d);
        let row = v["pinned"]["rows"]
            .as_array()
            .and_then(|rows| {
                rows.iter()
                    .find(|r| r["socket"] == "listener" && r["reason"] == "bad_opcode")
            })
            .and_then(|r| r["packets"].as_u64());
        if row == Some(3) || std::time::Instant::now() > deadline {
            break (v, row);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        row,
        Some(3),
        "three junk datagrams dropped by the listener's filter: {v}"
    );
    assert_eq!(
        v["pinned"]["holder_pid"],
        d.pid(),
        "the running daemon holds the pins: {v}"
    );
    assert_eq!(v["pinned"]["dir"], pin_dir.display().to_string(), "{v}");
    assert_eq!(
        filter_packets(&v, "socket", "drop", "bad_opcode"),
        3,
        "the page agrees: {v}"
    );
    // A clean stop removes the pins; the directory is the test's to remove.
    d.signal("TERM");
    assert!(d.wait_exit(Duration::from_secs(20)).success(), "exit 0");
    let _ = std::fs::remove_dir(&pin_dir);
}
