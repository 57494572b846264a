use super::*;
use crate::frame::tests::build;

fn config() -> XdpConfig {
    let mut c = XdpConfig {
        listen_ports: [69, 0, 0, 0],
        transfer_port_first: 50000,
        transfer_port_last: 50009,
        max_blksize: 512,
        ..XdpConfig::default()
    };
    c.set_rate(10, 2);
    c
}

const SRC: [u8; 4] = [192, 0, 2, 7];
const RRQ: &[u8] = b"\0\x01f\0octet\0";

fn decide_plain(frame: &[u8]) -> Option<Reason> {
    reason(decide(frame, &config(), |_| false, |_| true))
}

fn reason(d: Option<Decision>) -> Option<Reason> {
    d.map(|d| d.reason)
}

#[test]
fn the_listener_port_gets_the_request_rule() {
    assert_eq!(
        decide_plain(&build::ipv4(SRC, 69, RRQ, 0)),
        Some(Reason::Passed)
    );
    assert_eq!(
        decide_plain(&build::ipv4(SRC, 69, b"\0\x03\0\x01", 0)),
        Some(Reason::BadOpcode)
    );
    assert_eq!(
        decide_plain(&build::ipv4(SRC, 69, b"\0\x01x", 0)),
        Some(Reason::TooShort)
    );
}

#[test]
fn transfer_ports_get_the_transfer_rule_and_other_ports_are_left_alone() {
    assert_eq!(
        decide_plain(&build::ipv4(SRC, 50009, b"\0\x04\0\x01", 0)),
        Some(Reason::Passed)
    );
    assert_eq!(
        decide_plain(&build::ipv4(
            SRC,
            50000,
            &[0, 3, 0, 1, 0, 0, 0, 0, 0][..4 + 5],
            0
        )),
        Some(Reason::Passed)
    );
    let big = [0u8; 4 + 513];
    assert_eq!(
        decide_plain(&build::ipv4(
            SRC,
            50000,
            &[&[0u8, 3, 0, 1][..], &big[4..]].concat(),
            0
        )),
        Some(Reason::Oversized)
    );
    for port in [68, 70, 49999, 50010, 53] {
        assert_eq!(
            decide_plain(&build::ipv4(SRC, port, b"junk", 0)),
            None,
            "port {port}"
        );
    }
    let mut none = config();
    none.transfer_port_first = 0;
    none.transfer_port_last = 0;
    assert_eq!(
        decide(
            &build::ipv4(SRC, 0, b"junk", 0)[..],
            &none,
            |_| false,
            |_| true
        ),
        None,
        "port 0 is never a transfer port when there is no range"
    );
}

#[test]
fn the_deny_list_comes_first_and_the_rate_only_charges_good_requests() {
    let f = build::ipv4(SRC, 69, RRQ, 0);
    let mapped = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 7];
    let mut looked_up = None;
    assert_eq!(
        reason(decide(
            &f[..],
            &config(),
            |s| {
                looked_up = Some(*s);
                true
            },
            |_| panic!("a denied source is not charged")
        )),
        Some(Reason::Denied)
    );
    assert_eq!(
        looked_up,
        Some(mapped),
        "the deny list sees the mapped source"
    );
    assert_eq!(
        reason(decide(&f[..], &config(), |_| false, |_| false)),
        Some(Reason::RateLimited)
    );
    let junk = build::ipv4(SRC, 69, b"\0\x09junk", 0);
    assert_eq!(
        reason(decide(
            &junk[..],
            &config(),
            |_| false,
            |_| panic!("junk is not charged")
        )),
        Some(Reason::BadOpcode)
    );
    let mut off = config();
    off.set_rate(0, 0);
    assert_eq!(
        reason(decide(
            &f[..],
            &off,
            |_| false,
            |_| panic!("no limit, no charge")
        )),
        Some(Reason::Passed)
    );
    let ack = build::ipv4(SRC, 50001, b"\0\x04\0\x01", 0);
    assert_eq!(
        reason(decide(&ack[..], &config(), |_| false, |_| false)),
        Some(Reason::Passed),
        "transfers are not rate limited"
    );
}

#[test]
fn single_port_listeners_carry_transfers_and_only_requests_are_charged() {
    let mut c = config();
    c.single_port = 1;
    let ack = build::ipv4(SRC, 69, b"\0\x04\0\x01", 0);
    assert_eq!(
        reason(decide(
            &ack[..],
            &c,
            |_| false,
            |_| panic!("an ACK is not charged")
        )),
        Some(Reason::Passed)
    );
    let bad_ack = build::ipv4(SRC, 69, b"\0\x04\0\x01\0", 0);
    assert_eq!(
        reason(decide(&bad_ack[..], &c, |_| false, |_| true)),
        Some(Reason::BadAckLength)
    );
    assert_eq!(
        reason(decide(
            &build::ipv4(SRC, 69, RRQ, 0)[..],
            &c,
            |_| false,
            |_| false
        )),
        Some(Reason::RateLimited),
        "requests still are"
    );
    assert_eq!(
        reason(decide(&ack[..], &config(), |_| false, |_| true)),
        Some(Reason::BadOpcode),
        "without single-port an ACK to the listener is junk"
    );
}

