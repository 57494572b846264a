//! Config tests: defaults, every example file, unknown keys, bad values (the CLI's overrides
//! are tested in `cli::merge`).

use std::path::Path;

use super::*;

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples")
}

fn err_text(toml: &str) -> String {
    Config::from_toml_str(toml, None)
        .expect_err("must be refused")
        .to_string()
}

#[test]
fn empty_file_means_the_documented_defaults() {
    let c = Config::from_toml_str("", None).expect("empty config");
    assert_eq!(c, Config::default());
    assert_eq!(c.root, PathBuf::from("/srv/tftp"));
    assert_eq!(
        c.listen,
        vec!["[::]:69".parse::<SocketAddr>().expect("addr")]
    );
    assert_eq!(c.write, WriteMode::Off, "writes are off by default");
    assert_eq!(c.user, "nobody");
    assert_eq!(c.protocol.max_blksize.get(), 65464);
    assert_eq!(c.protocol.timeout_ms, 1000);
    assert_eq!(c.limits.max_request_size, 512);
    assert_eq!(c.metrics.listen, None, "metrics off by default");
}

#[test]
fn every_example_file_loads() {
    let dir = examples_dir();
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("docs/examples exists") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read example");
        Config::from_toml_str(&text, path.parent())
            .unwrap_or_else(|e| panic!("{} must load: {e}", path.display()));
        seen += 1;
    }
    assert!(
        seen >= 3,
        "minimal, production and demo examples exist (found {seen})"
    );
}

#[test]
fn unknown_keys_are_refused_by_name() {
    let e = err_text("rot = \"/srv\"\n");
    assert!(e.contains("rot"), "top-level typo named: {e}");
    let e = err_text("[protocol]\nmax_blocksize = 512\n");
    assert!(e.contains("max_blocksize"), "section typo named: {e}");
    let e = err_text("[nonsense]\n");
    assert!(e.contains("nonsense"), "unknown section named: {e}");
}

#[test]
fn bad_values_name_the_key_and_the_allowed_values() {
    let cases = [
        (
            "write = \"yes\"",
            &["write", "off", "create", "overwrite"][..],
        ),
        (
            "[protocol]\nmax_blksize = 70000",
            &["max_blksize", "8..=65464"],
        ),
        ("[protocol]\nmax_blksize = 4", &["max_blksize", "8..=65464"]),
        (
            "[protocol]\nrollover = \"two\"",
            &["rollover", "zero", "one"],
        ),
        (
            "[protocol]\ntimeout_ms = 0",
            &["protocol.timeout_ms", "10..=255000"],
        ),
        (
            "[protocol]\nmax_retries = 0",
            &["protocol.max_retries", "1..=100"],
        ),
        (
            "[protocol]\nmax_windowsize = 0",
            &["protocol.max_windowsize", "1..=65535"],
        ),
        (
            "[protocol]\ndefault_windowsize = 0",
            &["protocol.default_windowsize", "1..=65535"],
        ),
        (
            "[protocol]\nmin_timeout_ms = 0",
            &["protocol.min_timeout_ms", "1..=protocol.timeout_ms"],
        ),
        (
            "[protocol]\ntimeout_ms = 500\nmin_timeout_ms = 600",
            &["protocol.min_timeout_ms", "600", "1..=protocol.timeout_ms"],
        ),
        ("port_range = \"10-5\"", &["port_range", "LO-HI"]),
        ("listen = []", &["listen"]),
        ("listen = [\"nonsense\"]", &["listen"]),
        (
            "[limits]\nmax_transfers_per_client = 5000",
            &["max_transfers_per_client"],
        ),
        (
            "[limits]\nmax_request_size = 10",
            &["max_request_size", "32..=65468"],
        ),
        (
            "[uploads]\nfile_mode = 0o1777",
            &["uploads.file_mode", "0o777"],
        ),
        ("[uploads]\nmax_size = 0", &["uploads.max_size"]),
        (
            "[uploads]\nmax_in_flight = 0",
            &["uploads.max_in_flight", "1 or more bytes"],
        ),
        ("[uploads]\nmin_free_bytes = -1", &["min_free_bytes"]),
        ("[log]\nformat = \"xml\"", &["format", "text", "json"]),
        (
            "[log]\ntarget = \"file\"",
            &["target", "auto", "stderr", "journald", "syslog"],
        ),
        ("[log]\nlevel = \"[[[\"", &["log.level"]),
        (
            "[log]\nsyslog_socket = \"dev/log\"",
            &["log.syslog_socket", "absolute path"],
        ),
        (
            "[shutdown]\ngrace_period_secs = 99999",
            &["grace_period_secs", "0..=3600"],
        ),
    ];
    for (toml, words) in cases {
        let e = err_text(toml);
        for w in words {
            assert!(e.contains(w), "error for {toml:?} must mention {w:?}: {e}");
        }
    }
}

