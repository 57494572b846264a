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
        let chain = if fragment {
            vec![fragment_header(0, true)]
        } else {
            Vec::new()
        };
        ipv6_chain(src, &chain, 17, &udp(dst_port, payload))
    }

    /// An IPv6 extension header: its type and bytes (the first, its next header, is filled
    /// in by `ipv6_chain`).
    pub(crate) type Header = (u8, Vec<u8>);

    /// An extension header of the generic form (next header, length, options): `kind` with
    /// `units` 8-octet units past the first 8, filled with a PadN option.
    pub(crate) fn ext_header(kind: u8, units: u8) -> Header {
        let mut h = vec![0, units, 1, 4, 0, 0, 0, 0];
        h.extend(std::iter::repeat_n(0u8, usize::from(units) * 8));
        (kind, h)
    }

    /// An authentication header (RFC 4302): its length counts 4-octet units, minus 2.
    pub(crate) fn auth_header() -> Header {
        // 12 bytes of header + 12 of ICV: 6 units, so 4.
        let mut h = vec![0, 4, 0, 0];
        h.extend_from_slice(&[0xaa; 20]);
        (51, h)
    }

    /// A fragment header at `offset` (8-octet units), with M when `more`.
    pub(crate) fn fragment_header(offset: u16, more: bool) -> Header {
        let field = (offset << 3) | u16::from(more);
        let [hi, lo] = field.to_be_bytes();
        (44, vec![0, 0, hi, lo, 0, 0, 0, 7])
    }

    /// An Ethernet frame with IPv6, the extension headers `chain` (each header's first
    /// byte is set to the next one's type), then `upper` (the protocol of `l4`).
    pub(crate) fn ipv6_chain(src: [u8; 16], chain: &[Header], upper: u8, l4: &[u8]) -> Vec<u8> {
        let mut f = eth(0x86dd, false);
        let mut rest = Vec::new();
        for (i, (_, h)) in chain.iter().enumerate() {
            let mut h = h.clone();
            h[0] = chain.get(i + 1).map_or(upper, |n| n.0);
            rest.extend_from_slice(&h);
        }
        rest.extend_from_slice(l4);
        f.extend_from_slice(&[0x60, 0, 0, 0]);
        f.extend_from_slice(&u16::try_from(rest.len()).expect("fits").to_be_bytes());
        f.push(chain.first().map_or(upper, |h| h.0));
        f.push(64);
        f.extend_from_slice(&src);
        f.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        f.extend_from_slice(&rest);
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

const MAPPED: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4];

#[test]
fn ipv6_udp_is_found_and_fragments_are_told_apart() {
    let f = build::ipv6(SRC6, 6969, b"\0\x04\0\x01", false);
    let Frame::Udp(u) = parse_frame(&f[..]) else {
        panic!("IPv6 UDP must parse")
    };
    assert_eq!(
        (u.source, u.dst_port, u.payload_len, u.ext_headers),
        (SRC6, 6969, 4, 0)
    );
    let frag = build::ipv6(SRC6, 6969, b"\0\x04\0\x01", true);
    assert_eq!(
        parse_frame(&frag[..]),
        Frame::Fragment(Fragment {
            source: SRC6,
            first: true,
            dst_port: 6969,
            payload_offset: 14 + 40 + 8 + 8,
            payload_len: 4,
        }),
        "a first fragment holds the UDP header"
    );
}

#[test]
fn ipv6_later_fragments_carry_only_the_source() {
    for upper in [17, 60] {
        let f = build::ipv6_chain(SRC6, &[build::fragment_header(185, false)], upper, b"tail");
        assert_eq!(
            parse_frame(&f[..]),
            Frame::Fragment(Fragment {
                source: SRC6,
                first: false,
                dst_port: 0,
                payload_offset: 14 + 40 + 8 + 8,
                payload_len: 0,
            }),
            "next header {upper}"
        );
    }
    let tcp = build::ipv6_chain(SRC6, &[build::fragment_header(185, true)], 6, b"tail");
    assert_eq!(
        parse_frame(&tcp[..]),
        Frame::Other,
        "a TCP fragment is not ours"
    );
}

