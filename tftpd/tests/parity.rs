//! Operator parity (issue #7): the switches tftp-hpa, atftpd and dnsmasq users rely on, each
//! exercised against the real daemon with a real client where one has the needed option, and
//! with hand-made packets where exact bytes matter.

mod harness;

use std::time::Duration;

use harness::clients::{Client, Opts, get};
use harness::raw::{Raw, Reply, request};
use harness::{Daemon, DaemonArgs, TempDir, free_tcp_port, pattern, wait_for_metrics};

const REPLY: Duration = Duration::from_secs(5);

fn start(config: &str, metrics_port: Option<u16>) -> Daemon {
    let mut args = Vec::new();
    if let Some(p) = metrics_port {
        args.extend(["--metrics-listen".to_string(), format!("127.0.0.1:{p}")]);
    }
    Daemon::start(DaemonArgs {
        args,
        config: Some(config.to_string()),
        ..DaemonArgs::default()
    })
}

#[test]
fn access_lists_refuse_silently_and_count() {
    let port = free_tcp_port();
    // The test client is 127.0.0.1: outside the allow list.
    let d = start("[access]\nallow = [\"192.0.2.0/24\"]\n", Some(port));
    d.put_file("f", b"content");
    let c = Raw::new(d.addr());
    c.send(&request(1, b"f", "octet", &[]));
    assert!(
        c.recv(Duration::from_millis(500)).is_none(),
        "a refused client gets no answer (no reflection)"
    );
    wait_for_metrics(
        port,
        &["tftpd_requests_total{kind=\"read\",outcome=\"client_refused\"} 1"],
        REPLY,
    );

    // Allowed by prefix, then refused by a deny entry inside it.
    let d = start(
        "[access]\nallow = [\"127.0.0.0/8\"]\ndeny = [\"127.0.0.2\"]\n",
        None,
    );
    let content = pattern(2000, 3);
    d.put_file("boot.img", &content);
    let dir = TempDir::new("access");
    let local = dir.path().join("boot.img");
    get(
        Client::TftpHpa,
        d.addr(),
        "boot.img",
        &local,
        &Opts::default(),
    )
    .expect("an allowed client downloads");
    assert_eq!(std::fs::read(&local).expect("read"), content);
    let denied = std::net::UdpSocket::bind("127.0.0.2:0").expect("bind 127.0.0.2");
    denied
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    denied
        .send_to(&request(1, b"boot.img", "octet", &[]), d.addr())
        .expect("send");
    assert!(
        denied.recv_from(&mut [0u8; 600]).is_err(),
        "deny wins over allow"
    );
}

#[test]
fn refused_options_are_not_acknowledged() {
    let d = start("[protocol]\nrefuse_options = [\"blksize\"]\n", None);
    let content = pattern(3000, 9);
    d.put_file("f.bin", &content);
    // Only blksize asked: refused, so no OACK at all; plain 512-byte DATA.
    let c = Raw::new(d.addr());
    c.send(&request(1, b"f.bin", "octet", &[("blksize", "1428")]));
    let (first, _) = c.expect(REPLY, "DATA 1");
    assert!(
        matches!(&first, Reply::Data { block: 1, data } if data.len() == 512),
        "refused blksize: RFC 1350 blocks, got {first:?}"
    );
    // With another option: the OACK carries only that one.
    let c = Raw::new(d.addr());
    c.send(&request(
        1,
        b"f.bin",
        "octet",
        &[("blksize", "1428"), ("tsize", "0")],
    ));
    let (oack, _) = c.expect(REPLY, "OACK");
    assert!(
        matches!(&oack, Reply::Oack(o) if o.len() == 1 && o[0] == ("tsize".into(), "3000".into())),
        "the OACK leaves blksize out: {oack:?}"
    );
    // A real client that asks for blksize still gets its file.
    if Client::Curl.available("refused_options_are_not_acknowledged") {
        let dir = TempDir::new("refuse");
        let local = dir.path().join("f.bin");
        get(
            Client::Curl,
            d.addr(),
            "f.bin",
            &local,
            &Opts {
                blksize: Some(1428),
                ..Opts::default()
            },
        )
        .expect("curl falls back to 512-byte blocks");
        assert_eq!(std::fs::read(&local).expect("read"), content);
    }
}