#[test]
fn retransmission_adapts_by_default_but_not_in_single_port_mode_nor_to_a_clients_timeout() {
    use crate::proto::Retransmit;
    let ten_ms = Retransmit::Adaptive {
        floor: std::time::Duration::from_millis(10),
    };
    let d = Config::from_toml_str("", None).expect("empty config");
    assert!(d.protocol.adaptive_timeout);
    assert_eq!(d.protocol.retransmit(false, false), ten_ms);
    // Single-port: a blind ACK confirms, so nothing proves the peer real.
    assert_eq!(d.protocol.retransmit(true, false), Retransmit::Fixed);
    // RFC 2349: the client's timeout is the interval.
    assert_eq!(d.protocol.retransmit(false, true), Retransmit::Fixed);
    let off = Config::from_toml_str("[protocol]\nadaptive_timeout = false\n", None).expect("off");
    assert_eq!(off.protocol.retransmit(false, false), Retransmit::Fixed);
    let floor = Config::from_toml_str("[protocol]\nmin_timeout_ms = 40\n", None).expect("40");
    assert_eq!(
        floor.protocol.retransmit(false, false),
        Retransmit::Adaptive {
            floor: std::time::Duration::from_millis(40)
        }
    );
}

#[test]
fn multicast_section_parses_and_bad_values_name_the_key() {
    let c = Config::from_toml_str(
        "[multicast]\nenabled = true\naddress = \"239.1.1.1-2\"\nport = \"2000-2001\"\nttl = 4\ninterface = \"192.0.2.1\"\nswitch_client = true\n",
        None,
    )
    .expect("a valid [multicast]");
    let m = &c.multicast;
    assert!(m.enabled && m.switch_client);
    assert_eq!(
        (m.ttl, m.interface),
        (4, Some("192.0.2.1".parse().expect("ip")))
    );
    assert_eq!(m.groups().count(), 4, "2 addresses x 2 ports");
    assert!(!Config::default().multicast.enabled, "off by default");
    for (toml, key, allowed) in [
        ("[multicast]\nttl = 0", "multicast.ttl", "1..=255"),
        ("[multicast]\nttl = 300", "multicast.ttl", ""),
        (
            "[multicast]\naddress = \"10.0.0.1\"",
            "multicast.address",
            "224.0.0.0/4",
        ),
        ("[multicast]\nport = \"0\"", "multicast.port", "LO-HI"),
        (
            "[multicast]\ninterface = \"239.0.0.1\"",
            "multicast.interface",
            "local interface",
        ),
    ] {
        let e = err_text(toml);
        assert!(e.contains(key) && e.contains(allowed), "{toml:?}: {e}");
    }
}

#[test]
fn file_io_keys_parse_and_default_off() {
    let d = Config::default().performance.file_io;
    assert!(!d.fadvise, "{d:?}");
    assert_eq!((d.cache_size, d.cache_max_file), (64 << 20, 16 << 20));
    let c = Config::from_toml_str(
        "[performance.file_io]\nfadvise = true\nfadvise_threshold = 1\ncache_size = 1000\n\
         cache_max_file = 1000\n",
        None,
    )
    .expect("valid file_io");
    let f = c.performance.file_io;
    assert!(f.fadvise, "{f:?}");
    assert_eq!(
        (f.fadvise_threshold, f.cache_size, f.cache_max_file),
        (1, 1000, 1000)
    );
}

#[test]
fn cache_max_file_beyond_cache_size_names_key_and_range() {
    let e = err_text("[performance.file_io]\ncache_size = 100\ncache_max_file = 101\n");
    assert!(
        e.contains("performance.file_io.cache_max_file")
            && e.contains("1..=performance.file_io.cache_size"),
        "{e}"
    );
    let e = err_text("[performance.file_io]\ncache_size = 100\ncache_max_file = 0\n");
    assert!(e.contains("cache_max_file = 0"), "{e}");
    let e = err_text("[performance.file_io]\nfadvise = \"yes\"\n");
    assert!(e.contains("fadvise"), "type errors name the key: {e}");
}

