use super::*;

/// Test frames, built the way a NIC hands them over.
pub(crate) mod build {
    /// An Ethernet header with `ethertype`, and one 802.1Q tag first when `vlan`.
    pub(crate) fn eth(ethertype: u16, vlan: bool) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
        if vlan {
            f.extend_from_slice(&0x8100u16.to_be_bytes());
            f.extend_from_slice(&[0x00, 0x2a]);
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f
    }

    /// A UDP header and payload.
    pub(crate) fn udp(dst_port: u16, payload: &[u8]) -> Vec<u8> {
        let mut u = 40000u16.to_be_bytes().to_vec();
        u.extend_from_slice(&dst_port.to_be_bytes());
        u.extend_from_slice(
            &u16::try_from(8 + payload.len())
                .expect("fits")
                .to_be_bytes(),
        );
        u.extend_from_slice(&[0, 0]);
        u.extend_from_slice(payload);
        u
    }

    /// An Ethernet frame with IPv4 (header options of `options` bytes) and UDP.
    pub(crate) fn ipv4(src: [u8; 4], dst_port: u16, payload: &[u8], options: usize) -> Vec<u8> {
        ipv4_fragment(src, dst_port, payload, options, 0x4000)
    }

    /// The same with the flags/fragment-offset field given.
    pub(crate) fn ipv4_fragment(
        src: [u8; 4],
        dst_port: u16,
        payload: &[u8],
        options: usize,
        flags_offset: u16,
    ) -> Vec<u8> {
        let mut f = eth(0x0800, false);
        let ihl = 20 + options;
        let total = u16::try_from(ihl + 8 + payload.len()).expect("fits");
        f.push(0x40 | u8::try_from(ihl / 4).expect("fits"));
        f.push(0);
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&[0, 1]);
        f.extend_from_slice(&flags_offset.to_be_bytes());
        f.extend_from_slice(&[64, 17, 0, 0]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&[10, 0, 0, 1]);
        f.extend(std::iter::repeat_n(1u8, options));
        f.extend_from_slice(&udp(dst_port, payload));
        f
    }

    /// An Ethernet frame with IPv6 and UDP, or a fragment header before it when `fragment`.
    pub(crate) fn ipv6(src: [u8; 16], dst_port: u16, payload: &[u8], fragment: bool) -> Vec<u8> {
        let mut f = eth(0x86dd, false);
        let mut l4 = Vec::new();
        if fragment {
            l4.extend_from_slice(&[17, 0, 0, 1, 0, 0, 0, 7]);
        }
        l4.extend_from_slice(&udp(dst_port, payload));
        f.extend_from_slice(&[0x60, 0, 0, 0]);
        f.extend_from_slice(&u16::try_from(l4.len()).expect("fits").to_be_bytes());
        f.push(if fragment { 44 } else { 17 });
        f.push(64);
        f.extend_from_slice(&src);
        f.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        f.extend_from_slice(&l4);
        f
    }
}

const SRC6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];

#[test]
fn ipv4_udp_is_found_with_and_without_header_options() {
    for options in [0, 4, 40] {
        let f = build::ipv4([10, 0, 0, 7], 69, b"\0\x01f\0octet\0", options);
        let Frame::Udp(u) = parse_frame(&f[..]) else {
            panic!("options {options}: not parsed as UDP")
        };
        assert_eq!(u.dst_port, 69);
        assert_eq!(
            u.source,
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 7],
            "IPv4 source as IPv4-mapped IPv6"
        );
        assert_eq!(
            &f[u.payload_offset..u.payload_offset + u.payload_len],
            b"\0\x01f\0octet\0"
        );
    }
}

#[test]
fn a_vlan_tag_is_skipped() {
    let mut f = build::ipv4([10, 0, 0, 7], 69, b"abc", 0);
    let tagged: Vec<u8> = build::eth(0x0800, true)
        .into_iter()
        .chain(f.split_off(14))
        .collect();
    let Frame::Udp(u) = parse_frame(&tagged[..]) else {
        panic!("a tagged frame must parse")
    };
    assert_eq!(
        (u.dst_port, u.payload_offset, u.payload_len),
        (69, 14 + 4 + 28, 3)
    );
}

#[test]
fn ipv6_udp_is_found_and_fragments_are_told_apart() {
    let f = build::ipv6(SRC6, 6969, b"\0\x04\0\x01", false);
    let Frame::Udp(u) = parse_frame(&f[..]) else {
        panic!("IPv6 UDP must parse")
    };
    assert_eq!((u.source, u.dst_port, u.payload_len), (SRC6, 6969, 4));
    let frag = build::ipv6(SRC6, 6969, b"\0\x04\0\x01", true);
    assert_eq!(parse_frame(&frag[..]), Frame::Fragment);
}

#[test]
fn ipv4_fragments_are_told_apart() {
    for flags_offset in [0x2000, 0x0001, 0x2010, 0x1fff] {
        let f = build::ipv4_fragment([1, 2, 3, 4], 69, b"xx", 0, flags_offset);
        assert_eq!(parse_frame(&f[..]), Frame::Fragment, "{flags_offset:#x}");
    }
    let df = build::ipv4_fragment([1, 2, 3, 4], 69, b"xx", 0, 0x4000);
    assert!(
        matches!(parse_frame(&df[..]), Frame::Udp(_)),
        "DF alone is whole"
    );
}

#[test]
fn anything_else_is_other() {
    let mut tcp = build::ipv4([1, 2, 3, 4], 69, b"x", 0);
    tcp[14 + 9] = 6;
    let mut bad_udp_len = build::ipv4([1, 2, 3, 4], 69, b"xyz", 0);
    bad_udp_len[14 + 20 + 5] = 200;
    let mut short_udp_len = build::ipv4([1, 2, 3, 4], 69, b"xyz", 0);
    short_udp_len[14 + 20 + 5] = 7;
    let mut ipv6_hop_by_hop = build::ipv6(SRC6, 69, b"x", false);
    ipv6_hop_by_hop[14 + 6] = 0;
    let mut bad_ihl = build::ipv4([1, 2, 3, 4], 69, b"x", 0);
    bad_ihl[14] = 0x44;
    let truncated = build::ipv4([1, 2, 3, 4], 69, b"x", 0)[..30].to_vec();
    let cases: [(&str, &[u8]); 8] = [
        ("empty", b""),
        ("ARP", &build::eth(0x0806, false)),
        ("TCP", &tcp),
        ("UDP length past the frame", &bad_udp_len),
        ("UDP length under its header", &short_udp_len),
        ("IPv6 hop-by-hop header", &ipv6_hop_by_hop),
        ("IHL under 20", &bad_ihl),
        ("truncated", &truncated),
    ];
    for (what, f) in cases {
        assert_eq!(parse_frame(f), Frame::Other, "{what}");
    }
}

proptest::proptest! {
    #[test]
    fn never_panics_and_payloads_stay_inside(f in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
        if let Frame::Udp(u) = parse_frame(&f[..]) {
            proptest::prop_assert!(u.payload_offset + u.payload_len <= f.len());
        }
    }
}
