//! Listener fast paths (issue #5): `recvmmsg` on the listening sockets, `SO_REUSEPORT`
//! worker groups and CPU affinity, each checked with real sockets and the real binary:
//! requests of a burst are all served, every socket of a group is bound, filtered and
//! serving, real clients download, the threads sit on the listed CPUs, and bad values are
//! config errors naming the key. Speed is the measurement script's business
//! (scripts/measure/listen-fast.sh), never a test's.

mod harness;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use harness::clients::{Client, Opts, get};
use harness::raw::{Raw, Reply, ack, request};
use harness::{Daemon, DaemonArgs, TempDir, free_tcp_port, metric, pattern, scrape_metrics};

const REPLY: Duration = Duration::from_secs(5);

fn start(config: &str, extra: &[&str]) -> (Daemon, u16) {
    let port = free_tcp_port();
    let mut args = vec!["--metrics-listen".to_string(), format!("127.0.0.1:{port}")];
    args.extend(extra.iter().map(|s| (*s).to_string()));
    let d = Daemon::start(DaemonArgs {
        args,
        config: Some(config.to_string()),
        ..DaemonArgs::default()
    });
    (d, port)
}

/// Sends `clients` RRQs for `name` at once (each from its own port), then completes each
/// one-block download and checks the bytes.
fn burst_of_downloads(server: SocketAddr, name: &str, content: &[u8], clients: usize) {
    let raws: Vec<Raw> = (0..clients).map(|_| Raw::new(server)).collect();
    for r in &raws {
        r.send(&request(1, name.as_bytes(), "octet", &[]));
    }
    for (i, r) in raws.iter().enumerate() {
        match r.expect(REPLY, "DATA 1") {
            (Reply::Data { block: 1, data }, tid) => {
                assert_eq!(data, content, "client {i}: the whole file in block 1");
                r.send_to(&ack(1), tid);
            }
            other => panic!("client {i}: expected DATA 1, got {other:?}"),
        }
    }
}

/// `/proc/net/udp` rows of unconnected sockets on `port`: (inode, drops).
fn listening_sockets(port: u16) -> Vec<(String, u64)> {
    let want = format!(":{port:04X}");
    std::fs::read_to_string("/proc/net/udp")
        .expect("/proc/net/udp")
        .lines()
        .skip(1)
        .filter_map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            (c.get(1)?.ends_with(&want) && c.get(2)?.ends_with(":0000"))
                .then(|| Some((c.get(9)?.to_string(), c.last()?.parse().ok()?)))
                .flatten()
        })
        .collect()
}

#[test]
fn recvmmsg_serves_every_request_of_a_burst_and_reload_turns_it_off() {
    let (d, port) = start("[performance.batching]\nrecv_batch = 8\n", &[]);
    assert!(
        d.log().contains("listeners read requests with recvmmsg"),
        "the start-up line names the path:\n{}",
        d.log()
    );
    let content = pattern(300, 3);
    d.put_file("small.bin", &content);
    burst_of_downloads(d.addr(), "small.bin", &content, 40);
    // A request over limits.max_request_size arrives whole and is refused as the portable
    // path refuses it; a malformed one likewise.
    let big = Raw::new(d.addr());
    big.send(&request(1, &vec![b'a'; 3000], "octet", &[]));
    match big.expect(REPLY, "ERROR for the oversized request") {
        (Reply::Error { code: 4, message }, _) => {
            assert!(message.contains("too large"), "{message}");
        }
        other => panic!("expected ERROR 4, got {other:?}"),
    }
    let junk = Raw::new(d.addr());
    junk.send(b"\x00\x01f.bin\x00octet\x00blksize\x00");
    match junk.expect(REPLY, "ERROR for the malformed request") {
        (Reply::Error { code: 8, .. }, _) => {}
        other => panic!("expected ERROR 8, got {other:?}"),
    }
    let body = scrape_metrics(port);
    let mmsg = metric(
        &body,
        "tftpd_listener_receive_calls_total{method=\"recvmmsg\"}",
    );
    let datagrams = metric(&body, "tftpd_listener_datagrams_total");
    assert!(mmsg >= 1, "the listener used recvmmsg:\n{body}");
    assert_eq!(
        metric(
            &body,
            "tftpd_listener_receive_calls_total{method=\"single\"}"
        ),
        0,
        "no one-at-a-time receive while recvmmsg is on"
    );
    assert!(datagrams >= 42, "every request was received: {datagrams}");

    // The kill switch: a reload applies at the listener's next receive. Written with the
    // deprecated key an older file has, which still turns recvmmsg off (recv_batch = 1)
    // and is named, with its replacement, when the reload reads it.
    std::fs::write(
        d.config_path(),
        "[performance.batching]\nrecvmmsg = false\nrecv_batch = 8\n",
    )
    .expect("rewrite the config");
    let mark = d.log_len();
    d.signal("HUP");
    d.wait_for_log_after("config reloaded", mark, REPLY);
    let warned = d.wait_for_log_after(
        "performance.batching.recvmmsg (false) is deprecated",
        mark,
        REPLY,
    );
    assert!(warned.contains("recv_batch = 1"), "{warned}");
    // The receive already waiting when the reload came still uses the old path.
    burst_of_downloads(d.addr(), "small.bin", &content, 1);
    let before = metric(
        &scrape_metrics(port),
        "tftpd_listener_receive_calls_total{method=\"recvmmsg\"}",
    );
    burst_of_downloads(d.addr(), "small.bin", &content, 5);
    let body = scrape_metrics(port);
    assert_eq!(
        metric(
            &body,
            "tftpd_listener_receive_calls_total{method=\"recvmmsg\"}"
        ),
        before,
        "recvmmsg = false (recv_batch = 1) after SIGHUP: no more batched receives"
    );
    assert!(
        metric(
            &body,
            "tftpd_listener_receive_calls_total{method=\"single\"}"
        ) >= 5,
        "{body}"
    );
}

