//! RFC 2090 multicast downloads on a LAN the test builds (a bridge and one network
//! namespace per client; root only): real atftp clients, and a test client written here
//! (`GroupClient`) where a test needs a member that paces or stops its ACKs, which no
//! packaged client does on demand.
//!
//! The atftp client (0.8.0) is a real RFC 2090 client: it joins the group from the OACK,
//! keeps every block it sees, and ACKs the block before its first hole when master.

mod harness;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use harness::lan::Lan;
use harness::{Daemon, DaemonArgs, is_root, skip};

/// The server's and the clients' addresses on LAN `n`: each test has its own subnet, as
/// the tests run side by side and every bridge lives in this namespace.
fn addresses(n: u8) -> (Ipv4Addr, [Ipv4Addr; 3]) {
    let a = |host| Ipv4Addr::new(10, 91, n, host);
    (a(1), [a(11), a(12), a(13)])
}
/// How long one client may take; every wait below is bounded by it.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a log line may take to appear.
const LOG_TIMEOUT: Duration = Duration::from_secs(20);

fn config(extra: &str) -> String {
    format!(
        "[multicast]\nenabled = true\naddress = \"239.255.91.1-4\"\nport = \"1758-1759\"\n{extra}\n"
    )
}

/// Root and the atftp client, or a skip (a failure under CI=true).
fn ready(test: &str) -> bool {
    if !is_root() {
        skip(test, "needs root (network namespaces, a bridge)");
        return false;
    }
    if std::process::Command::new("atftp")
        .arg("--help")
        .output()
        .is_err()
    {
        skip(test, "needs the atftp client (apt-get install atftp)");
        return false;
    }
    true
}

fn start(server: Ipv4Addr, extra: &str) -> (Daemon, SocketAddr) {
    let d = Daemon::start(DaemonArgs {
        args: vec!["--listen".into(), format!("{server}:0")],
        config: Some(config(extra)),
        ..DaemonArgs::default()
    });
    let server = *d
        .addrs()
        .iter()
        .find(|a| a.ip() == server)
        .expect("the LAN listener");
    (d, server)
}

/// Runs atftp in client `i`'s namespace asking for `file` by multicast, into `local`.
fn atftp(lan: &Lan, i: usize, server: SocketAddr, file: &str, local: &Path) -> Output {
    lan.command(i, "timeout")
        .args([
            &CLIENT_TIMEOUT.as_secs().to_string(),
            "atftp",
            "--option",
            "multicast",
            "--option",
            "blksize 1024",
            "--trace",
            "-g",
            "-r",
            file,
            "-l",
        ])
        .arg(local)
        .args([&server.ip().to_string(), &server.port().to_string()])
        .output()
        .expect("running atftp")
}

/// How many log lines contain every one of `needles`.
fn count_lines(log: &str, needles: &[&str]) -> usize {
    log.lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .count()
}

