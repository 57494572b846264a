//! Fuzzes the XDP frame parser and decision, as the userspace twin of the eBPF program runs
//! them (`tftp_ebpf_common::{frame, xdp}`), on raw frames and on frames built around a fuzzed
//! payload (VLAN tag, IPv4 with options, IPv6 behind extension headers). Invariants:
//! - a frame built well-formed parses to exactly the UDP datagram put in it;
//! - whatever the parser reports lies inside the frame and matches the UDP header there;
//! - the decision counts a frame under a reason of its kind (whole, extension-header,
//!   fragment), denies a denied source, and for a whole datagram agrees with the socket
//!   rules (`classify_request`, `classify_transfer`, `classify_single_port`) applied to the
//!   UDP payload alone, so the XDP and socket-filter paths keep the same datagrams.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use tftp_ebpf_common::frame::{Frame, MAX_EXT_HEADERS, parse_frame};
use tftp_ebpf_common::{
    Reason, Verdict, XdpConfig, classify_request, classify_single_port, classify_transfer, decide,
};

#[derive(Debug, Arbitrary)]
enum Shape {
    /// The bytes as they are.
    Raw,
    /// Ethernet (maybe VLAN), IPv4 with `options` 4-byte words of options, UDP.
    V4 { vlan: bool, options: u8 },
    /// Ethernet (maybe VLAN), IPv6, hop-by-hop / destination-options headers of the given
    /// lengths (8-octet units past the first 8), UDP.
    V6 { vlan: bool, ext: Vec<u8> },
}

#[derive(Debug, Arbitrary)]
struct Input {
    shape: Shape,
    source: [u8; 16],
    dst_port: u16,
    /// Bit 0: the port is a listening port; 1: in the transfer range; 2: single-port mode.
    ports: u8,
    max_blksize: u16,
    rate_limited: bool,
    denied: bool,
    within_rate: bool,
    bytes: Vec<u8>,
}

const ETH_HEADER_LEN: usize = 14;

