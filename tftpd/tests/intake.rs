//! Listener threads (`performance.cpu.intake_threads`): each listening socket takes its
//! requests on a thread of its own; with `performance.cpu.affinity` each thread of a
//! reuseport group sits on one listed CPU and the kernel hands it the requests that CPU
//! receives (`SO_INCOMING_CPU`). Checked with the real binary: which threads exist and
//! where they may run, and, from a client pinned to each CPU in turn, which worker's
//! counter took its requests. Off, the listener stays a task on the async runtime.

mod harness;

use std::time::Duration;

use harness::raw::{Raw, Reply, request};
use harness::{Daemon, DaemonArgs, free_tcp_port, metric, pattern, scrape_metrics, skip};

const REPLY: Duration = Duration::from_secs(5);

fn start(config: &str) -> (Daemon, u16) {
    let port = free_tcp_port();
    let d = Daemon::start(DaemonArgs {
        args: vec!["--metrics-listen".into(), format!("127.0.0.1:{port}")],
        config: Some(config.to_string()),
        ..DaemonArgs::default()
    });
    (d, port)
}

/// Requests a file that is not there `n` times, each from a new client socket, and waits
/// for every ERROR 1: one request each through the listener.
fn missing_file_requests(d: &Daemon, n: usize) {
    for i in 0..n {
        let c = Raw::new(d.addr());
        c.send(&request(1, b"missing.bin", "octet", &[]));
        match c.expect(REPLY, "ERROR 1") {
            (Reply::Error { code: 1, .. }, _) => {}
            other => panic!("request {i}: expected ERROR 1, got {other:?}"),
        }
    }
}

#[test]
fn listeners_run_on_threads_of_their_own_by_default_and_on_the_runtime_when_off() {
    for (config, threads_expected) in [("", 1), ("[performance.cpu]\nintake_threads = false\n", 0)]
    {
        let (d, _) = start(config);
        let content = pattern(3000, 4);
        d.put_file("a.bin", &content);
        let got = Raw::new(d.addr())
            .download("a.bin", &[], REPLY)
            .unwrap_or_else(|e| panic!("download ({config:?}): {e:?}"));
        assert_eq!(got, content, "served ({config:?})");
        let intake = d
            .threads()
            .into_iter()
            .filter(|(name, _)| name.starts_with("tftpd-intake"))
            .count();
        assert_eq!(
            intake,
            threads_expected,
            "listener threads with {config:?}: {:?}",
            d.threads()
        );
    }
}

#[test]
fn single_port_mode_keeps_its_listener_on_the_runtime_and_says_so() {
    let (d, _) = start("single_port = true\n");
    let content = pattern(3000, 5);
    d.put_file("a.bin", &content);
    let got = Raw::new(d.addr())
        .download("a.bin", &[], REPLY)
        .unwrap_or_else(|e| panic!("download: {e:?}"));
    assert_eq!(got, content, "served from the listening socket");
    assert!(
        d.log().contains("its listener stays on the async runtime"),
        "{}",
        d.log()
    );
    assert!(
        !d.threads()
            .iter()
            .any(|(n, _)| n.starts_with("tftpd-intake")),
        "no listener thread in single-port mode: {:?}",
        d.threads()
    );
}

#[cfg(linux)]
#[test]
fn pinned_listener_threads_take_the_requests_their_cpu_receives() {
    use nix::sched::{CpuSet, sched_setaffinity};
    use nix::unistd::Pid;

    let test = "pinned_listener_threads_take_the_requests_their_cpu_receives";
    let online = std::thread::available_parallelism().map_or(1, usize::from);
    if online < 2 {
        skip(test, "needs 2 CPUs");
        return;
    }
    let (d, port) = start(
        "[performance.socket]\nreuseport_workers = 2\n[performance.cpu]\naffinity = [0, 1]\n",
    );
    let pinned: Vec<(String, String)> = d
        .threads()
        .into_iter()
        .filter(|(n, _)| n.starts_with("tftpd-intake"))
        .collect();
    let mut want = vec![
        ("tftpd-intake-0".to_string(), "0".to_string()),
        ("tftpd-intake-1".to_string(), "1".to_string()),
    ];
    let mut got = pinned.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want, "one listener thread on each listed CPU");
    // Loopback delivers a datagram on the CPU that sent it, so a client pinned to a CPU
    // is what a NIC queue served by that CPU would be.
    let mut expected = [0u64; 2];
    for cpu in [1usize, 0] {
        let n = 12;
        let daemon = &d;
        std::thread::scope(|s| {
            s.spawn(move || {
                let mut set = CpuSet::new();
                set.set(cpu).expect("cpu");
                sched_setaffinity(Pid::from_raw(0), &set).expect("pin the client");
                missing_file_requests(daemon, n);
            });
        });
        expected[cpu] += n as u64;
        let body = scrape_metrics(port);
        for (c, want) in expected.iter().enumerate() {
            assert_eq!(
                metric(
                    &body,
                    &format!("tftpd_listener_pinned_datagrams_total{{cpu=\"{c}\"}}")
                ),
                *want,
                "after {n} requests from CPU {cpu}, the worker on CPU {c}:\n{body}"
            );
        }
    }
}

/// `performance.memory.numa` on this one-node machine: one start-up line says there is
/// nothing to place, and the pinned listener serves; off, no line. (Placement on a host with
/// several nodes is unit-tested in `fastpath/numa.rs`: the topology from a sysfs tree, and a
/// thread's preferred node set and read back.)
#[cfg(linux)]
#[test]
fn numa_placement_says_what_it_does_on_this_host() {
    let nodes = std::fs::read_to_string("/sys/devices/system/node/online").unwrap_or_default();
    let (d, _) = start("[performance.cpu]\naffinity = [0]\n");
    d.wait_for_log("listener thread pinned", REPLY);
    let log = d.log();
    if nodes.trim() == "0" {
        assert!(
            log.contains("one NUMA node: performance.memory.numa has nothing to place"),
            "{log}"
        );
    } else {
        assert!(log.contains("its memory on the CPU's NUMA node"), "{log}");
    }
    let content = pattern(2000, 6);
    d.put_file("a.bin", &content);
    let got = Raw::new(d.addr())
        .download("a.bin", &[], REPLY)
        .unwrap_or_else(|e| panic!("download: {e:?}"));
    assert_eq!(got, content);
    let (off, _) = start("[performance.cpu]\naffinity = [0]\n[performance.memory]\nnuma = false\n");
    off.wait_for_log("listener thread pinned", REPLY);
    let log = off.log();
    assert!(!log.contains("NUMA"), "numa = false says nothing: {log}");
}
