//! `[performance.realtime]`: as root every thread runs under SCHED_FIFO at the configured
//! priority and memory is locked; without the capabilities (taken away with `setpriv`) the
//! daemon says why in one warning each and serves on. Both need root to arrange, so without
//! it these tests skip (under CI=true they fail instead).

mod harness;

use std::time::Duration;

use harness::raw::Raw;
use harness::{Daemon, DaemonArgs, is_root, pattern, skip};

const REPLY: Duration = Duration::from_secs(5);
const CONFIG: &str = "[performance.realtime]\npriority = 7\nlock_memory = true\n";

/// (policy, rt_priority) of every thread of `pid`, from /proc/PID/task/*/stat (fields 41
/// and 40, counted after the parenthesised command name).
fn thread_policies(pid: u32) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("task list") {
        let stat = std::fs::read_to_string(task.expect("task").path().join("stat")).expect("stat");
        let after = &stat[stat.rfind(')').expect("comm") + 2..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        // `after` starts at field 3 (state): field n is fields[n - 3].
        out.push((
            fields[41 - 3].parse().expect("policy"),
            fields[40 - 3].parse().expect("rt_priority"),
        ));
    }
    out
}

fn locked_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmLck")
}

#[test]
fn as_root_every_thread_runs_sched_fifo_and_memory_is_locked() {
    if !is_root() {
        return skip(
            "as_root_every_thread_runs_sched_fifo_and_memory_is_locked",
            "needs root",
        );
    }
    let d = Daemon::start(DaemonArgs {
        config: Some(format!("{CONFIG}[performance.cpu]\ntransfer_threads = 2\n")),
        ..DaemonArgs::default()
    });
    d.put_file("f.bin", &pattern(100_000, 1));
    let got = Raw::new(d.addr())
        .download("f.bin", &[], REPLY)
        .expect("download");
    assert_eq!(got, pattern(100_000, 1), "every byte");
    let policies = thread_policies(d.pid());
    assert!(
        policies.len() >= 3,
        "the runtime's threads and a transfer thread: {policies:?}"
    );
    // SCHED_FIFO is policy 1.
    assert!(
        policies.iter().all(|&p| p == (1, 7)),
        "every thread SCHED_FIFO at 7, those made later too: {policies:?}"
    );
    assert!(locked_kib(d.pid()) > 0, "VmLck is 0: memory not locked");
    assert!(d.log().contains("memory locked"), "{}", d.log());
}

#[test]
fn without_the_capabilities_it_warns_and_serves_on() {
    if !is_root() {
        return skip(
            "without_the_capabilities_it_warns_and_serves_on",
            "needs root (setpriv)",
        );
    }
    let d = Daemon::start(DaemonArgs {
        config: Some(CONFIG.into()),
        // Root without CAP_SYS_NICE, CAP_IPC_LOCK and CAP_SYS_RESOURCE: no real-time policy,
        // no locking beyond RLIMIT_MEMLOCK, and no raising it.
        wrapper: vec![
            "setpriv".into(),
            "--bounding-set=-sys_nice,-ipc_lock,-sys_resource".into(),
            "--inh-caps=-all".into(),
            "--".into(),
        ],
        ..DaemonArgs::default()
    });
    d.wait_for_log("SCHED_FIFO was refused", REPLY);
    let log = d.log();
    assert!(log.contains("memory is not locked"), "{log}");
    assert!(
        log.contains("RLIMIT_MEMLOCK"),
        "the warning says why: {log}"
    );
    d.put_file("f.bin", &pattern(5000, 2));
    let got = Raw::new(d.addr())
        .download("f.bin", &[], REPLY)
        .expect("download");
    assert_eq!(got, pattern(5000, 2), "it serves on");
    assert!(
        thread_policies(d.pid())
            .iter()
            .all(|&(policy, _)| policy == 0),
        "the normal scheduler (SCHED_OTHER)"
    );
    assert_eq!(locked_kib(d.pid()), 0, "nothing locked");
}
