//! Path attacks and upload safety against the real daemon: nothing outside the root is ever
//! sent, no upload lands outside it, and a failed upload leaves no trace.

mod harness;

use std::os::unix::fs::symlink;
use std::time::Duration;

use harness::clients::{Client, Opts, get};
use harness::raw::{Raw, Reply, data, request};
use harness::{Daemon, DaemonArgs, TempDir};

const REPLY: Duration = Duration::from_secs(5);
const SECRET: &[u8] = b"TOP-SECRET-OUTSIDE-THE-ROOT-1d2c3b4a";

/// A daemon whose root sits next to a secret file and a directory outside it.
fn jailed(write: &str, config: Option<&str>) -> (Daemon, TempDir) {
    let outside = TempDir::new("outside");
    std::fs::write(outside.path().join("secret"), SECRET).expect("secret");
    let d = Daemon::start(DaemonArgs {
        args: vec!["--write".into(), write.into()],
        config: config.map(str::to_string),
        ..DaemonArgs::default()
    });
    let root = d.root().to_path_buf();
    symlink(outside.path().join("secret"), root.join("abs-link")).expect("symlink");
    symlink(outside.path(), root.join("dir-link")).expect("symlink");
    std::fs::create_dir(root.join("sub")).expect("sub");
    symlink(
        "../../../../../../../../../../../../etc/passwd",
        root.join("sub/rel-link"),
    )
    .expect("symlink");
    (d, outside)
}

fn assert_refused(d: &Daemon, name: &[u8]) {
    let c = Raw::new(d.addr());
    c.send(&request(1, name, "octet", &[]));
    let replies = c.collect(Duration::from_millis(800));
    let shown = String::from_utf8_lossy(name);
    assert!(
        !replies.is_empty(),
        "{shown}: the server must answer, not hang"
    );
    for (r, _) in &replies {
        match r {
            Reply::Error { code, message } => {
                assert!(
                    [1, 2].contains(code),
                    "{shown}: ERROR 1 or 2, got {code} {message}"
                );
                assert!(
                    !message.contains('/'),
                    "{shown}: no path in the message: {message}"
                );
            }
            Reply::Data { data, .. } => {
                assert!(
                    !data.windows(SECRET.len()).any(|w| w == SECRET) && !data.starts_with(b"root:"),
                    "{shown}: secret bytes were sent!"
                );
                panic!("{shown}: got DATA instead of an ERROR");
            }
            other => panic!("{shown}: unexpected {other:?}"),
        }
    }
}

#[test]
fn path_attacks_never_leak_bytes_from_outside_the_root() {
    let (d, _outside) = jailed("off", None);
    let long = vec![b'a'; 400];
    for name in [
        &b"../secret"[..],
        b"a/../../secret",
        b"/../secret",
        b"..",
        b"..\\secret",
        b"sub\\..\\..\\secret",
        b"/etc/passwd",
        b"abs-link",
        b"dir-link/secret",
        b"sub/rel-link",
        b"sub/../../secret",
        b"./../secret",
        b"bad\x01name",
        b"\xff\xfe\xfd",
        b"/",
        &long,
    ] {
        assert_refused(&d, name);
    }
    let audit = d.wait_for_log("tftpd::audit", Duration::from_secs(5));
    assert!(
        audit.contains("refused"),
        "security refusals are audit events: {audit}"
    );
}

/// A name longer than `limits.max_request_size` (512 by default). Our daemon answers a request
/// over that limit with ERROR 4 before it looks at the name, so any ERROR code is accepted here.
const HUGE_NAME_LEN: usize = 2000;

#[test]
fn very_long_name_gets_an_error_not_silence() {
    let (d, _outside) = jailed("off", None);
    for prefix in [&b""[..], b"../", b"dir-link/"] {
        let mut name = prefix.to_vec();
        name.resize(HUGE_NAME_LEN, b'a');
        let c = Raw::new(d.addr());
        c.send(&request(1, &name, "octet", &[]));
        let replies = c.collect(Duration::from_millis(800));
        let shown = String::from_utf8_lossy(prefix);
        assert!(
            matches!(replies.as_slice(), [(Reply::Error { .. }, _)]),
            "{shown}+{HUGE_NAME_LEN} bytes: exactly one ERROR, got {replies:?}"
        );
    }
    // Still serving afterwards.
    d.put_file("ok.bin", b"fine");
    assert_eq!(
        Raw::new(d.addr())
            .download("ok.bin", &[], REPLY)
            .expect("a normal download after the long names"),
        b"fine",
        "the server still serves"
    );
}