#[test]
fn recvmmsg_off_is_the_portable_path() {
    let (d, port) = start("", &[]);
    let content = pattern(100, 4);
    d.put_file("f.bin", &content);
    burst_of_downloads(d.addr(), "f.bin", &content, 5);
    let body = scrape_metrics(port);
    assert_eq!(
        metric(
            &body,
            "tftpd_listener_receive_calls_total{method=\"recvmmsg\"}"
        ),
        0,
        "off by default"
    );
    assert!(d.log().contains("recvmmsg off"), "{}", d.log());
}

#[test]
fn reuseport_workers_bind_a_filtered_group_and_every_socket_serves() {
    let (d, port) = start(
        "[performance.socket]\nreuseport_workers = 3\n",
        &["--ebpf", "cbpf"],
    );
    // /proc/net/udp is read a page at a time while other tests' sockets come and go, so one
    // read can skip entries: read again for a moment before concluding.
    let deadline = Instant::now() + REPLY;
    let mut group = listening_sockets(d.addr().port());
    while group.len() != 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        group = listening_sockets(d.addr().port());
    }
    assert_eq!(group.len(), 3, "three sockets on the port: {group:?}");
    assert!(
        d.log().contains("listening with SO_REUSEPORT groups"),
        "{}",
        d.log()
    );
    // Junk from 60 source ports: the kernel hashes them over the group, and each socket's
    // classic BPF filter drops what reaches it (counted in that socket's drops column). A
    // socket without the filter would pass its share to the daemon instead.
    let junk: Vec<std::net::UdpSocket> = (0..60)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").expect("junk client"))
        .collect();
    for s in &junk {
        s.send_to(&[0, 4, 0, 1], d.addr()).expect("send junk");
    }
    let deadline = Instant::now() + REPLY;
    let mut group = listening_sockets(d.addr().port());
    while group.iter().map(|(_, n)| n).sum::<u64>() < 60 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        group = listening_sockets(d.addr().port());
    }
    assert!(
        group.iter().all(|(_, drops)| *drops > 0),
        "every socket of the group filtered its share: {group:?}"
    );
    assert_eq!(
        group.iter().map(|(_, n)| n).sum::<u64>(),
        60,
        "all junk died in the kernel: {group:?}"
    );
    let body = scrape_metrics(port);
    assert!(
        body.contains("tftpd_kernel_listener_drops_total{listen=\"127.0.0.1:")
            && body
                .lines()
                .any(|l| l.starts_with("tftpd_kernel_listener_drops_total") && l.ends_with(" 60")),
        "the drops of the whole group are summed:\n{body}"
    );
    // Requests from 30 ports land on every socket of the group, and all are served.
    let content = pattern(200, 5);
    d.put_file("r.bin", &content);
    burst_of_downloads(d.addr(), "r.bin", &content, 30);
    // A real client, with a window.
    if Client::TftpHpa.available("reuseport_workers_bind_a_filtered_group_and_every_socket_serves")
    {
        let big = pattern(700_000, 6);
        d.put_file("big.bin", &big);
        let dir = TempDir::new("reuseport");
        let local = dir.path().join("big.bin");
        get(
            Client::TftpHpa,
            d.addr(),
            "big.bin",
            &local,
            &Opts::default(),
        )
        .unwrap_or_else(|e| panic!("tftp-hpa: {e}"));
        assert!(std::fs::read(&local).expect("read") == big, "every byte");
    }
}

#[test]
fn reuseport_workers_in_single_port_mode_route_every_ack() {
    if !Client::Curl.available("reuseport_workers_in_single_port_mode_route_every_ack") {
        return;
    }
    let (d, _) = start(
        "single_port = true\n[performance.socket]\nreuseport_workers = 2\n[performance.batching]\nrecv_batch = 32\n",
        &[],
    );
    assert_eq!(listening_sockets(d.addr().port()).len(), 2, "two sockets");
    let content = pattern(300_000, 7);
    d.put_file("s.bin", &content);
    let dir = TempDir::new("single-port-group");
    for i in 0..4 {
        let local = dir.path().join(format!("s{i}.bin"));
        get(Client::Curl, d.addr(), "s.bin", &local, &Opts::default())
            .unwrap_or_else(|e| panic!("curl run {i}: {e}"));
        assert!(std::fs::read(&local).expect("read") == content, "run {i}");
    }
}

