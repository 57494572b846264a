//! Option negotiation tests: name matching, refusals, clamps and what the OACK echoes.

use super::*;

#[test]
fn requested_names_are_matched_case_insensitively_before_negotiation() {
    let names: [&[u8]; 3] = [b"BlkSize", b"MULTICAST", b"tsize"];
    assert!(requested(names, OptionName::Blksize));
    assert!(requested(names, OptionName::Tsize));
    assert!(!requested(names, OptionName::Windowsize));
    assert!(requested_multicast(names));
    assert!(!requested_multicast([b"multicastx".as_slice()]));
    let opts: [(&[u8], &[u8]); 1] = [(b"WINDOWSIZE", b"4")];
    let n = negotiate(&opts, Direction::Read { size: None }, &limits()).expect("valid");
    assert!(n.accepted(OptionName::Windowsize));
    assert!(!n.accepted(OptionName::Blksize));
}
use proptest::prelude::*;

fn limits() -> OptionLimits {
    OptionLimits {
        max_blksize: 8192,
        max_windowsize: 16,
        default_timeout: Duration::from_millis(1000),
        max_timeout: Duration::from_secs(255),
        max_upload_size: 1000,
        refuse: Vec::new(),
    }
}

fn neg(opts: &[(&str, &str)], dir: Direction) -> Result<Negotiated, OptionError> {
    let raw: Vec<(&[u8], &[u8])> = opts
        .iter()
        .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
        .collect();
    negotiate(&raw, dir, &limits())
}

const READ: Direction = Direction::Read { size: Some(4242) };

#[test]
fn refused_options_are_left_out_of_the_oack_and_the_rest_negotiate() {
    let mut l = limits();
    l.refuse = vec!["blksize".parse().expect("a name"), OptionName::Tsize];
    let raw: [(&[u8], &[u8]); 3] = [
        (b"BLKSIZE", b"1428"),
        (b"tsize", b"0"),
        (b"windowsize", b"4"),
    ];
    let n = negotiate(&raw, READ, &l).expect("negotiates");
    assert_eq!(n.blksize, 512, "refused blksize: the RFC 1350 default");
    assert_eq!(n.tsize, None, "refused tsize: not answered");
    assert_eq!(n.windowsize, 4, "the others still negotiate");
    assert_eq!(
        n.oack().as_deref(),
        Some(&b"\x00\x06windowsize\x004\x00"[..]),
        "only the accepted option is acknowledged"
    );
    let e = "mtu".parse::<OptionName>().expect_err("unknown option");
    assert!(e.contains("blksize, timeout, tsize or windowsize"), "{e}");
}

#[test]
fn no_options_means_rfc1350_defaults_and_no_oack() {
    let n = neg(&[], READ).expect("no options must negotiate");
    assert_eq!((n.blksize, n.windowsize), (512, 1), "RFC 1350 defaults");
    assert_eq!(n.oack(), None, "no OACK without options");
}

#[test]
fn accepted_options_are_echoed_in_request_order_with_canonical_names() {
    let n = neg(
        &[
            ("TSIZE", "0"),
            ("BlkSize", "1428"),
            ("windowsize", "8"),
            ("timeout", "3"),
        ],
        READ,
    )
    .expect("valid options");
    assert_eq!(n.blksize, 1428);
    assert_eq!(n.windowsize, 8);
    assert_eq!(n.timeout, Duration::from_secs(3));
    assert_eq!(n.tsize, Some(4242), "RRQ tsize answers the file size");
    assert_eq!(
        n.oack().expect("an OACK"),
        b"\x00\x06tsize\x004242\x00blksize\x001428\x00windowsize\x008\x00timeout\x003\x00"
    );
}

#[test]
fn oversized_blksize_and_windowsize_are_clamped_to_the_limits() {
    let n = neg(&[("blksize", "65464"), ("windowsize", "65535")], READ).expect("clamped");
    assert_eq!(
        (n.blksize, n.windowsize),
        (8192, 16),
        "clamped to the configured caps"
    );
    let n = neg(&[("blksize", "99999999")], READ).expect("clamped");
    assert_eq!(n.blksize, 8192, "a huge blksize is clamped, not refused");
}