#[test]
fn tftp_hpa_cannot_fetch_outside_the_root() {
    if !Client::TftpHpa.available("tftp_hpa_cannot_fetch_outside_the_root") {
        return;
    }
    let (d, _outside) = jailed("off", None);
    let out = TempDir::new("hpa-attack");
    for name in ["../secret", "dir-link/secret", "abs-link", "/etc/passwd"] {
        let local = out.path().join("got");
        let result = get(Client::TftpHpa, d.addr(), name, &local, &Opts::default());
        assert!(result.is_err(), "{name}: tftp-hpa must get an error");
        let got = std::fs::read(&local).unwrap_or_default();
        assert!(
            !got.windows(SECRET.len()).any(|w| w == SECRET),
            "{name}: secret leaked"
        );
    }
}

#[test]
fn upload_attacks_never_write_outside_the_root() {
    let (d, outside) = jailed("overwrite", Some("[uploads]\nallow = [\"**\"]\n"));
    for name in [
        &b"../evil"[..],
        b"/../evil",
        b"dir-link/evil",
        b"abs-link",
        b"sub/../../evil",
        b"..\\evil",
        b"nodir/evil",
    ] {
        let c = Raw::new(d.addr());
        c.send(&request(2, name, "octet", &[]));
        match c.expect(REPLY, "an ERROR").0 {
            Reply::Error { code, .. } => {
                assert!(
                    [1, 2].contains(&code),
                    "{}: code {code}",
                    String::from_utf8_lossy(name)
                )
            }
            other => panic!(
                "{}: expected ERROR, got {other:?}",
                String::from_utf8_lossy(name)
            ),
        }
    }
    let mut outside_entries: Vec<_> = std::fs::read_dir(outside.path())
        .expect("read outside")
        .map(|e| e.expect("entry").file_name())
        .collect();
    outside_entries.sort();
    assert_eq!(
        outside_entries,
        vec!["secret"],
        "nothing written outside the root"
    );
    assert_eq!(
        std::fs::read(outside.path().join("secret")).expect("secret"),
        SECRET
    );
    assert!(!d.root().join("nodir").exists(), "no directory created");
}

#[test]
fn aborted_upload_keeps_the_old_file_and_leaves_no_debris() {
    let (d, _outside) = jailed(
        "overwrite",
        Some("[protocol]\ntimeout_ms = 200\nmax_retries = 2\n"),
    );
    d.put_file("firmware.bin", b"the good old firmware");
    for abort_by_error in [false, true] {
        let c = Raw::new(d.addr());
        c.send(&request(2, b"firmware.bin", "octet", &[]));
        let (r, tid) = c.expect(REPLY, "ACK 0");
        assert_eq!(r, Reply::Ack(0));
        for block in 1..=3u16 {
            c.send_to(&data(block, &[0xAA; 512]), tid);
            assert_eq!(c.expect(REPLY, "ACK").0, Reply::Ack(block));
        }
        // Taken before the abort: on a transfer thread the ERROR ends the transfer (and logs
        // it) before this thread could look at the log.
        let from = d.log_len();
        if abort_by_error {
            c.send_to(&harness::raw::error(0, "cancelled"), tid);
        }
        // Silence (or the ERROR): the daemon gives up and must clean up.
        d.wait_for_log_after("transfer finished", from, Duration::from_secs(10));
        assert_eq!(
            std::fs::read(d.root().join("firmware.bin")).expect("old file"),
            b"the good old firmware",
            "abort_by_error={abort_by_error}: the old file is intact"
        );
        assert_eq!(
            d.list(""),
            vec!["abs-link", "dir-link", "firmware.bin", "sub"],
            "abort_by_error={abort_by_error}: no temp files left"
        );
    }
}

#[test]
fn error_messages_never_disclose_server_paths() {
    let (d, _outside) = jailed("create", Some("[uploads]\nallow = [\"*.bin\"]\n"));
    let root = d.root().to_string_lossy().into_owned();
    for (op, name) in [
        (1u16, &b"missing.bin"[..]),
        (1, b"sub"),
        (2, b"x.txt"),
        (2, b"../x.bin"),
    ] {
        let c = Raw::new(d.addr());
        c.send(&request(op, name, "octet", &[]));
        let Reply::Error { message, .. } = c.expect(REPLY, "an ERROR").0 else {
            panic!("expected an ERROR")
        };
        assert!(
            !message.contains(&root) && !message.contains("/tmp"),
            "leaks a path: {message}"
        );
        assert!(
            !message.contains("os error"),
            "leaks an OS error: {message}"
        );
    }
}