#[test]
fn fragments_are_counted_and_judged_by_their_source() {
    let first = build::ipv4_fragment(SRC, 69, RRQ, 0, 0x2000);
    let later = build::ipv4_fragment(SRC, 69, b"rest of it", 0, 0x0003);
    assert_eq!(decide_plain(&first), Some(Reason::FragmentPassed));
    assert_eq!(
        decide(&first[..], &config(), |_| false, |_| true).map(|d| d.bytes),
        Some(first.len()),
        "a fragment counts its frame"
    );
    let rrq = build::ipv4(SRC, 69, RRQ, 0);
    assert_eq!(
        decide(&rrq[..], &config(), |_| false, |_| true).map(|d| d.bytes),
        Some(RRQ.len()),
        "a datagram counts its UDP payload"
    );
    for (what, f) in [("first", &first), ("later", &later)] {
        assert_eq!(
            reason(decide(
                &f[..],
                &config(),
                |_| true,
                |_| panic!("a denied fragment is not charged")
            )),
            Some(Reason::FragmentDenied),
            "{what} fragment of a denied source"
        );
    }
    assert_eq!(
        reason(decide(&first[..], &config(), |_| false, |_| false)),
        Some(Reason::FragmentRateLimited),
        "a first fragment to the listener is a request, charged"
    );
    assert_eq!(
        reason(decide(
            &later[..],
            &config(),
            |_| false,
            |_| panic!("a later fragment is not charged")
        )),
        Some(Reason::FragmentPassed),
        "a later fragment cannot reassemble without its first: not charged"
    );
    let to_transfer = build::ipv4_fragment(SRC, 50003, b"\0\x03\0\x01data", 0, 0x2000);
    assert_eq!(
        reason(decide(
            &to_transfer[..],
            &config(),
            |_| false,
            |_| panic!("upload DATA is not charged")
        )),
        Some(Reason::FragmentPassed)
    );
    let elsewhere = build::ipv4_fragment(SRC, 53, RRQ, 0, 0x2000);
    assert_eq!(
        decide(&elsewhere[..], &config(), |_| true, |_| false),
        None,
        "a first fragment to another port is not ours"
    );
    let mut off = config();
    off.set_rate(0, 0);
    assert_eq!(
        reason(decide(
            &first[..],
            &off,
            |_| false,
            |_| panic!("no limit, no charge")
        )),
        Some(Reason::FragmentPassed)
    );
    // A first fragment holding only the UDP header: no opcode to tell, so charged.
    let header_only = build::ipv4_fragment(SRC, 69, b"", 0, 0x2000);
    assert_eq!(
        reason(decide(&header_only[..], &config(), |_| false, |_| false)),
        Some(Reason::FragmentRateLimited)
    );
    // Single-port: a fragmented upload DATA to the listener is not a request.
    let mut single = config();
    single.single_port = 1;
    let data = build::ipv4_fragment(SRC, 69, b"\0\x03\0\x02data", 0, 0x2000);
    assert_eq!(
        reason(decide(
            &data[..],
            &single,
            |_| false,
            |_| panic!("DATA is not charged")
        )),
        Some(Reason::FragmentPassed)
    );
    assert_eq!(
        reason(decide(&first[..], &single, |_| false, |_| false)),
        Some(Reason::FragmentRateLimited),
        "a fragmented request still is"
    );
    let v6 = build::ipv6(SRC6, 69, RRQ, true);
    assert_eq!(
        reason(decide(&v6[..], &config(), |s| *s == SRC6, |_| true)),
        Some(Reason::FragmentDenied),
        "IPv6 fragments too"
    );
    assert!(Reason::FragmentPassed.passes());
    assert!(!Reason::FragmentDenied.passes() && !Reason::FragmentRateLimited.passes());
}

const SRC6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 9];

#[test]
fn extension_headers_get_the_rules_and_their_own_reasons() {
    let chain = [build::ext_header(60, 0)];
    let rrq = build::ipv6_chain(SRC6, &chain, 17, &build::udp(69, RRQ));
    assert_eq!(decide_plain(&rrq), Some(Reason::ExtHeaderPassed));
    assert_eq!(
        reason(decide(&rrq[..], &config(), |_| true, |_| true)),
        Some(Reason::ExtHeaderDenied)
    );
    assert_eq!(
        reason(decide(&rrq[..], &config(), |_| false, |_| false)),
        Some(Reason::ExtHeaderRateLimited)
    );
    let junk = build::ipv6_chain(SRC6, &chain, 17, &build::udp(69, b"\0\x09junk"));
    assert_eq!(
        decide_plain(&junk),
        Some(Reason::BadOpcode),
        "the rules judge what they read"
    );
    let other = build::ipv6_chain(SRC6, &chain, 17, &build::udp(53, RRQ));
    assert_eq!(decide_plain(&other), None, "other ports are left alone");
    assert!(Reason::ExtHeaderPassed.passes());
}