#[test]
fn ipv6_extension_headers_are_walked_to_udp() {
    let udp = build::udp(69, b"\0\x01f\0octet\0");
    let chains: [(&str, Vec<build::Header>); 4] = [
        ("destination options", vec![build::ext_header(60, 0)]),
        (
            "hop-by-hop, routing, destination options",
            vec![
                build::ext_header(0, 1),
                build::ext_header(43, 0),
                build::ext_header(60, 2),
            ],
        ),
        ("authentication header", vec![build::auth_header()]),
        (
            "the bound exactly",
            (0..MAX_EXT_HEADERS)
                .map(|_| build::ext_header(60, 0))
                .collect(),
        ),
    ];
    for (what, chain) in chains {
        let f = build::ipv6_chain(SRC6, &chain, 17, &udp);
        let Frame::Udp(u) = parse_frame(&f[..]) else {
            panic!("{what}: UDP not found")
        };
        assert_eq!(u.ext_headers as usize, chain.len(), "{what}");
        assert_eq!(u.dst_port, 69, "{what}");
        assert_eq!(
            &f[u.payload_offset..u.payload_offset + u.payload_len],
            b"\0\x01f\0octet\0",
            "{what}"
        );
    }
    // Destination options after a first fragment's header: still a first fragment, port known.
    let f = build::ipv6_chain(
        SRC6,
        &[build::fragment_header(0, true), build::ext_header(60, 0)],
        17,
        &udp,
    );
    assert!(
        matches!(
            parse_frame(&f[..]),
            Frame::Fragment(Fragment {
                first: true,
                dst_port: 69,
                ..
            })
        ),
        "a first fragment with options behind its fragment header"
    );
}

#[test]
fn chains_past_the_bound_or_cut_short_are_unparsed_and_other_protocols_other() {
    let udp = build::udp(69, b"\0\x01f\0octet\0");
    let long: Vec<_> = (0..=MAX_EXT_HEADERS)
        .map(|_| build::ext_header(60, 0))
        .collect();
    let f = build::ipv6_chain(SRC6, &long, 17, &udp);
    assert_eq!(
        parse_frame(&f[..]),
        Frame::Unparsed { source: SRC6 },
        "one past the bound"
    );
    let mut cut = build::ipv6_chain(SRC6, &[build::ext_header(60, 4)], 17, &udp);
    cut.truncate(14 + 40 + 1);
    assert_eq!(
        parse_frame(&cut[..]),
        Frame::Unparsed { source: SRC6 },
        "cut short"
    );
    let mut long_first = vec![build::fragment_header(0, true)];
    long_first.extend(long.iter().cloned());
    let f = build::ipv6_chain(SRC6, &long_first, 17, &udp);
    assert!(
        matches!(
            parse_frame(&f[..]),
            Frame::Fragment(Fragment {
                first: true,
                dst_port: 0,
                ..
            })
        ),
        "a first fragment whose chain is too long is a fragment of unknown port"
    );
    for upper in [6, 58, 50, 59] {
        let f = build::ipv6_chain(SRC6, &[build::ext_header(60, 0)], upper, b"12345678");
        assert_eq!(parse_frame(&f[..]), Frame::Other, "next header {upper}");
    }
}

#[test]
fn ipv4_fragments_are_told_apart() {
    for flags_offset in [0x0001, 0x2010, 0x1fff] {
        let f = build::ipv4_fragment([1, 2, 3, 4], 69, b"xx", 0, flags_offset);
        assert_eq!(
            parse_frame(&f[..]),
            Frame::Fragment(Fragment {
                source: MAPPED,
                first: false,
                dst_port: 0,
                payload_offset: 14 + 20 + 8,
                payload_len: 0,
            }),
            "{flags_offset:#x}"
        );
    }
    // A first fragment (MF, offset 0), padded the way Ethernet pads short frames.
    let mut first = build::ipv4_fragment([1, 2, 3, 4], 69, b"xx", 0, 0x2000);
    first.extend_from_slice(&[0; 16]);
    assert_eq!(
        parse_frame(&first[..]),
        Frame::Fragment(Fragment {
            source: MAPPED,
            first: true,
            dst_port: 69,
            payload_offset: 14 + 20 + 8,
            payload_len: 2,
        }),
        "the IP length, not the padded frame, bounds the payload"
    );
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
    let mut ipv6_tcp = build::ipv6(SRC6, 69, b"x", false);
    ipv6_tcp[14 + 6] = 6;
    let mut bad_ihl = build::ipv4([1, 2, 3, 4], 69, b"x", 0);
    bad_ihl[14] = 0x44;
    let truncated = build::ipv4([1, 2, 3, 4], 69, b"x", 0)[..30].to_vec();
    let cases: [(&str, &[u8]); 8] = [
        ("empty", b""),
        ("ARP", &build::eth(0x0806, false)),
        ("TCP", &tcp),
        ("UDP length past the frame", &bad_udp_len),
        ("UDP length under its header", &short_udp_len),
        ("IPv6 TCP", &ipv6_tcp),
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
        match parse_frame(&f[..]) {
            Frame::Udp(u) => proptest::prop_assert!(u.payload_offset + u.payload_len <= f.len()),
            Frame::Fragment(g) if g.payload_len > 0 => {
                proptest::prop_assert!(g.payload_offset + g.payload_len <= f.len());
            }
            _ => {}
        }
    }
}
