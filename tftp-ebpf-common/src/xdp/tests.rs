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
fn fragments_pass_counted() {
    let f = build::ipv4_fragment(SRC, 69, RRQ, 0, 0x2000);
    assert_eq!(decide_plain(&f), Some(Reason::FragmentPassed));
    assert_eq!(
        decide(&f[..], &config(), |_| false, |_| true).map(|d| d.bytes),
        Some(f.len()),
        "a fragment counts its frame"
    );
    let rrq = build::ipv4(SRC, 69, RRQ, 0);
    assert_eq!(
        decide(&rrq[..], &config(), |_| false, |_| true).map(|d| d.bytes),
        Some(RRQ.len()),
        "a datagram counts its UDP payload"
    );
    assert!(Reason::FragmentPassed.passes());
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
