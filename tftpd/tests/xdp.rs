//! Root-only: the real XDP program, attached by the daemon to one end of a veth pair whose
//! other end lives in a network namespace the test makes, in generic mode and in native mode
//! (veth has a driver XDP path). Clients in that namespace send junk, a flood of requests,
//! traffic from a denied source, fragments, IPv6 extension headers and other traffic; the
//! counters (metrics and `bpftool`) must match exactly, a real client's download must still
//! work, and other UDP and TCP traffic must pass. A reload that removes the interface
//! detaches XDP, one that names it again re-attaches, and shutdown detaches. The last test
//! needs no root: without XDP the listener enforces `ebpf.xdp_deny` itself.

mod harness;

use std::io::{Read as _, Write as _};
use std::net::{
    Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, TcpListener, TcpStream, UdpSocket,
};
use std::time::{Duration, Instant};

use harness::bpftool::bpftool_sum;
use harness::craft::{ipv6_udp, send_raw_v6};
use harness::junk::counter;
use harness::netns::{Netns, ip};
use harness::raw::{Raw, Reply, ack, data, request};
use harness::{
    Daemon, DaemonArgs, METRICS_TIMEOUT, free_tcp_port, is_root, scrape_metrics, skip,
    start_with_metrics, wait_for_metrics,
};

const PIN_DIR: &str = "/sys/fs/bpf/tftpd-xdp7-generic";
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 213, 77, 1);
/// Downloads with a real client and sends the junk.
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 213, 77, 2);
/// On the deny list.
const DENIED: Ipv4Addr = Ipv4Addr::new(10, 213, 77, 3);
/// Floods requests (a fresh source, so its whole burst is there).
const FLOODER: Ipv4Addr = Ipv4Addr::new(10, 213, 77, 4);
const PORTS: (u16, u16) = (47100, 47199);
const BURST: u64 = 3;
const FLOOD: u64 = 12;

fn config(interfaces: &str) -> String {
    format!(
        "port_range = \"{}-{}\"\n[protocol]\nmax_blksize = 512\n[ebpf]\npin_dir = \"{PIN_DIR}\"\n\
         xdp_interfaces = [{interfaces}]\nxdp_mode = \"generic\"\nxdp_rate_limit = 1\n\
         xdp_rate_burst = {BURST}\nxdp_deny = [\"{DENIED}/32\"]\n",
        PORTS.0, PORTS.1
    )
}

fn xdp_attached(interface: &str) -> bool {
    ip(&["-d", "link", "show", "dev", interface]).contains("xdpgeneric")
}

fn socket_from(source: Ipv4Addr) -> UdpSocket {
    let s = UdpSocket::bind(SocketAddrV4::new(source, 0)).expect("binding a client socket");
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("read timeout");
    s
}

fn xdp_counter(body: &str, reason: &str) -> u64 {
    let verdict = if matches!(
        reason,
        "passed" | "fragment_passed" | "ext_header_passed" | "ext_header_unparsed"
    ) {
        "pass"
    } else {
        "drop"
    };
    counter(body, "tftpd_filter_packets_total", "xdp", verdict, reason)
}

