use std::path::PathBuf;

use super::*;
use crate::cli::Cli;
use crate::config::{OptionName, RemapAction};

fn build_line(words: &[&str]) -> Result<(Config, Vec<Note>), LoadError> {
    let argv = std::iter::once("in.tftpd").chain(words.iter().copied());
    let cli = Cli::try_parse_words(argv).expect("an in.tftpd line");
    super::super::load_with_notes(&cli)
}

fn config(words: &[&str]) -> Config {
    build_line(words)
        .unwrap_or_else(|e| panic!("{words:?}: {e}"))
        .0
}

fn error(words: &[&str]) -> String {
    let e = build_line(words).expect_err("refused");
    crate::logging::error_chain(&e)
}

#[test]
fn debian_default_line_is_the_built_in_defaults_with_root_and_user() {
    let (c, notes) =
        build_line(&crate::cli::in_tftpd::DEBIAN_DEFAULT_LINE).expect("the Debian default");
    let expected = Config {
        root: PathBuf::from("/srv/tftp"),
        user: "tftp".into(),
        ..Config::default()
    };
    assert_eq!(c, expected, "nothing else differs from the defaults");
    assert_eq!(
        notes.iter().map(|n| n.flag).collect::<Vec<_>>(),
        ["-l"],
        "-l is logged as not needed"
    );
    assert!(!notes[0].differs && notes[0].message.contains("not needed"));
}

#[test]
fn every_flag_lands_on_its_key() {
    let c = config(&[
        "-L",
        "-s",
        "/srv",
        "-c",
        "-u",
        "tftp",
        "-a",
        "127.0.0.1:6969",
        "-R",
        "3000:3010",
        "-B",
        "1468",
        "-T",
        "250000",
        "-r",
        "tsize",
        "-U",
        "027",
        "-P",
        "/run/tftpd.pid",
        "-vv",
    ]);
    assert_eq!(c.write, WriteMode::Create, "-c");
    assert_eq!(
        c.listen,
        vec!["127.0.0.1:6969".parse().expect("addr")],
        "-a"
    );
    assert_eq!(c.port_range.map(|r| (r.lo, r.hi)), Some((3000, 3010)), "-R");
    assert_eq!(c.protocol.max_blksize.get(), 1468, "-B");
    assert_eq!(c.protocol.timeout_ms, 250, "-T in µs");
    assert_eq!(c.protocol.refuse_options, vec![OptionName::Tsize], "-r");
    assert_eq!(c.uploads.file_mode, 0o640, "-U 027: 0666 & ~027");
    assert_eq!(c.pidfile, Some(PathBuf::from("/run/tftpd.pid")), "-P");
    assert_eq!(c.log.level, "debug", "-vv");
}

#[test]
fn flags_not_needed_are_logged_with_the_reason() {
    let (_, notes) = build_line(&[
        "-l", "-L", "-p", "-t", "900", "-r", "blksize2", "-T", "15500", "-s", "/srv",
    ])
    .expect("accepted");
    let flags: Vec<&str> = notes.iter().map(|n| n.flag).collect();
    assert_eq!(flags, ["-l", "-L", "-p", "-t", "-T", "-r"], "{notes:?}");
    assert!(
        notes
            .iter()
            .any(|n| n.message.contains("15500 µs taken as 16 ms")),
        "{notes:?}"
    );
}

#[test]
fn families_and_addresses_bind_as_in_tftpd_binds_them() {
    let listen = |words: &[&str]| {
        let mut w = vec!["-l", "-s", "/srv"];
        w.extend_from_slice(words);
        config(&w)
    };
    assert_eq!(listen(&[]).listen, vec!["[::]:69".parse().expect("a")]);
    assert_eq!(
        listen(&["-4"]).listen,
        vec!["0.0.0.0:69".parse().expect("a")]
    );
    let v6 = listen(&["-6", "-a", ":1069"]);
    assert_eq!(v6.listen, vec!["[::]:1069".parse().expect("a")]);
    assert!(
        !v6.serves("192.0.2.1".parse().expect("ip"))
            && v6.serves("2001:db8::1".parse().expect("ip")),
        "-6: IPv4 clients are not served"
    );
    assert!(
        listen(&["-a", "[::1]:70"]).serves("192.0.2.1".parse().expect("ip")),
        "without -6 every client is served"
    );
    assert_eq!(
        listen(&["-4", "-a", "localhost:6969"]).listen,
        vec!["127.0.0.1:6969".parse().expect("a")],
        "names resolve, filtered by family"
    );
    let e = error(&["-l", "-s", "/srv", "-4", "-a", "[::1]"]);
    assert!(e.contains("-a") && e.contains("::1"), "{e}");
}

#[test]
fn lines_tftpd_cannot_serve_as_in_tftpd_would_are_refused() {
    for (words, says) in [
        (&["-s", "/srv"][..], "-l: without -l or -L"),
        (&["-l", "/srv"], "-s: without -s"),
        (&["-l", "-s"], "needs a directory"),
        (&["-l", "-s", "/a", "/b"], "takes one directory"),
        (
            &["-l", "-s", "/srv", "-m", "/nonexistent/map"],
            "/nonexistent/map",
        ),
    ] {
        let e = error(words);
        assert!(e.contains(says), "{words:?}: {e}");
    }
}

#[test]
fn a_relative_directory_is_taken_from_the_working_directory() {
    let c = config(&["-l", "-s", "srv"]);
    assert!(
        c.root.is_absolute() && c.root.ends_with("srv"),
        "{:?}",
        c.root
    );
}

#[test]
fn map_file_rules_become_remap_rules_and_its_errors_name_file_and_line() {
    let dir = crate::fs::testdir_for_config();
    let map = dir.path().join("tftpd.map");
    std::fs::write(&map, "# comment\nrg \\\\ /\na \\.key$ no\n").expect("write");
    let m = map.to_str().expect("utf-8");
    let (c, notes) = build_line(&["-l", "-s", "/srv", "-m", m]).expect("translated");
    assert_eq!(c.remap.len(), 2);
    assert!(c.remap[0].repeat && c.remap[0].replace.as_deref() == Some("/"));
    assert_eq!(c.remap[1].action, RemapAction::Deny);
    assert!(
        notes
            .iter()
            .any(|n| n.flag == "-m" && n.differs && n.message.contains("line 3")),
        "the a rule's error text is a warning: {notes:?}"
    );
    std::fs::write(&map, "r a b\ns x y\n").expect("write");
    let e = error(&["-l", "-s", "/srv", "-m", m]);
    assert!(
        e.contains(m) && e.contains("line 2") && e.contains("flag s"),
        "{e}"
    );
}