#[test]
fn rollover_refuse_stops_downloads_that_would_wrap() {
    let d = start("[protocol]\nrollover = \"refuse\"\n", None);
    // At blksize 8 the limit is 65535 * 8 - 1 bytes.
    let limit = 65535 * 8 - 1;
    d.put_file("fits.bin", &pattern(limit, 1));
    d.put_file("wraps.bin", &pattern(limit + 1, 2));
    let c = Raw::new(d.addr());
    c.send(&request(1, b"wraps.bin", "octet", &[("blksize", "8")]));
    let (reply, _) = c.expect(REPLY, "ERROR");
    assert!(
        matches!(&reply, Reply::Error { code: 0, message } if message.contains("rollover")),
        "a download that would wrap is refused up front: {reply:?}"
    );
    let c = Raw::new(d.addr());
    c.send(&request(1, b"fits.bin", "octet", &[("blksize", "8")]));
    let (reply, _) = c.expect(REPLY, "OACK");
    assert!(
        matches!(&reply, Reply::Oack(_)),
        "one byte less fits: {reply:?}"
    );
    // A bigger block makes the same file fit.
    let got = Raw::new(d.addr())
        .download("wraps.bin", &[("blksize", "1024")], REPLY)
        .expect("at blksize 1024 no rollover is needed");
    assert_eq!(got, pattern(limit + 1, 2));
}

const REMAP: &str = r#"
[[remap]]
match = '\\'
replace = "/"
all = true

[[remap]]
match = '^/?boot/(.*)$'
replace = "images/$1"
ignore_case = true
lowercase = true

[[remap]]
match = '\.key$'
action = "deny"

[[remap]]
match = '^(hosts/)'
replace = "${1}${client}/"
clients = ["127.0.0.0/8"]
"#;

#[test]
fn remap_rules_rewrite_deny_and_keep_the_jail() {
    let d = start(REMAP, None);
    let bcd = pattern(1500, 4);
    std::fs::create_dir_all(d.root().join("images")).expect("mkdir");
    d.put_file("images/bcd", &bcd);
    d.put_file("images/secret.key", b"no");
    std::fs::create_dir_all(d.root().join("hosts/127.0.0.1")).expect("mkdir");
    d.put_file("hosts/127.0.0.1/cfg", b"per-client");

    // A Windows client's name: backslashes, odd case.
    let got = Raw::new(d.addr())
        .download(r"\Boot\BCD", &[], REPLY)
        .expect("the rewritten name is served");
    assert_eq!(got, bcd);
    // The transfer's task logs the rewrite; the log reaches us through a pipe.
    d.wait_for_log("to=images/bcd", REPLY);
    // A real client with the same name.
    let dir = TempDir::new("remap");
    let local = dir.path().join("bcd");
    get(
        Client::TftpHpa,
        d.addr(),
        r"\Boot\BCD",
        &local,
        &Opts::default(),
    )
    .expect("tftp-hpa downloads through the remap");
    assert_eq!(std::fs::read(&local).expect("read"), bcd);
    // Per-client prefix.
    let got = Raw::new(d.addr())
        .download("hosts/cfg", &[], REPLY)
        .expect("the per-client file");
    assert_eq!(got, b"per-client");
    // Deny.
    let err = Raw::new(d.addr())
        .download("boot/secret.key", &[], REPLY)
        .expect_err("a deny rule refuses");
    assert!(matches!(err, Reply::Error { code: 2, .. }), "{err:?}");
}