#[test]
fn xdp_drops_counts_limits_denies_and_leaves_other_traffic_alone() {
    const TEST: &str = "xdp_drops_counts_limits_denies_and_leaves_other_traffic_alone";
    if !is_root() {
        skip(TEST, "needs root (network namespaces, XDP)");
        return;
    }
    let object = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tftp-ebpf/target/bpfel-unknown-none/release/tftp-ebpf");
    if !object.is_file() {
        skip(TEST, "needs the eBPF object (cargo xtask build-ebpf)");
        return;
    }
    let ns = Netns::new("xdp7g", SERVER, &[CLIENT, DENIED, FLOODER]);
    let metrics_port = free_tcp_port();
    let mut d = Daemon::start(DaemonArgs {
        args: vec![
            "--listen".into(),
            format!("{SERVER}:0"),
            // Required: any XDP or eBPF failure would stop the start.
            "--ebpf".into(),
            "required".into(),
            "--metrics-listen".into(),
            format!("127.0.0.1:{metrics_port}"),
        ],
        config: Some(config(&format!("\"{}\"", ns.host_if))),
        ..DaemonArgs::default()
    });
    d.wait_for_log("packet filter: XDP attached", Duration::from_secs(5));
    assert!(xdp_attached(&ns.host_if), "XDP is on the interface");
    let server = *d
        .addrs()
        .iter()
        .find(|a| a.ip() == SERVER)
        .expect("the veth listener");
    let content = harness::pattern(3000, 7);
    d.put_file("boot.img", &content);

    // Other traffic through the same interface: a UDP echo and a TCP connection.
    let udp_echo = UdpSocket::bind(SocketAddrV4::new(SERVER, 0)).expect("bind the UDP echo");
    let udp_echo_addr = udp_echo.local_addr().expect("addr");
    let tcp = TcpListener::bind(SocketAddrV4::new(SERVER, 0)).expect("bind the TCP listener");
    let tcp_addr = tcp.local_addr().expect("addr");
    let tcp_thread = std::thread::spawn(move || {
        let (mut c, _) = tcp.accept().expect("accept");
        c.write_all(b"tcp ok").expect("write");
    });

    // A real client downloads through XDP.
    let dir = harness::TempDir::new("xdp-get");
    let local = dir.path().join("boot.img");
    let out = ns
        .command("timeout")
        .args([
            "30",
            "tftp",
            "-m",
            "binary",
            &SERVER.to_string(),
            &server.port().to_string(),
            "-c",
            "get",
            "boot.img",
        ])
        .arg(&local)
        .output()
        .expect("running tftp in the namespace");
    assert!(
        std::fs::read(&local).is_ok_and(|got| got == content),
        "the download through XDP is intact ({})",
        String::from_utf8_lossy(&out.stderr)
    );

    let other_traffic_ok = ns.run(|| {
        let s = socket_from(CLIENT);
        s.send_to(b"not tftp at all", udp_echo_addr).expect("send");
        let mut tcp = TcpStream::connect_timeout(&tcp_addr, Duration::from_secs(5))
            .expect("TCP through the XDP interface");
        let mut got = String::new();
        tcp.read_to_string(&mut got).expect("read");
        got == "tcp ok"
    });
    assert!(other_traffic_ok, "TCP passes XDP untouched");
    udp_echo
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = [0u8; 64];
    let (n, _) = udp_echo
        .recv_from(&mut buf)
        .expect("other UDP passes XDP untouched");
    assert_eq!(&buf[..n], b"not tftp at all");
    tcp_thread.join().expect("TCP thread");

    ns.run(|| {
        // Junk to the listener: 3 bad_opcode, 2 too_short, 2 malformed_request.
        let s = socket_from(CLIENT);
        for j in [
            &b"\x00\x03\x00\x01data"[..],
            b"\x00\x04\x00\x01",
            b"\xff\xffjunk",
            b"\x00",
            b"\x00\x01\x00",
            b"\x00\x01unterminated",
            b"\x00\x02only-one-nul\x00",
        ] {
            s.send_to(j, server).expect("send junk");
        }
        // Junk to a transfer port (no socket needed: XDP judges the port range):
        // 2 bad_ack_length, 1 bad_opcode, 1 oversized; and one ACK that passes.
        let xfer = SocketAddr::from((SERVER, PORTS.0 + 50));
        for j in [
            b"\x00\x04\x00\x01\x00".to_vec(),
            b"\x00\x04\x00\x01\x00".to_vec(),
            request(1, b"x", "octet", &[]),
            data(1, &[0; 600]),
            ack(1),
        ] {
            s.send_to(&j, xfer).expect("send transfer junk");
        }
        // A denied source: a good request and a good ACK, both dropped.
        let denied = socket_from(DENIED);
        denied
            .send_to(&request(1, b"boot.img", "octet", &[]), server)
            .expect("send");
        denied.send_to(&ack(1), xfer).expect("send");
        assert!(
            denied.recv_from(&mut [0u8; 600]).is_err(),
            "a denied source gets no answer"
        );
        // A flood of good requests from one source: the burst passes, the rest is limited.
        // Each from its own port, as many clients behind one address would.
        for i in 0..FLOOD {
            let name = format!("missing-{i}");
            socket_from(FLOODER)
                .send_to(&request(1, name.as_bytes(), "octet", &[]), server)
                .expect("send");
        }
        // A request too big for one frame: two IPv4 fragments, passed to the stack.
        let big = request(1, &[b'a'; 1800], "octet", &[]);
        s.send_to(&big, server).expect("send a fragmented request");
    });

    let body = {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let b = scrape_metrics(metrics_port);
            if xdp_counter(&b, "rate_limited") == FLOOD - BURST || Instant::now() > deadline {
                break b;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let expected = [
        ("bad_opcode", 3 + 1),
        ("too_short", 2),
        ("malformed_request", 2),
        ("bad_ack_length", 2),
        ("oversized", 1),
        ("denied", 2),
        ("rate_limited", FLOOD - BURST),
        ("fragment_passed", 2),
    ];
    for (reason, want) in expected {
        assert_eq!(xdp_counter(&body, reason), want, "xdp {reason}:\n{body}");
    }
    // The download (1 RRQ, its ACKs), the passing ACK and the flood's burst, at least.
    let passed = xdp_counter(&body, "passed");
    assert!(passed >= 1 + 6 + 1 + BURST, "xdp passed {passed}");
    // The burst reached the daemon (which refused the missing files); the rest never did.
    let deadline = Instant::now() + Duration::from_secs(5);
    while (d.log().matches("request refused reason=missing-").count() as u64) < BURST {
        assert!(
            Instant::now() < deadline,
            "the burst's requests must reach the daemon:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        d.log().matches("request refused reason=missing-").count() as u64,
        BURST,
        "only the burst reached the daemon"
    );
    // bpftool reads the same numbers from the pinned map, by index.
    for (index, reason) in [
        (2, "bad_opcode"),
        (6, "rate_limited"),
        (7, "denied"),
        (8, "fragment_passed"),
    ] {
        let (packets, _) = bpftool_sum(PIN_DIR, "xdp_counts", index);
        assert_eq!(packets, xdp_counter(&body, reason), "bpftool {reason}");
    }

    // Reload without the interface: detached. Reload with it again: attached.
    std::fs::write(d.config_path(), config("")).expect("rewrite the config");
    let mark = d.log_len();
    d.signal("HUP");
    d.wait_for_log_after("packet filter: XDP detached", mark, Duration::from_secs(5));
    assert!(
        !xdp_attached(&ns.host_if),
        "a reload that drops the interface detaches"
    );
    std::fs::write(d.config_path(), config(&format!("\"{}\"", ns.host_if)))
        .expect("rewrite the config");
    let mark = d.log_len();
    d.signal("HUP");
    d.wait_for_log_after("packet filter: XDP attached", mark, Duration::from_secs(5));
    assert!(
        xdp_attached(&ns.host_if),
        "a reload that names it again re-attaches"
    );

    d.signal("TERM");
    let status = d.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "exit 0, got {status}");
    assert!(!xdp_attached(&ns.host_if), "shutdown detaches");
    assert!(
        !std::path::Path::new(PIN_DIR).join("xdp_counts").exists(),
        "the pins are removed on shutdown"
    );
}

/// Without XDP (and without root) the listener enforces `ebpf.xdp_deny` itself: the XDP
/// switch changes speed, never policy.
#[test]
fn xdp_deny_is_enforced_by_the_listener_when_xdp_is_off() {
    let denied: std::net::IpAddr = Ipv4Addr::new(127, 0, 0, 77).into();
    let config = |deny: &str| format!("[ebpf]\nmode = \"off\"\nxdp_deny = [{deny}]\n");
    let (d, port) = start_with_metrics(config("\"127.0.0.77/32\""));
    d.put_file("f.bin", b"served to the allowed only");
    let refused = Raw::from_source(denied, d.addr());
    refused.send(&request(1, b"f.bin", "octet", &[]));
    wait_for_metrics(
        port,
        &["tftpd_requests_total{kind=\"read\",outcome=\"client_refused\"} 1"],
        METRICS_TIMEOUT,
    );
    assert!(
        refused.recv(Duration::from_millis(300)).is_none(),
        "a denied source gets no answer at all (no reflection)"
    );
    let allowed = Raw::new(d.addr());
    allowed.send(&request(1, b"f.bin", "octet", &[]));
    let (reply, _) = allowed.expect(Duration::from_secs(5), "DATA 1 for an allowed client");
    assert!(
        matches!(reply, Reply::Data { block: 1, .. }),
        "an allowed client is served: {reply:?}"
    );
    // The key's effect: without the entry, the same source is served.
    d.reload_with(&config(""), Duration::from_secs(10));
    refused.send(&request(1, b"f.bin", "octet", &[]));
    let (reply, _) = refused.expect(Duration::from_secs(5), "DATA 1 once no longer denied");
    assert!(matches!(reply, Reply::Data { block: 1, .. }), "{reply:?}");
}

const NATIVE_PIN_DIR: &str = "/sys/fs/bpf/tftpd-xdp7-native";
const N_SERVER: Ipv4Addr = Ipv4Addr::new(10, 213, 78, 1);
const N_CLIENT: Ipv4Addr = Ipv4Addr::new(10, 213, 78, 2);
const N_DENIED: Ipv4Addr = Ipv4Addr::new(10, 213, 78, 3);
/// IPv6, all on-link as one /48, each role in a /64 of its own.
const V6_SERVER: Ipv6Addr = Ipv6Addr::new(0xfd07, 7, 0, 0, 0, 0, 0, 1);
const V6_CLIENT: Ipv6Addr = Ipv6Addr::new(0xfd07, 7, 0, 1, 0, 0, 0, 2);
const V6_DENIED: Ipv6Addr = Ipv6Addr::new(0xfd07, 7, 0, 2, 0, 0, 0, 3);
/// The /64 whose hosts flood requests, each from an address of its own.
const V6_FLOOD_NET: [u16; 4] = [0xfd07, 7, 0, 0x64];
const FLOOD_HOSTS: u16 = 31;
const FLOOD_EACH: u64 = 3;
/// Hosts of the same /64 for the second round, with a /128 rate key.
const FRESH_HOSTS: u16 = 10;
const RATE: u64 = 5;

fn flood_host(host: u16) -> Ipv6Addr {
    let [a, b, c, d] = V6_FLOOD_NET;
    Ipv6Addr::new(a, b, c, d, 0, 0, 0, host)
}

fn native_config(interface: &str, prefix_v6: u8) -> String {
    format!(
        "port_range = \"47200-47299\"\n[protocol]\nmax_blksize = 512\n[ebpf]\n\
         pin_dir = \"{NATIVE_PIN_DIR}\"\nxdp_interfaces = [\"{interface}\"]\nxdp_mode = \"native\"\n\
         xdp_rate_limit = {RATE}\nxdp_rate_burst = {RATE}\nxdp_rate_prefix_v6 = {prefix_v6}\n\
         xdp_deny = [\"{N_DENIED}/32\", \"{V6_DENIED}/128\"]\n"
    )
}

/// Scrapes until `reason` reaches `want` (or the deadline), and returns the page.
fn metrics_when(port: u16, reason: &str, want: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let b = scrape_metrics(port);
        if xdp_counter(&b, reason) >= want || Instant::now() > deadline {
            return b;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Requests for missing files the daemon logged, by name prefix.
fn refused(d: &Daemon, prefix: &str) -> u64 {
    d.log()
        .matches(&format!("request refused reason={prefix}"))
        .count() as u64
}

#[test]
fn native_xdp_drops_denied_fragments_counts_ext_headers_and_limits_a_v6_slash_64() {
    const TEST: &str =
        "native_xdp_drops_denied_fragments_counts_ext_headers_and_limits_a_v6_slash_64";
    if !is_root() {
        skip(TEST, "needs root (network namespaces, XDP, raw sockets)");
        return;
    }
    let object = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tftp-ebpf/target/bpfel-unknown-none/release/tftp-ebpf");
    if !object.is_file() {
        skip(TEST, "needs the eBPF object (cargo xtask build-ebpf)");
        return;
    }
    let ns = Netns::new("xdp7n", N_SERVER, &[N_CLIENT, N_DENIED]);
    let mut v6_clients = vec![V6_CLIENT, V6_DENIED];
    v6_clients.extend((1..=FLOOD_HOSTS + FRESH_HOSTS).map(flood_host));
    ns.add_v6(V6_SERVER, &v6_clients, 48);
    let metrics_port = free_tcp_port();
    let mut d = Daemon::start(DaemonArgs {
        args: vec![
            "--listen".into(),
            format!("{N_SERVER}:0"),
            "--listen".into(),
            format!("[{V6_SERVER}]:0"),
            "--ebpf".into(),
            "required".into(),
            "--metrics-listen".into(),
            format!("127.0.0.1:{metrics_port}"),
        ],
        config: Some(native_config(&ns.host_if, 64)),
        ..DaemonArgs::default()
    });
    let line = d.wait_for_log("packet filter: XDP attached", Duration::from_secs(5));
    assert!(
        line.contains("mode=\"native\""),
        "attached natively: {line}"
    );
    let link = ip(&["-d", "link", "show", "dev", &ns.host_if]);
    assert!(
        link.contains("prog/xdp") && !link.contains("xdpgeneric"),
        "the driver (veth) runs the program:\n{link}"
    );
    let v4 = *d.addrs().iter().find(|a| a.ip() == N_SERVER).expect("v4");
    let v6 = *d.addrs().iter().find(|a| a.is_ipv6()).expect("v6");
    d.put_file("boot.img", &harness::pattern(700, 3));
    let big = request(1, &[b'a'; 1800], "octet", &[]);

    // Fragments: a denied source's RRQ over IPv4 and over IPv6 (the kernel cuts each 1800-byte
    // datagram into two), then an allowed source's, which the daemon answers.
    let too_large = ns.run(|| {
        for (from, to) in [
            (SocketAddr::from((N_DENIED, 0)), v4),
            (SocketAddr::from((V6_DENIED, 0)), v6),
        ] {
            let s = UdpSocket::bind(from).expect("bind");
            s.send_to(&big, to).expect("send a fragmented request");
        }
        let s = socket_from(N_CLIENT);
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s.send_to(&big, v4).expect("send");
        let mut buf = [0u8; 600];
        s.recv_from(&mut buf).map(|(n, _)| buf[..n].to_vec())
    });
    let reply = too_large.expect("an allowed source's fragmented request reaches the daemon");
    assert_eq!(
        &reply[..4],
        b"\x00\x05\x00\x04",
        "ERROR 4 (request too large)"
    );
    let body = metrics_when(metrics_port, "fragment_denied", 4);
    assert_eq!(
        xdp_counter(&body, "fragment_denied"),
        4,
        "both pieces of both:\n{body}"
    );
    assert_eq!(
        xdp_counter(&body, "fragment_passed"),
        2,
        "the allowed source's two"
    );
    assert!(
        body.contains("tftpd_requests_total{kind=\"read\",outcome=\"client_refused\"} 0"),
        "the denied fragments never reached the daemon:\n{body}"
    );

    // Extension headers, hand-made: one destination-options header before UDP (read through,
    // answered), the same from a denied source, and a chain one past the walk's bound.
    let data1 = ns.run(|| {
        let s = UdpSocket::bind(SocketAddrV6::new(V6_CLIENT, 0, 0, 0)).expect("bind");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let port = s.local_addr().expect("addr").port();
        let rrq = request(1, b"boot.img", "octet", &[]);
        send_raw_v6(
            &ipv6_udp(V6_CLIENT, port, V6_SERVER, v6.port(), 1, &rrq),
            V6_SERVER,
        );
        send_raw_v6(
            &ipv6_udp(V6_DENIED, 40000, V6_SERVER, v6.port(), 1, &rrq),
            V6_SERVER,
        );
        let missing = request(1, b"unparsed-9", "octet", &[]);
        send_raw_v6(
            &ipv6_udp(V6_CLIENT, 40001, V6_SERVER, v6.port(), 9, &missing),
            V6_SERVER,
        );
        let mut buf = [0u8; 600];
        s.recv_from(&mut buf).map(|(n, _)| buf[..n].to_vec())
    });
    let data1 = data1.expect("a request behind a destination-options header is answered");
    assert_eq!(&data1[..4], b"\x00\x03\x00\x01", "DATA 1");
    let body = metrics_when(metrics_port, "ext_header_unparsed", 1);
    for (reason, want) in [
        ("ext_header_passed", 1),
        ("ext_header_denied", 1),
        ("ext_header_unparsed", 1),
        ("ext_header_rate_limited", 0),
    ] {
        assert_eq!(xdp_counter(&body, reason), want, "xdp {reason}:\n{body}");
    }

    // 31 hosts of one /64, 3 requests each, as fast as they go: one budget of RATE/s, burst
    // RATE, for the whole prefix.
    let start = Instant::now();
    ns.run(|| {
        for host in 1..=FLOOD_HOSTS {
            for i in 0..FLOOD_EACH {
                let s =
                    UdpSocket::bind(SocketAddrV6::new(flood_host(host), 0, 0, 0)).expect("bind");
                let name = format!("flood64-{host}-{i}");
                s.send_to(&request(1, name.as_bytes(), "octet", &[]), v6)
                    .expect("send");
            }
        }
    });
    let elapsed = start.elapsed().as_secs_f64();
    let sent = u64::from(FLOOD_HOSTS) * FLOOD_EACH;
    // The burst, plus what the rate refills while the flood is sent (and one for rounding).
    let allowed = RATE + (elapsed * RATE as f64).ceil() as u64 + 1;
    let body = metrics_when(metrics_port, "rate_limited", sent.saturating_sub(allowed));
    let limited = xdp_counter(&body, "rate_limited");
    assert!(
        limited >= sent.saturating_sub(allowed) && limited <= sent,
        "{limited} of {sent} limited, at most {allowed} allowed in {elapsed:.2} s:\n{body}"
    );
    eprintln!("one /64: {limited} of {sent} requests limited, sent in {elapsed:.3} s");
    let deadline = Instant::now() + Duration::from_secs(5);
    while refused(&d, "flood64-") < sent - limited {
        assert!(
            Instant::now() < deadline,
            "the passed ones reach the daemon:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // bpftool reads the same numbers from the pinned map, by index.
    for (index, reason) in [
        (6, "rate_limited"),
        (8, "fragment_passed"),
        (9, "fragment_denied"),
        (11, "ext_header_passed"),
        (12, "ext_header_unparsed"),
        (13, "ext_header_denied"),
    ] {
        let (packets, _) = bpftool_sum(NATIVE_PIN_DIR, "xdp_counts", index);
        assert_eq!(packets, xdp_counter(&body, reason), "bpftool {reason}");
    }

    // ebpf.xdp_rate_prefix_v6 = 128: fresh hosts of the same (spent) /64 each get a budget.
    d.reload_with(&native_config(&ns.host_if, 128), Duration::from_secs(10));
    ns.run(|| {
        for host in FLOOD_HOSTS + 1..=FLOOD_HOSTS + FRESH_HOSTS {
            for i in 0..FLOOD_EACH {
                let s =
                    UdpSocket::bind(SocketAddrV6::new(flood_host(host), 0, 0, 0)).expect("bind");
                let name = format!("fresh128-{host}-{i}");
                s.send_to(&request(1, name.as_bytes(), "octet", &[]), v6)
                    .expect("send");
            }
        }
    });
    let fresh = u64::from(FRESH_HOSTS) * FLOOD_EACH;
    let deadline = Instant::now() + Duration::from_secs(5);
    while refused(&d, "fresh128-") < fresh {
        assert!(
            Instant::now() < deadline,
            "with /128 keys every fresh host is within its burst ({} of {fresh}):\n{}",
            refused(&d, "fresh128-"),
            scrape_metrics(metrics_port)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        xdp_counter(&scrape_metrics(metrics_port), "rate_limited"),
        limited,
        "none of them limited"
    );

    d.signal("TERM");
    let status = d.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "exit 0, got {status}");
    assert!(
        !ip(&["-d", "link", "show", "dev", &ns.host_if]).contains("prog/xdp"),
        "shutdown detaches"
    );
}