#[test]
fn invalid_values_are_refused_with_error_8() {
    for (name, value) in [
        ("blksize", "7"),
        ("blksize", "abc"),
        ("blksize", ""),
        ("blksize", "-1"),
        ("blksize", "123456789012345678901"),
        ("timeout", "0"),
        ("timeout", "256"),
        ("windowsize", "0"),
        ("windowsize", "65536"),
        ("tsize", "x"),
    ] {
        let err = neg(&[(name, value)], READ).expect_err("invalid value must be refused");
        assert_eq!(
            err.wire_error().code,
            ErrorCode::OptionRefused,
            "{name}={value:?} must get ERROR 8"
        );
    }
}

#[test]
fn repeated_option_is_refused_case_insensitively() {
    let err = neg(&[("blksize", "512"), ("BLKSIZE", "1024")], READ).expect_err("repeat");
    assert!(matches!(err, OptionError::Repeated { .. }), "got {err:?}");
    assert_eq!(err.wire_error().code, ErrorCode::OptionRefused);
}

#[test]
fn a_timeout_over_the_servers_limit_is_left_out_and_the_servers_own_applies() {
    let raw: Vec<(&[u8], &[u8])> = vec![(b"timeout", b"255"), (b"blksize", b"1024")];
    let l = OptionLimits {
        max_timeout: Duration::from_secs(5),
        ..limits()
    };
    let n = negotiate(&raw, READ, &l).expect("valid");
    assert_eq!(
        n.timeout, l.default_timeout,
        "255 s is the client's wish, not ours"
    );
    assert_eq!(n.accepted, vec![("blksize", "1024".to_string())]);
    let raw: Vec<(&[u8], &[u8])> = vec![(b"timeout", b"5")];
    let n = negotiate(&raw, READ, &l).expect("valid");
    assert_eq!(
        n.timeout,
        Duration::from_secs(5),
        "up to the limit: honoured"
    );
    assert_eq!(n.accepted, vec![("timeout", "5".to_string())]);
}

#[test]
fn unknown_options_are_ignored() {
    let n = neg(&[("utimeout", "10000")], READ).expect("ignored");
    assert_eq!(n.oack(), None, "nothing we know was asked for");
}

#[test]
fn multicast_is_noted_not_answered_and_drops_windowsize_when_served() {
    let n = neg(
        &[("MULTICAST", ""), ("windowsize", "8"), ("blksize", "1024")],
        READ,
    )
    .expect("valid");
    assert!(n.multicast, "asked for, case-insensitively");
    assert!(
        n.accepted.iter().all(|(k, _)| *k != "multicast"),
        "the group answers it, not negotiate"
    );
    let m = n.for_multicast();
    assert_eq!(m.windowsize, 1, "a group is lock-step");
    assert_eq!(m.accepted, vec![("blksize", "1024".to_string())]);
    let n = neg(&[("multicast", "1")], READ).expect("valid");
    assert!(
        !n.multicast,
        "RFC 2090's value is empty; another is not the option"
    );
    let e = neg(&[("multicast", ""), ("Multicast", "")], READ).expect_err("repeat");
    assert!(matches!(e, OptionError::Repeated { .. }));
}

#[test]
fn netascii_read_leaves_tsize_unanswered() {
    let n = neg(
        &[("tsize", "0"), ("blksize", "1024")],
        Direction::Read { size: None },
    )
    .expect("valid");
    assert_eq!(n.tsize, None);
    assert_eq!(n.accepted, vec![("blksize", "1024".to_string())]);
}

#[test]
fn write_tsize_is_checked_against_the_upload_limit() {
    let n = neg(&[("tsize", "1000")], Direction::Write).expect("at the limit");
    assert_eq!(n.tsize, Some(1000));
    let err = neg(&[("tsize", "1001")], Direction::Write).expect_err("over the limit");
    assert_eq!(
        err.wire_error().code,
        ErrorCode::DiskFull,
        "ERROR 3 for a too-large upload"
    );
}

proptest! {
    #[test]
    fn negotiated_values_always_lie_within_limits(
        opts in proptest::collection::vec(
            (prop_oneof![Just("blksize"), Just("windowsize"), Just("timeout"), Just("tsize"), Just("x")],
             "[0-9]{0,8}"), 0..6)
    ) {
        let raw: Vec<(&[u8], &[u8])> =
            opts.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())).collect();
        if let Ok(n) = negotiate(&raw, Direction::Write, &limits()) {
            prop_assert!((8..=8192).contains(&n.blksize));
            prop_assert!((1..=16).contains(&n.windowsize));
            prop_assert!(n.timeout >= Duration::from_secs(1) && n.timeout <= Duration::from_secs(255)
                || n.timeout == limits().default_timeout);
        }
    }
}
