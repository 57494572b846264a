use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;
use crate::config::OptionName;

fn ok(words: &[&str]) -> InTftpdArgs {
    parse(words).unwrap_or_else(|e| panic!("{words:?} must parse: {e}"))
}

fn refused(words: &[&str]) -> String {
    parse(words)
        .expect_err(&format!("{words:?} must be refused"))
        .to_string()
}

#[test]
fn debian_default_line_parses() {
    // /etc/init.d/tftpd-hpa with /etc/default/tftpd-hpa's defaults.
    let a = ok(&DEBIAN_DEFAULT_LINE);
    assert!(a.listen && a.secure, "{a:?}");
    assert_eq!(a.user.as_deref(), Some("tftp"));
    assert_eq!(
        a.address,
        Some(Address {
            host: Host::Any,
            port: 69
        })
    );
    assert_eq!(a.dirs, vec![PathBuf::from("/srv/tftp")]);
}

#[test]
fn short_flags_cluster_and_take_attached_or_next_values() {
    let a = ok(&[
        "-vvLsc", "-utftp", "-B", "1468", "/srv", "-r", "TSIZE", "-P/run/p",
    ]);
    assert_eq!(a.verbosity, Some(2), "each -v adds one");
    assert!(a.foreground && a.secure && a.create);
    assert_eq!(a.user.as_deref(), Some("tftp"), "-uVALUE");
    assert_eq!(a.blocksize, Some(1468));
    assert_eq!(
        a.refuse,
        vec![Refused::Negotiated(OptionName::Tsize)],
        "option names are case-insensitive"
    );
    assert_eq!(a.pidfile, Some(PathBuf::from("/run/p")));
    assert_eq!(
        a.dirs,
        vec![PathBuf::from("/srv")],
        "a directory may stand anywhere"
    );
    assert_eq!(
        a.given,
        ["-v", "-v", "-L", "-s", "-c", "-u", "-B", "-r", "-P"],
        "flags kept in order"
    );
}

#[test]
fn long_flags_take_equals_or_next_word_and_unique_prefixes() {
    let a = ok(&[
        "--sec",
        "--user=tftp",
        "--verbosity",
        "3",
        "--port-range=3000:3010",
        "d",
    ]);
    assert!(a.secure, "--sec is --secure (getopt_long prefix)");
    assert_eq!(a.user.as_deref(), Some("tftp"));
    assert_eq!(a.verbosity, Some(3));
    assert_eq!(a.port_range.map(|r| (r.lo, r.hi)), Some((3000, 3010)));
    let e = refused(&["--ver"]);
    assert!(
        e.contains("ambiguous") && e.contains("--verbose") && e.contains("--version"),
        "{e}"
    );
}

#[test]
fn double_dash_ends_the_flags() {
    let a = ok(&["-s", "--", "-odd-dir"]);
    assert_eq!(a.dirs, vec![PathBuf::from("-odd-dir")]);
}

#[test]
fn addresses_parse_as_in_tftpd_splits_them() {
    let addr = |s: &str| ok(&["-a", s]).address.expect("address");
    assert_eq!(addr(":69").host, Host::Any);
    assert_eq!(addr("").port, 69, "no port: tftp's");
    let v4 = addr("127.0.0.1:6969");
    assert_eq!(
        (v4.host, v4.port),
        (Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)), 6969)
    );
    assert_eq!(addr("10.0.0.1").port, 69);
    assert_eq!(addr("10.0.0.1:tftp").port, 69, "the service name tftp");
    let v6 = addr("[::1]:70");
    assert_eq!(
        (v6.host, v6.port),
        (Host::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)), 70)
    );
    assert_eq!(addr("[::]").port, 69);
    assert_eq!(addr("localhost:69").host, Host::Name("localhost".into()));
    let e = refused(&["-a", "::1"]);
    assert!(e.contains("-a") && e.contains("enclosed in []"), "{e}");
    let e = refused(&["-a", "1.2.3.4:domain"]);
    assert!(e.contains("1..=65535"), "{e}");
}

#[test]
fn values_outside_in_tftpd_ranges_are_refused_naming_the_flag() {
    for (words, flag, allowed) in [
        (&["-B", "511"][..], "-B", "512..=65464"),
        (&["--blocksize", "65465"], "--blocksize", "512..=65464"),
        (&["-T", "9999"], "-T", "10000..=255000000"),
        (&["-T", "255000001"], "-T", "10000..=255000000"),
        (&["-R", "3000-3010"], "-R", "LO:HI"),
        (&["-R", "3010:3000"], "-R", "LO <= HI"),
        (&["-R", "1:65535"], "-R", "65534"),
        (&["-U", "089"], "-U", "octal"),
        (&["-r", "multicast"], "-r", "blksize, blksize2"),
        (&["--verbosity", "x"], "--verbosity", "a number"),
        (&["-t", "-1"], "-t", "seconds"),
    ] {
        let e = refused(words);
        assert!(e.starts_with(flag) && e.contains(allowed), "{words:?}: {e}");
    }
}

#[test]
fn unknown_flags_missing_values_and_two_map_files_are_refused() {
    assert!(refused(&["-x"]).starts_with("-x: not an in.tftpd flag"));
    assert!(refused(&["--config", "f"]).starts_with("--config: not an in.tftpd flag"));
    assert!(refused(&["-u"]).contains("needs a value"));
    assert!(refused(&["--secure=yes"]).contains("takes no value"));
    assert!(refused(&["-m", "a", "-m", "b"]).contains("given twice"));
}

#[test]
fn verbosity_and_family_follow_the_order_given() {
    let a = ok(&["--verbosity", "4", "-v", "-4", "-6"]);
    assert_eq!(a.verbosity, Some(5), "-v after --verbosity 4 adds one");
    assert_eq!(a.family, Some(Family::V6), "the last of -4/-6 wins");
    assert_eq!(ok(&["-6", "-4"]).family, Some(Family::V4));
    assert_eq!(ok(&["-s", "d"]).verbosity, None, "no -v: the default level");
}

#[test]
fn refuse_knows_in_tftpd_options_and_tftpd_windowsize() {
    let a = ok(&[
        "-r",
        "blksize",
        "-r",
        "utimeout",
        "-r",
        "Rollover",
        "-r",
        "windowsize",
    ]);
    assert_eq!(
        a.refuse,
        vec![
            Refused::Negotiated(OptionName::Blksize),
            Refused::NeverAgreed("utimeout"),
            Refused::NeverAgreed("rollover"),
            Refused::Negotiated(OptionName::Windowsize),
        ]
    );
}