/// Waits until the log has `n` lines with every one of `needles`.
fn wait_lines(d: &Daemon, needles: &[&str], n: usize) -> String {
    let deadline = Instant::now() + LOG_TIMEOUT;
    loop {
        let log = d.log();
        if count_lines(&log, needles) >= n {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "{n} log lines with {needles:?} did not appear in {LOG_TIMEOUT:?}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn three_atftp_clients_share_one_group_and_each_gets_the_whole_file() {
    const TEST: &str = "three_atftp_clients_share_one_group_and_each_gets_the_whole_file";
    if !ready(TEST) {
        return;
    }
    let (server_ip, clients) = addresses(1);
    let lan = Lan::new("ma", server_ip, &clients);
    let metrics_port = harness::free_tcp_port();
    let d = Daemon::start(DaemonArgs {
        args: vec![
            "--listen".into(),
            format!("{server_ip}:0"),
            "--metrics-listen".into(),
            format!("127.0.0.1:{metrics_port}"),
        ],
        config: Some(config("")),
        ..DaemonArgs::default()
    });
    let server = *d
        .addrs()
        .iter()
        .find(|a| a.ip() == server_ip)
        .expect("the LAN listener");
    // 4 MB at blksize 1024: ~4000 lock-step blocks, long enough for all three to join.
    let content = harness::pattern(4_000_000, 21);
    d.put_file("image.bin", &content);
    let dir = harness::TempDir::new("mc-three");
    let lan = std::sync::Arc::new(lan);
    let runs: Vec<_> = (0..3)
        .map(|i| {
            let local = dir.path().join(format!("out{i}"));
            let lan = lan.clone();
            std::thread::spawn(move || (atftp(&lan, i, server, "image.bin", &local), local))
        })
        .collect();
    for (i, r) in runs.into_iter().enumerate() {
        let (out, local) = r.join().expect("client thread");
        let trace = String::from_utf8_lossy(&out.stderr);
        assert!(
            std::fs::read(&local).is_ok_and(|got| got == content),
            "client {i} has the whole file ({}): {trace}",
            out.status
        );
        assert!(
            trace.contains("multicast: 239.255.91."),
            "client {i} was served by multicast: {trace}"
        );
    }
    let log = wait_lines(
        &d,
        &["multicast member finished", "outcome=\"completed\""],
        3,
    );
    assert!(
        count_lines(&log, &["joined a multicast group"]) >= 1,
        "at least one client joined a running group:\n{log}"
    );
    // Each member is one read transfer; the group's payload is counted once as sent.
    let body = harness::wait_for_metrics(
        metrics_port,
        &[
            "tftpd_requests_total{kind=\"read\",outcome=\"completed\"} 3",
            "tftpd_active_transfers 0",
        ],
        harness::METRICS_TIMEOUT,
    );
    let sent: u64 = body
        .lines()
        .find_map(|l| l.strip_prefix("tftpd_sent_bytes_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("tftpd_sent_bytes_total in the metrics:\n{body}"));
    assert!(
        sent >= content.len() as u64 && sent < 3 * content.len() as u64,
        "the file went out once to the group (plus blocks sent again), not once per client: {sent}"
    );
}

/// What a test client does with its ACKs.
#[derive(Debug, Clone, Copy)]
struct Behaviour {
    /// Sleep before each ACK (keeps the group running while others join).
    pace: Duration,
    /// Stop answering, and leave, after this many ACKs.
    stop_after: Option<usize>,
}

/// What a test client saw.
#[derive(Debug, Default)]
struct Seen {
    /// The `mc` flag of each OACK, in order.
    mc: Vec<bool>,
    /// DATA block numbers in the order they arrived.
    order: Vec<u16>,
    blocks: BTreeMap<u16, Vec<u8>>,
    last: Option<u16>,
    finished: bool,
}

impl Seen {
    fn hole(&self) -> u16 {
        (1..=u16::MAX)
            .find(|b| !self.blocks.contains_key(b))
            .unwrap_or(u16::MAX)
            - 1
    }
    fn bytes(&self) -> Vec<u8> {
        self.blocks.values().flatten().copied().collect()
    }
}

/// A minimal RFC 2090 client: RRQ with `multicast`, join the group named in the OACK, keep
/// every block, ACK the block before the first hole while master (as atftp does).
fn group_client(local: Ipv4Addr, server: SocketAddr, file: &str, how: Behaviour) -> Seen {
    const BLKSIZE: usize = 1024;
    let uni = UdpSocket::bind(SocketAddrV4::new(local, 0)).expect("bind the client socket");
    uni.set_read_timeout(Some(Duration::from_millis(5)))
        .expect("timeout");
    let mut rrq = vec![0, 1];
    for part in [file, "octet", "multicast", "", "blksize", "1024"] {
        rrq.extend_from_slice(part.as_bytes());
        rrq.push(0);
    }
    uni.send_to(&rrq, server).expect("send the RRQ");
    let mut seen = Seen::default();
    let mut tid: Option<SocketAddr> = None;
    let mut group: Option<UdpSocket> = None;
    let mut master = false;
    let mut acks = 0usize;
    let mut buf = vec![0u8; 65536];
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let ack = |uni: &UdpSocket, to: SocketAddr, b: u16, acks: &mut usize| -> bool {
        if how.stop_after.is_some_and(|n| *acks >= n) {
            return false;
        }
        std::thread::sleep(how.pace);
        let [hi, lo] = b.to_be_bytes();
        uni.send_to(&[0, 4, hi, lo], to).expect("send an ACK");
        *acks += 1;
        true
    };
    while Instant::now() < deadline {
        if how.stop_after.is_some_and(|n| acks >= n) {
            // A client that died: it leaves without a word.
            return seen;
        }
        // The unicast socket: OACKs (and ERRORs).
        if let Ok((n, from)) = uni.recv_from(&mut buf) {
            let d = &buf[..n];
            if d.starts_with(&[0, 5]) {
                return seen;
            }
            if d.starts_with(&[0, 6]) {
                tid.get_or_insert(from);
                let fields: Vec<&[u8]> = d[2..].split(|b| *b == 0).collect();
                let value = fields
                    .windows(2)
                    .find(|w| w[0].eq_ignore_ascii_case(b"multicast"))
                    .map(|w| String::from_utf8_lossy(w[1]).into_owned())
                    .expect("the OACK answers multicast");
                let parts: Vec<&str> = value.split(',').collect();
                let addr: Ipv4Addr = parts[0].parse().expect("group address");
                let port: u16 = parts[1].parse().expect("group port");
                master = parts[2] == "1";
                seen.mc.push(master);
                if group.is_none() {
                    group = Some(join_group(local, addr, port));
                }
                if master {
                    let h = seen.hole();
                    if !ack(&uni, from, h, &mut acks) {
                        continue;
                    }
                    if Some(h) == seen.last {
                        seen.finished = true;
                        return seen;
                    }
                }
            }
        }
        // The group socket: DATA, from the server's TID only.
        let Some(g) = &group else { continue };
        while let Ok((n, from)) = g.recv_from(&mut buf) {
            if Some(from) != tid || n < 4 || buf[1] != 3 {
                continue;
            }
            let block = u16::from_be_bytes([buf[2], buf[3]]);
            seen.order.push(block);
            seen.blocks.insert(block, buf[4..n].to_vec());
            if n - 4 < BLKSIZE {
                seen.last = Some(block);
            }
            if master && let Some(to) = tid {
                let h = seen.hole();
                if !ack(&uni, to, h, &mut acks) {
                    break;
                }
                if Some(h) == seen.last {
                    seen.finished = true;
                    return seen;
                }
            }
        }
    }
    seen
}

/// A socket on `port` that has joined `group` on the interface holding `local`.
fn join_group(local: Ipv4Addr, group: Ipv4Addr, port: u16) -> UdpSocket {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)
        .expect("a group socket");
    s.set_reuse_address(true).expect("SO_REUSEADDR");
    s.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port).into())
        .expect("bind the group port");
    s.join_multicast_v4(&group, &local).expect("join the group");
    s.set_read_timeout(Some(Duration::from_millis(5)))
        .expect("timeout");
    s.into()
}

#[test]
fn late_atftp_joiner_takes_over_as_master_and_gets_the_blocks_it_missed() {
    const TEST: &str = "late_atftp_joiner_takes_over_as_master_and_gets_the_blocks_it_missed";
    if !ready(TEST) {
        return;
    }
    let (server_ip, clients) = addresses(2);
    let lan = Lan::new("mb", server_ip, &clients[..2]);
    let (d, server) = start(server_ip, "");
    // 400 blocks of 1024; the paced master takes ~1 s, the joiner arrives after ~100 blocks.
    let content = harness::pattern(400 * 1024 - 100, 22);
    d.put_file("late.bin", &content);
    let pace = Behaviour {
        pace: Duration::from_millis(2),
        stop_after: None,
    };
    let master = lan.spawn(0, move || {
        group_client(clients[0], server, "late.bin", pace)
    });
    wait_lines(&d, &["multicast group started"], 1);
    std::thread::sleep(Duration::from_millis(250));
    let dir = harness::TempDir::new("mc-late");
    let local = dir.path().join("late.bin");
    let out = atftp(&lan, 1, server, "late.bin", &local);
    let trace = String::from_utf8_lossy(&out.stderr);
    let first = master.join().expect("master thread");
    assert!(
        first.finished,
        "the first client finished as master (OACK mc flags {:?}, {} blocks, hole {}, last {:?}); atftp: {trace}\n{}",
        first.mc,
        first.blocks.len(),
        first.hole(),
        first.last,
        d.log()
    );
    assert_eq!(first.bytes(), content, "the first client has every byte");
    assert!(
        std::fs::read(&local).is_ok_and(|got| got == content),
        "the late atftp client has the whole file ({}): {trace}",
        out.status
    );
    let oacks: Vec<&str> = trace
        .lines()
        .filter(|l| l.contains("received OACK"))
        .collect();
    assert!(
        oacks
            .first()
            .is_some_and(|l| l.contains("multicast: 239.255.91.") && l.contains(",0")),
        "the joiner was first told it is not master: {oacks:?}"
    );
    assert!(
        oacks.iter().any(|l| l.contains("mc = 1")),
        "then told it is master: {oacks:?}"
    );
    assert!(
        trace.contains("DATA <block: 1, size"),
        "block 1, sent before it joined, was sent again for it: {trace}"
    );
    wait_lines(
        &d,
        &["multicast member finished", "outcome=\"completed\""],
        2,
    );
}

#[test]
fn master_that_stops_acking_is_dropped_and_the_next_member_finishes() {
    const TEST: &str = "master_that_stops_acking_is_dropped_and_the_next_member_finishes";
    if !ready(TEST) {
        return;
    }
    let (server_ip, clients) = addresses(3);
    let lan = Lan::new("mc", server_ip, &clients[..2]);
    // Short timers so the dead master is given up quickly.
    let (d, server) = start(server_ip, "[protocol]\ntimeout_ms = 200\nmax_retries = 2\n");
    let content = harness::pattern(300 * 1024 + 7, 23);
    d.put_file("dead.bin", &content);
    let dies = Behaviour {
        pace: Duration::from_millis(2),
        stop_after: Some(120),
    };
    let steady = Behaviour {
        pace: Duration::ZERO,
        stop_after: None,
    };
    let dead = lan.spawn(0, move || {
        group_client(clients[0], server, "dead.bin", dies)
    });
    wait_lines(&d, &["multicast group started"], 1);
    std::thread::sleep(Duration::from_millis(100));
    let next = lan.spawn(1, move || {
        group_client(clients[1], server, "dead.bin", steady)
    });
    let dead = dead.join().expect("dead client thread");
    let next = next.join().expect("next client thread");
    assert!(!dead.finished, "the first client stopped before the end");
    assert_eq!(
        next.mc.first(),
        Some(&false),
        "the second joined as a non-master"
    );
    assert!(next.mc.contains(&true), "then became master: {:?}", next.mc);
    assert!(next.finished, "the second client finished");
    assert_eq!(next.bytes(), content, "the second client has every byte");
    wait_lines(
        &d,
        &[
            "multicast member finished",
            &format!("member={}", clients[0]),
            "outcome=\"timed_out\"",
        ],
        1,
    );
    // The client is done when it has the last block; the server logs when the last ACK
    // arrives, and the line reaches stderr through the log writer: wait for it.
    let completed = [
        "multicast member finished",
        &format!("member={}", clients[1]),
        "outcome=\"completed\"",
    ];
    let log = wait_lines(&d, &completed, 1);
    assert_eq!(
        count_lines(&log, &completed),
        1,
        "the second member completed once:\n{log}"
    );
}

#[test]
fn switch_client_hands_over_at_the_first_timeout() {
    const TEST: &str = "switch_client_hands_over_at_the_first_timeout";
    if !ready(TEST) {
        return;
    }
    let (server_ip, clients) = addresses(4);
    let lan = Lan::new("md", server_ip, &clients[..2]);
    // A long retry budget: without the switch, the dead master would hold the group ~20 s.
    let (d, server) = start(
        server_ip,
        "switch_client = true\n[protocol]\ntimeout_ms = 200\nmax_retries = 100\n",
    );
    let content = harness::pattern(200 * 1024 + 9, 24);
    d.put_file("switch.bin", &content);
    let dies = Behaviour {
        pace: Duration::from_millis(2),
        stop_after: Some(60),
    };
    let dead = lan.spawn(0, move || {
        group_client(clients[0], server, "switch.bin", dies)
    });
    wait_lines(&d, &["multicast group started"], 1);
    std::thread::sleep(Duration::from_millis(50));
    let next = lan.spawn(1, move || {
        group_client(
            clients[1],
            server,
            "switch.bin",
            Behaviour {
                pace: Duration::ZERO,
                stop_after: None,
            },
        )
    });
    let next = next.join().expect("next client thread");
    let log = wait_lines(
        &d,
        &[
            "multicast member finished",
            &format!("member={}", clients[1]),
            "outcome=\"completed\"",
        ],
        1,
    );
    drop(dead.join());
    assert!(next.finished, "the second client finished");
    assert_eq!(next.bytes(), content, "the second client has every byte");
    assert_eq!(next.mc.first(), Some(&false), "joined as a non-master");
    assert!(next.mc.contains(&true), "then became master: {:?}", next.mc);
    // Without the switch the second client could only become master once the silent one
    // had used its 100 retries and been dropped; with it, the dead one is still a member.
    assert_eq!(
        count_lines(
            &log,
            &["multicast member finished", "outcome=\"timed_out\""]
        ),
        0,
        "the hand-over came at the first timeout, before the silent master was given up:\n{log}"
    );
}

#[test]
fn drain_deadline_tells_every_member_and_exits_zero() {
    const TEST: &str = "drain_deadline_tells_every_member_and_exits_zero";
    if !ready(TEST) {
        return;
    }
    let (server_ip, clients) = addresses(5);
    let lan = Lan::new("me", server_ip, &clients[..2]);
    let (mut d, server) = start(server_ip, "[shutdown]\ngrace_period_secs = 0\n");
    d.put_file("slow.bin", &harness::pattern(2000 * 1024, 25));
    // A master slow enough that the group is still running when the drain ends.
    let slow = Behaviour {
        pace: Duration::from_millis(20),
        stop_after: None,
    };
    let first = lan.spawn(0, move || {
        group_client(clients[0], server, "slow.bin", slow)
    });
    wait_lines(&d, &["multicast group started"], 1);
    let second = lan.spawn(1, move || {
        group_client(clients[1], server, "slow.bin", slow)
    });
    wait_lines(&d, &["multicast member joined"], 2);
    d.signal("TERM");
    let status = d.wait_exit(LOG_TIMEOUT);
    let (first, second) = (first.join().expect("first"), second.join().expect("second"));
    assert!(status.success(), "exit 0 after the drain: {status}");
    assert!(
        !first.finished && !second.finished,
        "both were cut short by the drain"
    );
    assert_eq!(
        count_lines(
            &d.log(),
            &["multicast member finished", "outcome=\"aborted\""]
        ),
        2,
        "both members were told the server is going:\n{}",
        d.log()
    );
}

/// The first reply to an RRQ for `file` in `mode` asking for `multicast`, from `server`.
fn first_reply(server: SocketAddr, file: &str, mode: &str) -> Vec<u8> {
    let bind: SocketAddr = if server.is_ipv4() {
        "127.0.0.1:0".parse().expect("addr")
    } else {
        "[::1]:0".parse().expect("addr")
    };
    let s = UdpSocket::bind(bind).expect("bind");
    s.set_read_timeout(Some(LOG_TIMEOUT)).expect("timeout");
    let mut rrq = vec![0, 1];
    for part in [file, mode, "multicast", ""] {
        rrq.extend_from_slice(part.as_bytes());
        rrq.push(0);
    }
    s.send_to(&rrq, server).expect("send the RRQ");
    let mut buf = [0u8; 1024];
    let (n, from) = s.recv_from(&mut buf).expect("a reply");
    // End whatever started, so the daemon does not wait on us.
    let _ = s.send_to(b"\x00\x05\x00\x00done\x00", from);
    buf[..n].to_vec()
}

#[test]
fn multicast_is_left_unanswered_when_off_for_netascii_and_for_ipv6() {
    // Loopback only: no root needed.
    let d = Daemon::start(DaemonArgs {
        config: Some(config("")),
        ipv6: true,
        ..DaemonArgs::default()
    });
    d.put_file("f.txt", b"hello\n");
    let oack = first_reply(d.addr(), "f.txt", "octet");
    assert!(
        oack.starts_with(b"\x00\x06multicast\x00239.255.91.1,1758,1\x00"),
        "served: the OACK names the group and makes the client master: {oack:?}"
    );
    let data1 = b"\x00\x03\x00\x01".as_slice();
    let netascii = first_reply(d.addr(), "f.txt", "netascii");
    assert!(
        netascii.starts_with(data1),
        "netascii: unicast DATA 1, no OACK: {netascii:?}"
    );
    let v6 = first_reply(d.addr_v6(), "f.txt", "octet");
    assert!(
        v6.starts_with(data1),
        "IPv6: unicast DATA 1, no OACK: {v6:?}"
    );
    let off = Daemon::start(DaemonArgs {
        config: Some("[multicast]\nenabled = false\n".into()),
        ..DaemonArgs::default()
    });
    off.put_file("f.txt", b"hello\n");
    let reply = first_reply(off.addr(), "f.txt", "octet");
    assert!(
        reply.starts_with(data1),
        "multicast off: unicast DATA 1, no OACK: {reply:?}"
    );
}

/// Sends `rrq` from `s` to `server` and returns the reply and its source.
fn exchange(s: &UdpSocket, rrq: &[u8], server: SocketAddr) -> (Vec<u8>, SocketAddr) {
    s.send_to(rrq, server).expect("send the RRQ");
    let mut buf = [0u8; 1024];
    let (n, from) = s.recv_from(&mut buf).expect("a reply");
    (buf[..n].to_vec(), from)
}

#[test]
fn a_repeated_request_gets_its_oack_again_from_the_group_and_limits_fall_back() {
    // Loopback only: no root needed. The listener is dual-stack, as by default: an IPv4
    // request is still answered from an IPv4 socket, which a group needs.
    let d = Daemon::start(DaemonArgs {
        args: vec!["--listen".into(), "[::]:0".into()],
        config: Some(config("")),
        ..DaemonArgs::default()
    });
    let dual = *d
        .addrs()
        .iter()
        .find(|a| a.is_ipv6())
        .expect("the dual-stack listener");
    let server = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), dual.port());
    d.put_file("f.bin", &harness::pattern(3000, 5));
    // 65536 blocks at the default 512: past what a group sends.
    d.put_file("huge.bin", &vec![7u8; 65535 * 512]);
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.set_read_timeout(Some(LOG_TIMEOUT)).expect("timeout");
    let rrq = b"\x00\x01f.bin\x00octet\x00multicast\x00\x00";
    let (first, tid) = exchange(&s, rrq, server);
    assert!(
        first.starts_with(b"\x00\x06multicast\x00239.255.91.1,"),
        "served through the dual-stack listener: {first:?}"
    );
    // The client did not hear the OACK (say) and asks again from the same port.
    let (again, tid_again) = exchange(&s, rrq, server);
    assert_eq!(again, first, "the same OACK again");
    assert_eq!(
        tid_again, tid,
        "from the group's socket, not a new transfer"
    );
    let _ = s.send_to(b"\x00\x05\x00\x00done\x00", tid);
    let log = wait_lines(&d, &["multicast group finished"], 1);
    assert_eq!(
        (
            count_lines(&log, &["multicast group started"]),
            count_lines(&log, &["multicast member joined"])
        ),
        (1, 1),
        "one group, one member:\n{log}"
    );
    let huge = first_reply(server, "huge.bin", "octet");
    assert!(
        huge.starts_with(b"\x00\x03\x00\x01"),
        "over 65535 blocks: unicast DATA 1, no OACK: {huge:?}"
    );

    let single = Daemon::start(DaemonArgs {
        config: Some(format!("single_port = true\n{}", config(""))),
        ..DaemonArgs::default()
    });
    single.put_file("f.bin", b"x");
    let reply = first_reply(single.addr(), "f.bin", "octet");
    assert!(
        reply.starts_with(b"\x00\x03\x00\x01"),
        "single-port: unicast DATA 1, no OACK: {reply:?}"
    );
}
