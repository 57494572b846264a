//! Root-only: the real eBPF socket filters, loaded by the daemon into this kernel. The same
//! junk/valid mix as the userspace path must give the same counts, read from the daemon's
//! metrics and, independently, by `bpftool` from the pinned maps. Without root (or without the
//! object in this build) the test says why and skips; under CI=true that is a failure.
//!
//! One test function: the pins live at a fixed path, so two eBPF daemons must not overlap.

mod harness;

use std::process::Command;
use std::time::Duration;

use harness::bpftool::bpftool_sum;
use harness::junk::{EXPECTED, run_mix};
use harness::{is_root, skip};

/// Not the default directory: the test also shows `ebpf.pin_dir` is honoured.
const PIN_DIR: &str = "/sys/fs/bpf/tftpd-test";

#[test]
fn socket_filters_drop_the_junk_mix_in_the_kernel_with_the_same_counts() {
    if !is_root() {
        skip(
            "socket_filters_drop_the_junk_mix_in_the_kernel_with_the_same_counts",
            "needs root and BPF",
        );
        return;
    }
    let object = std::env::var_os("TFTPD_EBPF_OBJECT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../tftp-ebpf/target/bpfel-unknown-none/release/tftp-ebpf")
        });
    if !object.is_file() {
        skip(
            "socket_filters_drop_the_junk_mix_in_the_kernel_with_the_same_counts",
            "needs the eBPF object (cargo xtask build-ebpf)",
        );
        return;
    }
    // What the default directory holds before (another daemon's pins, or leftovers of one
    // that was killed): this daemon must add nothing to it.
    let default_pins = || -> Vec<(std::ffi::OsString, u64)> {
        use std::os::unix::fs::MetadataExt as _;
        let mut v: Vec<_> = std::fs::read_dir("/sys/fs/bpf/tftpd")
            .map(|d| {
                d.flatten()
                    .map(|e| (e.file_name(), e.metadata().map_or(0, |m| m.ino())))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let before = default_pins();
    let (mut d, body) = run_mix(
        "socket",
        &["--ebpf", "required"],
        &format!("[ebpf]\npin_dir = \"{PIN_DIR}\"\n"),
    );
    assert_eq!(
        default_pins(),
        before,
        "nothing pinned at the default directory"
    );
    d.wait_for_log("eBPF socket filters attached", Duration::from_secs(5));
    // Nothing reached the userspace rules: the kernel dropped it all.
    for (verdict, reason, _, _) in EXPECTED {
        let n = harness::junk::counter(
            &body,
            "tftpd_filter_packets_total",
            "userspace",
            verdict,
            reason,
        );
        assert_eq!(
            n, 0,
            "userspace saw {reason}: the kernel filter should have dropped it"
        );
    }
    // A second daemon on the same pin_dir keeps off this one's pins: with `required` it
    // refuses to start and names the key, with `auto` it serves with classic BPF. The bpftool
    // and `tftpd stats` checks below read this daemon's counts from the pins afterwards.
    let config = format!("[protocol]\nmax_blksize = 512\n[ebpf]\npin_dir = \"{PIN_DIR}\"\n");
    let (ok, said) = second_daemon_refused(&config);
    assert!(
        !ok,
        "a second daemon with ebpf.mode required started: {said}"
    );
    assert!(
        said.contains(PIN_DIR)
            && said.contains("in use by another running tftpd")
            && said.contains("ebpf.pin_dir"),
        "the refusal names the directory and the key: {said}"
    );
    let fallback = harness::Daemon::start(harness::DaemonArgs {
        args: vec!["--ebpf".into(), "auto".into()],
        config: Some(config),
        ..harness::DaemonArgs::default()
    });
    let line = fallback.wait_for_log(
        "eBPF unavailable, trying classic BPF",
        Duration::from_secs(5),
    );
    assert!(line.contains("in use by another running tftpd"), "{line}");
    fallback.wait_for_log(
        "classic BPF socket filters attached",
        Duration::from_secs(5),
    );
    drop(fallback);
    // bpftool reads the same numbers from the pinned maps (listener + transfer maps).
    let reasons = [
        "passed",
        "too_short",
        "bad_opcode",
        "malformed_request",
        "oversized",
        "bad_ack_length",
    ];
    for (index, reason) in reasons.iter().enumerate() {
        let (lp, lb) = bpftool_sum(PIN_DIR, "listen_counts", index as u64);
        let (xp, xb) = bpftool_sum(PIN_DIR, "xfer_counts", index as u64);
        let verdict = if *reason == "passed" { "pass" } else { "drop" };
        let metric_p = harness::junk::counter(
            &body,
            "tftpd_filter_packets_total",
            "socket",
            verdict,
            reason,
        );
        let metric_b =
            harness::junk::counter(&body, "tftpd_filter_bytes_total", "socket", verdict, reason);
        assert_eq!(
            lp + xp,
            metric_p,
            "{reason}: bpftool packets match the metrics"
        );
        assert_eq!(
            lb + xb,
            metric_b,
            "{reason}: bpftool bytes match the metrics"
        );
    }
    // `tftpd stats` reads the same pinned maps without the daemon's help.
    let out = Command::new(env!("CARGO_BIN_EXE_tftpd"))
        .args(["stats", "--pin-dir", PIN_DIR])
        .output()
        .expect("tftpd stats");
    assert!(
        out.status.success(),
        "tftpd stats: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    let row = |role: &str, reason: &str| -> u64 {
        table
            .lines()
            .find(|l| {
                l.split_whitespace().next() == Some(role)
                    && l.split_whitespace().nth(2) == Some(reason)
            })
            .and_then(|l| l.split_whitespace().nth(3))
            .unwrap_or_else(|| panic!("no {role}/{reason} row in:\n{table}"))
            .parse()
            .expect("a number")
    };
    assert_eq!(row("listener", "bad_opcode"), 3, "{table}");
    assert_eq!(row("listener", "malformed_request"), 2, "{table}");
    assert_eq!(row("transfer", "bad_ack_length"), 2, "{table}");
    assert_eq!(row("transfer", "oversized"), 1, "{table}");
    assert_eq!(row("transfer", "bad_opcode"), 1, "{table}");
    d.signal("TERM");
    let status = d.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "exit 0, got {status}");
    assert!(
        !std::path::Path::new(PIN_DIR).join("listen_counts").exists(),
        "the pins are removed on shutdown"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_tftpd"))
        .args(["stats", "--pin-dir", PIN_DIR])
        .output()
        .expect("tftpd stats");
    assert_eq!(
        out.status.code(),
        Some(1),
        "stats without a running daemon fails"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("listen_counts"),
        "and names the missing pin: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts a daemon with `config` and `--ebpf required` while another holds its pin_dir;
/// returns whether it started and what it said on stderr.
fn second_daemon_refused(config: &str) -> (bool, String) {
    let root = harness::TempDir::new("ebpf-second-root");
    let cfg = harness::TempDir::new("ebpf-second-cfg");
    let args = harness::DaemonArgs {
        args: vec!["--ebpf".into(), "required".into()],
        config: Some(config.to_string()),
        ..harness::DaemonArgs::default()
    };
    let mut child = harness::command(&args, root.path(), cfg.path())
        .spawn()
        .expect("starting the second tftpd");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the second tftpd") {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut said = String::new();
    if let Some(mut err) = child.stderr.take() {
        use std::io::Read as _;
        let _ = err.read_to_string(&mut said);
    }
    (status.is_none_or(|s| s.success()), said)
}