#[test]
fn unparsed_chains_are_judged_by_source_and_charged() {
    let long: Vec<_> = (0..=crate::frame::MAX_EXT_HEADERS)
        .map(|_| build::ext_header(60, 0))
        .collect();
    let f = build::ipv6_chain(SRC6, &long, 17, &build::udp(69, RRQ));
    let mut charged = None;
    assert_eq!(
        reason(decide(
            &f[..],
            &config(),
            |_| false,
            |k| {
                charged = Some(*k);
                true
            }
        )),
        Some(Reason::ExtHeaderUnparsed)
    );
    assert_eq!(
        charged,
        Some(config().rate_key(&SRC6)),
        "charged to its source's prefix"
    );
    assert_eq!(
        decide(&f[..], &config(), |_| false, |_| true).map(|d| d.bytes),
        Some(f.len())
    );
    assert_eq!(
        reason(decide(&f[..], &config(), |_| true, |_| true)),
        Some(Reason::ExtHeaderDenied)
    );
    assert_eq!(
        reason(decide(&f[..], &config(), |_| false, |_| false)),
        Some(Reason::ExtHeaderRateLimited)
    );
    let mut off = config();
    off.set_rate(0, 0);
    assert_eq!(
        reason(decide(
            &f[..],
            &off,
            |_| false,
            |_| panic!("no limit, no charge")
        )),
        Some(Reason::ExtHeaderUnparsed)
    );
    assert!(Reason::ExtHeaderUnparsed.passes());
    assert!(!Reason::ExtHeaderDenied.passes() && !Reason::ExtHeaderRateLimited.passes());
}

#[test]
fn rate_keys_are_the_configured_prefixes() {
    let mut c = config();
    let v4 = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 77];
    assert_eq!(c.rate_key(&v4), v4, "IPv4 /32 by default");
    assert_eq!(
        c.rate_key(&SRC6),
        [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0],
        "IPv6 /64 by default"
    );
    c.rate_prefix_v4 = 20;
    c.rate_prefix_v6 = 61;
    assert_eq!(
        c.rate_key(&v4),
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 0, 0],
        "a /20 keeps the mapped prefix and 4 bits of the third byte"
    );
    assert_eq!(
        c.rate_key(&[
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0x0f, 0xff, 0, 0, 0, 0, 0, 0, 1
        ]),
        [
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0x08, 0, 0, 0, 0, 0, 0, 0, 0
        ]
    );
    c.rate_prefix_v4 = 0;
    c.rate_prefix_v6 = 128;
    assert_eq!(
        c.rate_key(&v4),
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0],
        "/0: one budget for all IPv4"
    );
    assert_eq!(c.rate_key(&SRC6), SRC6, "/128: the address");
    // The key decide hands the limiter is the masked one.
    let mut shared = config();
    shared.rate_prefix_v6 = 64;
    let mut keys = Vec::new();
    for host in [1u8, 2, 3] {
        let mut src = SRC6;
        src[15] = host;
        let f = build::ipv6(src, 69, RRQ, false);
        decide(
            &f[..],
            &shared,
            |_| false,
            |k| {
                keys.push(*k);
                true
            },
        );
    }
    assert!(
        keys.len() == 3 && keys.iter().all(|k| *k == shared.rate_key(&SRC6)),
        "three hosts of one /64 share a key: {keys:?}"
    );
}

#[test]
fn gcra_allows_the_burst_then_the_rate() {
    let mut c = XdpConfig::default();
    c.set_rate(10, 3);
    let (t, tol) = (c.rate_interval_ns, c.rate_tolerance_ns);
    assert_eq!((t, tol), (100_000_000, 200_000_000));
    let now = 5_000_000_000;
    let mut tat = 0;
    for i in 0..3 {
        tat = gcra(tat, now, t, tol).unwrap_or_else(|| panic!("request {i} of the burst"));
    }
    assert_eq!(gcra(tat, now, t, tol), None, "the 4th at once is over");
    assert!(
        gcra(tat, now + t, t, tol).is_some(),
        "one interval later there is room"
    );
    assert!(
        gcra(tat, now + 10 * t, t, tol).is_some_and(|n| n == now + 11 * t),
        "an idle source starts afresh"
    );
}

proptest::proptest! {
    #[test]
    fn a_single_port_listener_applies_exactly_the_single_port_rule(
        payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..700),
        opcode in 0u8..7,
    ) {
        let mut payload = payload;
        if payload.len() >= 2 {
            payload[0] = 0;
            payload[1] = opcode;
        }
        let mut c = config();
        c.single_port = 1;
        let frame = build::ipv4(SRC, 69, &payload, 0);
        let got = reason(decide(&frame[..], &c, |_| false, |_| true));
        let want = crate::rules::classify_single_port(&payload[..], 512).reason();
        proptest::prop_assert_eq!(got, Some(want));
    }
}