/// The frame, and for a built one the offset of its UDP payload and how many extension
/// headers precede the UDP header.
fn build(input: &Input) -> (Vec<u8>, Option<(usize, u8)>) {
    let (vlan, ethertype) = match &input.shape {
        Shape::Raw => return (input.bytes.clone(), None),
        Shape::V4 { vlan, .. } => (*vlan, 0x0800u16),
        Shape::V6 { vlan, .. } => (*vlan, 0x86dd),
    };
    let mut f = vec![0x02; 12];
    if vlan {
        f.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    let l3 = f.len();
    let udp_len = 8 + input.bytes.len();
    let mut udp = vec![0x30, 0x39];
    udp.extend_from_slice(&input.dst_port.to_be_bytes());
    udp.extend_from_slice(&(udp_len as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(&input.bytes);
    let ext_count = match &input.shape {
        Shape::V4 { options, .. } => {
            let words = usize::from(options % 11);
            let ihl = 5 + words;
            let total = ihl * 4 + udp_len;
            f.push(0x40 | ihl as u8);
            f.push(0);
            f.extend_from_slice(&(total as u16).to_be_bytes());
            f.extend_from_slice(&[0, 1, 0x40, 0, 64, 17, 0, 0]); // id, DF, TTL, UDP
            f.extend_from_slice(&input.source[12..]);
            f.extend_from_slice(&[192, 0, 2, 1]);
            f.extend(std::iter::repeat_n(1u8, words * 4)); // NOP options
            0
        }
        Shape::V6 { ext, .. } => {
            let ext: Vec<u8> = ext.iter().take(MAX_EXT_HEADERS).map(|l| l % 4).collect();
            let ext_bytes: usize = ext.iter().map(|l| (usize::from(*l) + 1) * 8).sum();
            let first = if ext.is_empty() { 17 } else { 0 }; // UDP, or hop-by-hop
            f.extend_from_slice(&[0x60, 0, 0, 0]);
            f.extend_from_slice(&((ext_bytes + udp_len) as u16).to_be_bytes());
            f.extend_from_slice(&[first, 64]);
            f.extend_from_slice(&input.source);
            f.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
            f.extend_from_slice(&[0; 12]);
            for (i, len) in ext.iter().enumerate() {
                let next = if i + 1 == ext.len() { 17 } else { 60 }; // UDP, or dest-opts
                f.extend_from_slice(&[next, *len]);
                f.extend(std::iter::repeat_n(0u8, (usize::from(*len) + 1) * 8 - 2));
            }
            ext.len() as u8
        }
        Shape::Raw => unreachable!("returned above"),
    };
    debug_assert!(l3 >= ETH_HEADER_LEN);
    f.extend_from_slice(&udp);
    let payload_offset = f.len() - input.bytes.len();
    (f, Some((payload_offset, ext_count)))
}

fn u16_at(f: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([f[at], f[at + 1]])
}

fuzz_target!(|input: Input| {
    // A UDP length is 16 bits: a payload past it cannot be built well-formed.
    if input.bytes.len() > 1400 {
        return;
    }
    let (frame, built) = build(&input);
    let parsed = parse_frame(&frame[..]);
    if let Some((payload_offset, ext_headers)) = built {
        let Frame::Udp(udp) = parsed else {
            panic!("a well-formed frame parsed as {parsed:?}");
        };
        assert_eq!(
            udp.payload_offset, payload_offset,
            "payload found where put"
        );
        assert_eq!(udp.payload_len, input.bytes.len(), "payload length");
        assert_eq!(udp.dst_port, input.dst_port, "port");
        assert_eq!(udp.ext_headers, ext_headers, "extension headers walked");
        let want_source = match input.shape {
            Shape::V4 { .. } => {
                let mut s = [0u8; 16];
                s[10] = 0xff;
                s[11] = 0xff;
                s[12..].copy_from_slice(&input.source[12..]);
                s
            }
            _ => input.source,
        };
        assert_eq!(udp.source, want_source, "source address");
    }
    match parsed {
        Frame::Udp(udp) => {
            assert!(
                udp.payload_offset >= ETH_HEADER_LEN + 20 + 8,
                "past the headers"
            );
            assert!(
                udp.payload_offset + udp.payload_len <= frame.len(),
                "inside the frame"
            );
            assert_eq!(
                u16_at(&frame, udp.payload_offset - 6),
                udp.dst_port,
                "UDP port"
            );
            assert_eq!(
                usize::from(u16_at(&frame, udp.payload_offset - 4)),
                udp.payload_len + 8,
                "UDP length"
            );
            assert!(usize::from(udp.ext_headers) <= MAX_EXT_HEADERS);
        }
        Frame::Fragment(f) => {
            if f.dst_port != 0 {
                assert!(f.first, "only a first fragment has a port");
                assert!(f.payload_offset + f.payload_len <= frame.len(), "inside");
            } else {
                assert_eq!(f.payload_len, 0, "no port, no payload to judge");
            }
        }
        Frame::Other | Frame::Unparsed { .. } => {}
    }
    check_decision(&input, &frame, parsed);
});

fn check_decision(input: &Input, frame: &[u8], parsed: Frame) {
    let port = match parsed {
        Frame::Udp(u) => u.dst_port,
        Frame::Fragment(f) => f.dst_port,
        _ => input.dst_port,
    };
    let mut config = XdpConfig {
        max_blksize: u32::from(input.max_blksize),
        single_port: u32::from(input.ports & 4 != 0),
        ..XdpConfig::default()
    };
    if input.ports & 1 != 0 {
        config.listen_ports[0] = port;
    }
    if input.ports & 2 != 0 {
        config.transfer_port_first = port.saturating_sub(3);
        config.transfer_port_last = port;
    }
    if input.rate_limited {
        config.set_rate(10, 2);
    }
    let decision = decide(frame, &config, |_| input.denied, |_| input.within_rate);
    let Some(d) = decision else {
        let ours = |p: u16| {
            p != 0
                && (config.listen_ports.contains(&p)
                    || (config.transfer_port_last != 0
                        && (config.transfer_port_first..=config.transfer_port_last).contains(&p)))
        };
        match parsed {
            Frame::Other => {}
            Frame::Udp(u) => assert!(!ours(u.dst_port), "a datagram to our port is judged"),
            Frame::Fragment(f) => assert!(f.dst_port != 0 && !ours(f.dst_port)),
            Frame::Unparsed { .. } => panic!("an unparsed chain is always judged"),
        }
        return;
    };
    match parsed {
        Frame::Other => panic!("{d:?} for a frame that is not UDP"),
        Frame::Unparsed { .. } => {
            assert_eq!(d.bytes, frame.len());
            let want = if input.denied {
                Reason::ExtHeaderDenied
            } else if input.rate_limited && !input.within_rate {
                Reason::ExtHeaderRateLimited
            } else {
                Reason::ExtHeaderUnparsed
            };
            assert_eq!(d.reason, want, "unparsed chain");
        }
        Frame::Fragment(_) => {
            assert_eq!(d.bytes, frame.len());
            assert!(
                matches!(
                    d.reason,
                    Reason::FragmentPassed | Reason::FragmentDenied | Reason::FragmentRateLimited
                ),
                "{:?} for a fragment",
                d.reason
            );
            assert_eq!(
                d.reason == Reason::FragmentDenied,
                input.denied,
                "deny list"
            );
        }
        Frame::Udp(u) => {
            let payload = &frame[u.payload_offset..u.payload_offset + u.payload_len];
            assert_eq!(d.bytes, payload.len(), "a datagram counts its payload");
            let listener = config.listen_ports.contains(&u.dst_port) && u.dst_port != 0;
            let max = config.max_blksize as usize;
            let verdict = if listener && config.single_port != 0 {
                classify_single_port(payload, max)
            } else if listener {
                classify_request(payload)
            } else {
                classify_transfer(payload, max)
            };
            let is_request =
                listener && payload.len() >= 2 && payload[0] == 0 && matches!(payload[1], 1 | 2);
            let whole = if input.denied {
                Reason::Denied
            } else {
                match verdict {
                    Verdict::Drop(r) => r,
                    Verdict::Pass if is_request && input.rate_limited && !input.within_rate => {
                        Reason::RateLimited
                    }
                    Verdict::Pass => Reason::Passed,
                }
            };
            let want = match (u.ext_headers, whole) {
                (0, r) => r,
                (_, Reason::Passed) => Reason::ExtHeaderPassed,
                (_, Reason::Denied) => Reason::ExtHeaderDenied,
                (_, Reason::RateLimited) => Reason::ExtHeaderRateLimited,
                (_, r) => r,
            };
            assert_eq!(
                d.reason, want,
                "the XDP decision agrees with the socket rules"
            );
        }
    }
}
