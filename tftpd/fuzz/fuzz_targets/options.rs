//! Fuzzes option negotiation as the server runs it: the options of a request decoded from
//! the wire, against server limits in the ranges the config allows. Whatever the client
//! asks, every value used lies within those limits, only known options the server did not
//! refuse are acknowledged (each once, in the client's order, with the value used), and the
//! OACK decodes back to exactly the accepted set. A refusal names a real fault.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use tftpd::proto::options::{
    DEFAULT_BLKSIZE, Direction, MAX_BLKSIZE, MIN_BLKSIZE, OptionError, OptionLimits, OptionName,
    negotiate,
};
use tftpd::proto::{ErrorCode, Packet};

const KNOWN: [OptionName; 4] = [
    OptionName::Blksize,
    OptionName::Timeout,
    OptionName::Tsize,
    OptionName::Windowsize,
];

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    max_blksize: u16,
    max_windowsize: u16,
    default_timeout_ms: u16,
    max_timeout_secs: u8,
    max_upload_size: u64,
    /// One bit per entry of `KNOWN`.
    refuse: u8,
    /// 0: RRQ of known size, 1: RRQ of unknown size (netascii), else WRQ.
    direction: u8,
    size: u64,
    /// Everything after the mode's NUL: the options as the client sent them.
    options: &'a [u8],
}

fuzz_target!(|input: Input<'_>| {
    let limits = OptionLimits {
        // `protocol.max_blksize` is a BlockSize (8..=65464); the path-MTU cap stays >= 8.
        max_blksize: input.max_blksize.max(MIN_BLKSIZE),
        max_windowsize: input.max_windowsize,
        default_timeout: Duration::from_millis(u64::from(input.default_timeout_ms)),
        max_timeout: Duration::from_secs(u64::from(input.max_timeout_secs)),
        max_upload_size: input.max_upload_size,
        refuse: KNOWN
            .into_iter()
            .enumerate()
            .filter(|(i, _)| input.refuse & (1 << i) != 0)
            .map(|(_, o)| o)
            .collect(),
    };
    let direction = match input.direction {
        0 => Direction::Read {
            size: Some(input.size),
        },
        1 => Direction::Read { size: None },
        _ => Direction::Write,
    };
    let mut datagram = b"\x00\x01file\x00octet\x00".to_vec();
    datagram.extend_from_slice(input.options);
    let Ok(Packet::Rrq(request)) = Packet::decode(&datagram) else {
        return;
    };
    let asked = &request.options;
    match negotiate(asked, direction, &limits) {
        Ok(n) => check_accepted(asked, direction, &limits, &n),
        Err(e) => check_refusal(asked, direction, &e),
    }
});

fn check_accepted(
    asked: &[(&[u8], &[u8])],
    direction: Direction,
    limits: &OptionLimits,
    n: &tftpd::proto::options::Negotiated,
) {
    let acked = |o: OptionName| n.accepted.iter().any(|(k, _)| *k == o.name());
    // The limits bound what is negotiated; without the option RFC 1350's values apply.
    if acked(OptionName::Blksize) {
        let cap = limits.max_blksize.min(MAX_BLKSIZE);
        assert!(
            (MIN_BLKSIZE..=cap).contains(&n.blksize),
            "blksize {} outside 8..={cap}",
            n.blksize
        );
    } else {
        assert_eq!(n.blksize, DEFAULT_BLKSIZE, "no blksize in the OACK: 512");
    }
    if acked(OptionName::Windowsize) {
        assert!(
            (1..=limits.max_windowsize.max(1)).contains(&n.windowsize),
            "windowsize {} outside 1..={}",
            n.windowsize,
            limits.max_windowsize
        );
    } else {
        assert_eq!(n.windowsize, 1, "no windowsize in the OACK: lock-step");
    }
    assert!(
        n.timeout == limits.default_timeout
            || (n.timeout >= Duration::from_secs(1) && n.timeout <= limits.max_timeout),
        "timeout {:?} is neither the default nor within 1 s..={:?}",
        n.timeout,
        limits.max_timeout
    );

    // Acknowledged: known, not refused, asked for, once each, in the client's order.
    let mut cursor = 0;
    for (name, value) in &n.accepted {
        let known: OptionName = name.parse().expect("only known options are acknowledged");
        assert!(!limits.refuse.contains(&known), "{name} is refused");
        let at = asked[cursor..]
            .iter()
            .position(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
            .unwrap_or_else(|| panic!("{name} acknowledged out of order or not asked for"));
        cursor += at + 1;
        let used = match known {
            OptionName::Blksize => n.blksize.to_string(),
            OptionName::Windowsize => n.windowsize.to_string(),
            OptionName::Timeout => n.timeout.as_secs().to_string(),
            OptionName::Tsize => n.tsize.expect("tsize acknowledged").to_string(),
        };
        assert_eq!(value, &used, "{name}: the OACK states the value used");
    }
    if !acked(OptionName::Timeout) {
        assert_eq!(
            n.timeout, limits.default_timeout,
            "no timeout: the server's"
        );
    }
    assert_eq!(
        n.tsize.is_some(),
        acked(OptionName::Tsize),
        "tsize iff acknowledged"
    );
    match (direction, n.tsize) {
        (Direction::Read { size: None }, t) => assert_eq!(t, None, "unknown size: no tsize"),
        (Direction::Read { size: Some(s) }, Some(t)) => assert_eq!(t, s, "RRQ tsize is the file's"),
        (Direction::Write, Some(t)) => assert!(t <= limits.max_upload_size, "upload limit"),
        _ => {}
    }
    if n.multicast {
        assert!(
            asked
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case(b"multicast") && v.is_empty()),
            "multicast only when asked for with RFC 2090's empty value"
        );
    }

    // The OACK, through the codec, is the accepted set.
    match n.oack() {
        None => assert!(n.accepted.is_empty(), "options accepted but no OACK"),
        Some(oack) => {
            let Ok(Packet::Oack { options }) = Packet::decode(&oack) else {
                panic!("the OACK does not decode as one: {oack:?}");
            };
            let want: Vec<(&[u8], &[u8])> = n
                .accepted
                .iter()
                .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
                .collect();
            assert_eq!(options, want, "OACK round trip");
        }
    }
    let m = n.clone().for_multicast();
    assert_eq!(m.windowsize, 1, "a multicast group is lock-step");
    assert!(!m.accepted.iter().any(|(k, _)| *k == "windowsize"));
}

fn check_refusal(asked: &[(&[u8], &[u8])], direction: Direction, e: &OptionError) {
    match e {
        OptionError::Repeated { .. } => assert!(
            asked
                .iter()
                .enumerate()
                .any(|(i, (k, _))| asked[..i].iter().any(|(j, _)| j.eq_ignore_ascii_case(k))),
            "Repeated without a repeat"
        ),
        OptionError::Invalid { name, .. } => {
            assert!(name.parse::<OptionName>().is_ok(), "{name} is known")
        }
        OptionError::UploadTooLarge { size, limit } => {
            assert_eq!(direction, Direction::Write, "only an upload is too large");
            assert!(size > limit);
        }
    }
    let code = e.wire_error().code;
    assert!(
        matches!(code, ErrorCode::OptionRefused | ErrorCode::DiskFull),
        "a refusal is ERROR 8 (or 3 for a too-large upload), not {code:?}"
    );
}