#[test]
fn a_profile_sets_its_keys_and_the_file_overrides_them() {
    let c = Config::from_toml_str("[performance]\nprofile = \"performance\"\n", None)
        .expect("performance profile");
    let p = &c.performance;
    assert_eq!(p.profile, Profile::Performance);
    assert_eq!(p.file_io.cache_size, 256 << 20, "the preset's cache");
    assert_eq!(p.file_io.read_ahead, 256 << 10);
    assert_eq!(
        p.cpu.transfer_threads, 4,
        "more transfer threads measured as a loss (docs/adr/0026): the default"
    );
    assert_eq!(p.socket.recv_buffer, 8 << 20);
    assert!(
        p.batching.gso,
        "keys the preset leaves alone keep their defaults"
    );
    let c = Config::from_toml_str(
        "[performance]\nprofile = \"performance\"\n[performance.file_io]\nread_ahead = 65536\n",
        None,
    )
    .expect("override");
    assert_eq!(
        c.performance.file_io.read_ahead, 65536,
        "the file's key wins"
    );
    assert_eq!(
        c.performance.file_io.cache_size,
        256 << 20,
        "the rest is the preset's"
    );
    let secure = Config::from_toml_str("[performance]\nprofile = \"secure\"\n", None)
        .expect("secure profile");
    let s = &secure.performance;
    assert!(!s.batching.listener_recvmmsg() && !s.memory.huge_pages);
    assert_eq!(s.socket.reuseport_workers, 1);
    assert_eq!(s.realtime, RealtimeConfig::default());
    let balanced =
        Config::from_toml_str("[performance]\nprofile = \"balanced\"\n", None).expect("balanced");
    assert_eq!(balanced, Config::default(), "balanced is the defaults");
}

#[test]
fn every_profile_validates_on_this_host() {
    for name in ["balanced", "performance", "maximum", "secure"] {
        let text = format!("[performance]\nprofile = \"{name}\"\n");
        #[cfg(linux)]
        Config::from_toml_str(&text, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        #[cfg(not(linux))]
        if name != "maximum" {
            Config::from_toml_str(&text, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

#[test]
fn an_unknown_profile_and_bad_realtime_values_name_the_key() {
    let e = err_text("[performance]\nprofile = \"turbo\"\n");
    assert!(e.contains("performance.profile"), "{e}");
    assert!(
        e.contains("balanced") && e.contains("secure"),
        "lists the profiles: {e}"
    );
    let e = err_text("[performance.realtime]\npriority = 100\n");
    assert!(
        e.contains("performance.realtime.priority") && e.contains("1..=99"),
        "{e}"
    );
    let e = err_text("[performance.file_io]\nread_ahead = 99999999\n");
    assert!(e.contains("performance.file_io.read_ahead"), "{e}");
    let e = err_text("[performance.cpu]\ntransfer_threads = 300\n");
    assert!(
        e.contains("performance.cpu.transfer_threads") && e.contains("0..=256"),
        "{e}"
    );
}

#[test]
fn a_removed_key_still_loads_and_is_named_as_doing_nothing() {
    assert!(Config::default().performance.old_keys().is_empty());
    for (toml, key) in [
        (
            "[performance.io_uring]\nshared_ring = true\n",
            "[performance.io_uring]",
        ),
        (
            "[performance.io_uring]\nenabled = true\nsqpoll = false\n",
            "[performance.io_uring]",
        ),
        (
            "[performance.zerocopy]\nenabled = true\n",
            "[performance.zerocopy]",
        ),
        (
            "[performance.file_io]\nsendfile = false\n",
            "performance.file_io.sendfile",
        ),
        (
            "[performance.file_io]\nsendfile_threshold = 0\n",
            "performance.file_io.sendfile_threshold",
        ),
    ] {
        let c = Config::from_toml_str(toml, None)
            .expect("a file written for an older release still loads");
        let said = c.performance.old_keys();
        assert_eq!(said.len(), 1, "{toml:?}: {said:?}");
        assert!(
            said[0].starts_with(&format!("{key} ("))
                && said[0].contains("does nothing")
                && said[0].contains("docs/adr/")
                && said[0].ends_with("delete it"),
            "{toml:?}: {said:?}"
        );
    }
    let c = Config::from_toml_str(
        "[performance.io_uring]\nenabled = true\nsqpoll = false\n",
        None,
    )
    .expect("loads");
    assert!(
        c.performance.old_keys()[0].contains("enabled = true, sqpoll = false"),
        "the warning quotes what the file set: {:?}",
        c.performance.old_keys()
    );
}