#[cfg(linux)]
#[test]
fn affinity_pins_every_thread_to_the_listed_cpus() {
    let (d, _) = start("[performance.cpu]\naffinity = [0]\n", &[]);
    assert!(
        d.log()
            .contains("threads pinned to performance.cpu.affinity"),
        "{}",
        d.log()
    );
    // Work makes the runtime start its threads (and the blocking pool's).
    let content = pattern(5000, 8);
    d.put_file("a.bin", &content);
    let got = Raw::new(d.addr())
        .download("a.bin", &[], REPLY)
        .unwrap_or_else(|e| panic!("download: {e:?}"));
    assert_eq!(got, content, "served while pinned");
    let mut seen = 0;
    for (name, cpus) in d.threads() {
        assert_eq!(cpus, "0", "every thread on CPU 0: {name}");
        seen += 1;
    }
    assert!(
        seen > 1,
        "the runtime's threads were checked, not only main"
    );
}

fn check_config(text: &str) -> (bool, String) {
    let dir = TempDir::new("lf-check");
    let path = dir.path().join("t.toml");
    std::fs::write(&path, format!("root = {:?}\n{text}", dir.path())).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_tftpd"))
        .args(["--check-config", "--config"])
        .arg(&path)
        .output()
        .expect("run tftpd");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_listener_fast_path_values_are_config_errors_naming_the_key() {
    for (text, key, allowed) in [
        (
            "[performance.cpu]\naffinity = [4095]\n",
            "performance.cpu.affinity",
            "CPU 4095",
        ),
        (
            "[performance.batching]\nrecv_batch = 0\n",
            "performance.batching.recv_batch",
            "1..=1024",
        ),
        (
            "[performance.batching]\nrecv_batch = 5000\n",
            "performance.batching.recv_batch",
            "1..=1024",
        ),
        (
            "[performance.socket]\nreuseport_workers = 1000\n",
            "performance.socket.reuseport_workers",
            "0..=256",
        ),
    ] {
        let (ok, err) = check_config(text);
        assert!(!ok, "{text:?} is refused");
        assert!(
            err.contains(key) && err.contains(allowed),
            "{text:?}: the error names {key} and {allowed}: {err}"
        );
    }
    let (ok, err) = check_config(
        "[performance.cpu]\naffinity = [0]\n[performance.socket]\nreuseport_workers = 0\n\
         [performance.batching]\nrecv_batch = 64\n",
    );
    assert!(ok, "valid values pass: {err}");
}

/// systemd's part in socket activation: a bound socket at fd 3 (with `SO_REUSEPORT` when the
/// first argument is "reuseport", as `ReusePort=yes` does) and the LISTEN_* variables.
const ACTIVATE: &str = r#"
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
if sys.argv[1] == "reuseport":
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("127.0.0.1", 0))
if s.fileno() != 3:
    os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
print(s.getsockname()[1], flush=True)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[2], sys.argv[2:])
"#;

#[test]
fn socket_activation_joins_a_reuseport_socket_and_serves_a_plain_one_alone() {
    use std::io::{BufRead as _, BufReader};
    if !Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        harness::skip(
            "socket_activation_joins_a_reuseport_socket_and_serves_a_plain_one_alone",
            "needs python3 to play systemd",
        );
        return;
    }
    for (mode, sockets) in [("reuseport", 3), ("plain", 1)] {
        let dir = TempDir::new("lf-activate");
        std::fs::write(dir.path().join("f.bin"), b"activated").expect("file");
        let config = dir.path().join("t.toml");
        std::fs::write(&config, "[performance.socket]\nreuseport_workers = 3\n").expect("config");
        let mut child = Command::new("python3")
            .args(["-c", ACTIVATE, mode, env!("CARGO_BIN_EXE_tftpd"), "--root"])
            .arg(dir.path())
            .arg("--config")
            .arg(&config)
            .args(["--user", &harness::current_user(), "--ebpf", "off"])
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("starting the wrapper");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the wrapper prints the port");
        let port: u16 = line.trim().parse().expect("a port");
        let mut log = String::new();
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
        while !log.contains("tftpd ready") {
            let mut l = String::new();
            if stderr.read_line(&mut l).expect("log") == 0 {
                break;
            }
            log.push_str(&l);
        }
        let group = listening_sockets(port);
        let c = Raw::new(SocketAddr::from(([127, 0, 0, 1], port)));
        let got = c.download("f.bin", &[], REPLY);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(group.len(), sockets, "{mode}: sockets on the port\n{log}");
        assert_eq!(got.expect("download"), b"activated", "{mode}: serves");
        assert_eq!(
            log.contains("adopted sockets without SO_REUSEPORT"),
            mode == "plain",
            "{mode}: one line says why a plain socket serves alone\n{log}"
        );
    }
}