#[test]
fn map_test_prints_the_mapping_and_the_jail_verdict() {
    let dir = TempDir::new("maptest");
    let config = dir.path().join("tftpd.toml");
    std::fs::write(
        &config,
        format!("root = \"{}\"\n{REMAP}", dir.path().display()),
    )
    .expect("write config");
    let run = |name: &str, client: &str| -> String {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tftpd"))
            .arg("--config")
            .arg(&config)
            .args(["--map-test", name, "--client", client])
            .output()
            .expect("tftpd --map-test");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = run(r"\Boot\BCD", "10.0.0.5");
    assert!(out.contains(r#"-> "images/bcd""#), "{out}");
    assert!(run("hosts/x", "127.0.0.9").contains(r#"-> "hosts/127.0.0.9/x""#));
    assert!(
        run("hosts/x", "192.0.2.1").contains(r#"-> "hosts/x""#),
        "the client rule only matches its prefix"
    );
    assert!(run("a.key", "10.0.0.5").contains("denied by remap[2]"));
    let bad = std::fs::write(&config, "[[remap]]\nmatch = '(unclosed'\nreplace = 'x'\n");
    bad.expect("write config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tftpd"))
        .arg("--config")
        .arg(&config)
        .args(["--map-test", "x"])
        .output()
        .expect("tftpd --map-test");
    assert!(!out.status.success(), "a bad rule fails");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("remap[0].match"),
        "and names itself: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn pidfile_and_verbosity() {
    let dir = TempDir::new("pid");
    let pidfile = dir.path().join("tftpd.pid");
    let mut d = Daemon::start(DaemonArgs {
        args: vec![
            "--pidfile".into(),
            pidfile.display().to_string(),
            "--verbosity".into(),
            "2".into(),
        ],
        ..DaemonArgs::default()
    });
    let written = std::fs::read_to_string(&pidfile).expect("the pidfile exists once ready");
    assert_eq!(written.trim(), d.pid().to_string());
    // Verbosity 2 is debug: a retransmitted request is logged at debug level.
    d.put_file("big", &pattern(100_000, 5));
    let c = Raw::new(d.addr());
    c.send(&request(1, b"big", "octet", &[]));
    let _ = c.expect(REPLY, "DATA 1");
    c.send(&request(1, b"big", "octet", &[]));
    d.wait_for_log("duplicate request ignored", REPLY);
    d.signal("TERM");
    assert!(d.wait_exit(REPLY * 4).success());
    assert!(!pidfile.exists(), "removed on a clean exit");
    assert!(
        d.log().contains("DEBUG"),
        "--verbosity 2 logs debug lines:\n{}",
        d.log()
    );
}

#[test]
fn client_roots_serve_chosen_clients_from_their_own_root() {
    let site = TempDir::new("site");
    std::fs::write(site.path().join("cfg"), b"site root").expect("write");
    let d = start(
        &format!(
            "[[client_roots]]\nclients = [\"127.0.0.2/32\"]\nroot = \"{}\"\n",
            site.path().display()
        ),
        None,
    );
    d.put_file("cfg", b"default root");
    let from = |source: &str| -> Vec<u8> {
        let socket = std::net::UdpSocket::bind(format!("{source}:0")).expect("bind");
        Raw {
            socket,
            server: d.addr(),
        }
        .download("cfg", &[], REPLY)
        .expect("download")
    };
    assert_eq!(from("127.0.0.2"), b"site root", "the chosen client");
    assert_eq!(from("127.0.0.1"), b"default root", "everyone else");
    // A reload that points the entry at a missing directory is refused, naming the entry.
    std::fs::write(
        d.config_path(),
        "[[client_roots]]\nclients = [\"127.0.0.2/32\"]\nroot = \"/nonexistent/site\"\n",
    )
    .expect("rewrite config");
    let mark = d.log_len();
    d.signal("HUP");
    let line = d.wait_for_log_after("config reload failed", mark, REPLY);
    assert!(line.contains("client_roots[0].root"), "{line}");
    assert_eq!(from("127.0.0.2"), b"site root", "the old config stays");
}

fn single_port_daemon(extra: &[&str]) -> Daemon {
    Daemon::start(DaemonArgs {
        args: extra.iter().map(|s| s.to_string()).collect(),
        // The eBPF pins get a directory of their own (only used with --ebpf required).
        config: Some(
            "single_port = true\nwrite = \"create\"\n[ebpf]\npin_dir = \"/sys/fs/bpf/tftpd-single-port-test\"\n"
                .into(),
        ),
        ..DaemonArgs::default()
    })
}

/// The filter paths this machine can run: userspace and classic BPF always, eBPF as root with
/// the object built.
fn filter_modes() -> Vec<&'static str> {
    let object = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tftp-ebpf/target/bpfel-unknown-none/release/tftp-ebpf");
    let mut modes = vec!["off", "cbpf"];
    if harness::is_root() && object.is_file() {
        modes.push("required");
    } else {
        harness::skip(
            "single-port with the eBPF filter",
            "needs root and the eBPF object (cargo xtask build-ebpf)",
        );
    }
    modes
}

#[test]
fn single_port_serves_real_clients_from_the_listening_port() {
    for filter in filter_modes() {
        let d = single_port_daemon(&["--ebpf", filter]);
        if filter == "required" {
            d.wait_for_log("eBPF socket filters attached", REPLY);
        }
        let content = pattern(150_000, 21);
        d.put_file("boot.img", &content);
        let dir = TempDir::new("single");
        for client in Client::ALL {
            if !client.available("single_port_serves_real_clients_from_the_listening_port") {
                continue;
            }
            let local = dir.path().join(format!("{client:?}-{filter}"));
            get(client, d.addr(), "boot.img", &local, &Opts::default())
                .unwrap_or_else(|e| panic!("{client:?} ({filter}): {e}"));
            assert!(
                std::fs::read(&local).expect("read") == content,
                "{client:?} ({filter}): intact"
            );
        }
        // An upload comes in through the same port.
        let up = dir.path().join("up.bin");
        std::fs::write(&up, pattern(40_000, 22)).expect("write");
        harness::clients::put(Client::TftpHpa, d.addr(), &up, "up.bin", &Opts::default())
            .unwrap_or_else(|e| panic!("upload ({filter}): {e}"));
        d.wait_for_log("upload stored", REPLY);
        assert_eq!(
            std::fs::read(d.root().join("up.bin")).expect("uploaded"),
            pattern(40_000, 22)
        );
    }
}

#[test]
fn single_port_keeps_transfers_apart_and_strangers_out() {
    let d = single_port_daemon(&[]);
    let a_content = pattern(5000, 31);
    let b_content = pattern(3000, 32);
    d.put_file("a", &a_content);
    d.put_file("b", &b_content);
    let a = Raw::new(d.addr());
    let b = Raw::new(d.addr());
    a.send(&request(1, b"a", "octet", &[]));
    b.send(&request(1, b"b", "octet", &[]));
    let mut got = [Vec::new(), Vec::new()];
    let mut done = [false, false];
    let stranger = Raw::new(d.addr());
    let mut stranger_sent = false;
    while !(done[0] && done[1]) {
        for (i, c) in [&a, &b].into_iter().enumerate() {
            if done[i] {
                continue;
            }
            let (reply, from) = c.expect(REPLY, "DATA");
            assert_eq!(from, d.addr(), "every reply comes from the listening port");
            let Reply::Data { block, data } = reply else {
                panic!("expected DATA, got {reply:?}")
            };
            if usize::from(block) == got[i].len() / 512 + 1 {
                got[i].extend_from_slice(&data);
                done[i] = data.len() < 512;
            }
            c.send(&harness::raw::ack(block));
            if !stranger_sent {
                // A stranger's ACK to the listening port: ERROR 5 for it, nothing for them.
                stranger.send(&harness::raw::ack(1));
                let (r, _) = stranger.expect(REPLY, "ERROR 5");
                assert!(matches!(r, Reply::Error { code: 5, .. }), "{r:?}");
                stranger_sent = true;
            }
        }
    }
    assert_eq!(got[0], a_content);
    assert_eq!(got[1], b_content);
}

#[test]
fn single_port_drain_lets_running_transfers_finish() {
    let mut d = single_port_daemon(&[]);
    let content = pattern(20 * 512 + 7, 41);
    d.put_file("f", &content);
    let c = Raw::new(d.addr());
    c.send(&request(1, b"f", "octet", &[]));
    let mut got = Vec::new();
    let mut block = 1u16;
    loop {
        let (reply, _) = c.expect(REPLY, "DATA");
        let Reply::Data { block: b, data } = reply else {
            panic!("expected DATA, got {reply:?}")
        };
        if b == block {
            got.extend_from_slice(&data);
            block += 1;
            if block == 5 {
                // Mid-transfer: the drain begins; the listener must keep routing our ACKs.
                d.signal("TERM");
                d.wait_for_log("shutting down", REPLY);
            }
        }
        c.send(&harness::raw::ack(b));
        if data.len() < 512 {
            break;
        }
    }
    assert_eq!(got, content, "the transfer finished during the drain");
    assert!(d.wait_exit(REPLY * 4).success(), "then tftpd exits 0");
    // A new request during the drain would have been refused; the socket is closed now.
    let late = Raw::new(d.addr());
    late.send(&request(1, b"f", "octet", &[]));
    assert!(late.recv(Duration::from_millis(300)).is_none());
}

/// `protocol.default_windowsize`: every real client, none of which is told of the window,
/// still gets every byte, with and without other options; the log shows the window ran.
#[test]
fn a_default_window_serves_clients_that_do_not_ask_for_one() {
    let port = free_tcp_port();
    let d = start("[protocol]\ndefault_windowsize = 8\n", Some(port));
    let out = TempDir::new("defwin");
    let content = pattern(300 * 1024 + 5, 11);
    d.put_file("w.bin", &content);
    let mut ran = 0;
    for client in Client::ALL {
        if !client.available("a_default_window_serves_clients_that_do_not_ask_for_one") {
            continue;
        }
        let with_blksize = Opts {
            blksize: Some(1428),
            ..Opts::default()
        };
        for (i, opts) in [Opts::default(), with_blksize].iter().enumerate() {
            if client == Client::TftpHpa && opts.blksize.is_some() {
                continue; // the tftp-hpa client's blksize needs its interactive mode
            }
            let local = out.path().join(format!("{client:?}-{i}"));
            get(client, d.addr(), "w.bin", &local, opts)
                .unwrap_or_else(|e| panic!("{client:?} {opts:?}: {e}"));
            assert!(
                std::fs::read(&local).expect("file") == content,
                "{client:?} {opts:?}: bytes differ"
            );
            ran += 1;
        }
    }
    assert!(ran > 0, "no client ran");
    let log = d.log();
    assert!(
        log.contains("windowsize=8") && log.contains("window=\"default\""),
        "the default window ran:\n{log}"
    );
    let body = harness::scrape_metrics(port);
    eprintln!(
        "retransmits with a default window: {:?}",
        body.lines()
            .find(|l| l.starts_with("tftpd_retransmits_total"))
    );
}
