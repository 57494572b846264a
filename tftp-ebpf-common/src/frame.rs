//! Finding the UDP datagram in an Ethernet frame, for the XDP program: one VLAN tag at most,
//! IPv4 (any header length) or IPv6 behind a bounded chain of extension headers. Fragments
//! and chains this parser cannot follow are told apart from whole datagrams, with their
//! source, so the deny list and the rate limit still apply to them: the Linux stack
//! reassembles fragments and walks any chain, so passing them unread would let an attacker
//! walk around both. Anything that is certainly not UDP is `Other` and passes untouched: the
//! program must never break traffic it does not understand.
//!
//! Written over the same byte accessor as the rules, so it runs on a slice in tests and on
//! the packet in the kernel.

use crate::rules::Datagram;

const ETH_HEADER_LEN: usize = 14;
const VLAN_TAG_LEN: usize = 4;
const ETH_P_IPV4: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const IPPROTO_UDP: u8 = 17;
const IPV6_HEADER_LEN: usize = 40;
const UDP_HEADER_LEN: usize = 8;

/// IPv6 extension headers (RFC 8200 §4, the IANA list in RFC 7045) in the generic form:
/// next header, length in 8-octet units past the first 8.
const IPV6_HOP_BY_HOP: u8 = 0;
const IPV6_ROUTING: u8 = 43;
const IPV6_DEST_OPTS: u8 = 60;
const IPV6_MOBILITY: u8 = 135;
const IPV6_HIP: u8 = 139;
const IPV6_SHIM6: u8 = 140;
/// The fragment header: fixed 8 bytes, offset in its third and fourth.
const IPV6_FRAGMENT: u8 = 44;
/// The authentication header: its length is in 4-octet units, minus 2 (RFC 4302 §2.2).
const IPV6_AUTH: u8 = 51;

/// How many IPv6 extension headers are walked to find UDP. Real traffic carries one or two
/// (RFC 7045, RFC 9098 measures most paths dropping longer chains); the bound keeps the eBPF
/// loop verifiable. A longer chain is `Unparsed`.
pub const MAX_EXT_HEADERS: usize = 8;

/// What a frame holds, as far as the filter cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// Not UDP (or not IP): passed untouched.
    Other,
    /// A piece of a fragmented UDP datagram (IPv4 with MF or an offset, or IPv6 with a
    /// fragment header).
    Fragment(Fragment),
    /// A whole UDP datagram.
    Udp(Udp),
    /// IPv6 whose extension-header chain does not reach a UDP header within
    /// [`MAX_EXT_HEADERS`], or is cut short: where it goes cannot be known here.
    Unparsed {
        /// The source address (from the fixed header).
        source: [u8; 16],
    },
}

/// A UDP datagram's addressing and where its payload lies in the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Udp {
    /// The source address, IPv4 as IPv4-mapped IPv6 (`::ffff:a.b.c.d`).
    pub source: [u8; 16],
    /// Destination port.
    pub dst_port: u16,
    /// Offset of the UDP payload in the frame.
    pub payload_offset: usize,
    /// Length of the UDP payload, from the UDP header (checked against the frame).
    pub payload_len: usize,
    /// IPv6 extension headers walked before the UDP header (0 for IPv4).
    pub ext_headers: u8,
}

/// One fragment of a UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// The source address, as in [`Udp::source`]: every fragment carries it.
    pub source: [u8; 16],
    /// Whether this is the first fragment (offset 0), the only one with the UDP header.
    pub first: bool,
    /// The first fragment's destination port when its UDP header is inside it, else 0 (a
    /// reserved port no server listens on). Not an `Option`: the eBPF verifier refuses the
    /// undefined payload bytes LLVM copies along with a `None`.
    pub dst_port: u16,
    /// Offset in the frame of the part of the UDP payload this fragment holds (first only).
    pub payload_offset: usize,
    /// How many payload bytes it holds (0 for a later fragment).
    pub payload_len: usize,
}

fn u16_at<F: Datagram + ?Sized>(f: &F, at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([f.byte(at)?, f.byte(at + 1)?]))
}

/// Copies `n` address bytes at `at` into the end of `out`: the last 4 (IPv4) or all 16.
fn read_source<F: Datagram + ?Sized>(f: &F, at: usize, out: &mut [u8; 16], n: usize) -> bool {
    let mut i = 0;
    while i < n {
        let Some(b) = f.byte(at + i) else {
            return false;
        };
        out[16 - n + i] = b;
        i += 1;
    }
    true
}

/// Reads the frame's headers. Truncated or inconsistent headers of a whole datagram give
/// `Other`: the kernel's stack drops those itself.
pub fn parse_frame<F: Datagram + ?Sized>(f: &F) -> Frame {
    let Some(mut ethertype) = u16_at(f, 12) else {
        return Frame::Other;
    };
    let mut l3 = ETH_HEADER_LEN;
    if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
        let Some(inner) = u16_at(f, l3 + 2) else {
            return Frame::Other;
        };
        ethertype = inner;
        l3 += VLAN_TAG_LEN;
    }
    match ethertype {
        ETH_P_IPV4 => parse_ipv4(f, l3),
        ETH_P_IPV6 => parse_ipv6(f, l3),
        _ => Frame::Other,
    }
}

fn parse_ipv4<F: Datagram + ?Sized>(f: &F, l3: usize) -> Frame {
    let Some(b0) = f.byte(l3) else {
        return Frame::Other;
    };
    let ihl = usize::from(b0 & 0x0f) * 4;
    if b0 >> 4 != 4 || ihl < 20 || f.byte(l3 + 9) != Some(IPPROTO_UDP) {
        return Frame::Other;
    }
    let (Some(total_len), Some(flags_offset)) = (u16_at(f, l3 + 2), u16_at(f, l3 + 6)) else {
        return Frame::Other;
    };
    let mut source = [0u8; 16];
    source[10] = 0xff;
    source[11] = 0xff;
    if !read_source(f, l3 + 12, &mut source, 4) {
        return Frame::Other;
    }
    let l4 = l3 + ihl;
    // MF set, or a fragment offset: one piece of a datagram.
    if flags_offset & 0x3fff != 0 {
        let first = flags_offset & 0x1fff == 0;
        // The IP length, not the frame's: Ethernet pads short frames.
        let end = l3 + usize::from(total_len);
        return fragment(f, source, first, l4, end);
    }
    whole(f, source, l4, 0)
}

fn parse_ipv6<F: Datagram + ?Sized>(f: &F, l3: usize) -> Frame {
    let (Some(mut next), Some(payload_len)) = (f.byte(l3 + 6), u16_at(f, l3 + 4)) else {
        return Frame::Other;
    };
    let mut source = [0u8; 16];
    if !read_source(f, l3 + 8, &mut source, 16) {
        return Frame::Other;
    }
    let end = l3 + IPV6_HEADER_LEN + usize::from(payload_len);
    let mut at = l3 + IPV6_HEADER_LEN;
    let mut first_fragment = false;
    let mut walked = 0;
    while walked < MAX_EXT_HEADERS && next != IPPROTO_UDP {
        let (Some(following), Some(len)) = (f.byte(at), f.byte(at + 1)) else {
            // Cut short: the stack will drop it, but say so rather than call it `Other`.
            return Frame::Unparsed { source };
        };
        let len = usize::from(len);
        match next {
            IPV6_HOP_BY_HOP | IPV6_ROUTING | IPV6_DEST_OPTS | IPV6_MOBILITY | IPV6_HIP
            | IPV6_SHIM6 => at += (len + 1) * 8,
            IPV6_AUTH => at += (len + 2) * 4,
            IPV6_FRAGMENT => {
                let Some(offset) = u16_at(f, at + 2) else {
                    return Frame::Unparsed { source };
                };
                if offset & 0xfff8 != 0 {
                    // A later fragment: the rest of the chain is in the first one. Only the
                    // first fragment's next header counts (RFC 8200 §4.5); a later one that
                    // names a non-UDP protocol is taken at its word.
                    return if following == IPPROTO_UDP || is_ext_header(following) {
                        fragment(f, source, false, at + 8, end)
                    } else {
                        Frame::Other
                    };
                }
                first_fragment = true;
                at += 8;
            }
            // TCP, ICMPv6, ESP, "no next header", ...: not UDP, not ours.
            _ => return Frame::Other,
        }
        next = following;
        walked += 1;
    }
    if next != IPPROTO_UDP {
        return if first_fragment {
            // A first fragment whose chain could not be followed: a fragment all the same,
            // with no port.
            Frame::Fragment(Fragment {
                source,
                first: true,
                dst_port: 0,
                payload_offset: at,
                payload_len: 0,
            })
        } else {
            Frame::Unparsed { source }
        };
    }
    if first_fragment {
        return fragment(f, source, true, at, end);
    }
    whole(f, source, at, walked as u8)
}

fn is_ext_header(next: u8) -> bool {
    matches!(
        next,
        IPV6_HOP_BY_HOP
            | IPV6_ROUTING
            | IPV6_DEST_OPTS
            | IPV6_MOBILITY
            | IPV6_HIP
            | IPV6_SHIM6
            | IPV6_FRAGMENT
            | IPV6_AUTH
    )
}

/// A fragment whose UDP header (if first) starts at `l4`; the IP packet ends at `end`.
fn fragment<F: Datagram + ?Sized>(
    f: &F,
    source: [u8; 16],
    first: bool,
    l4: usize,
    end: usize,
) -> Frame {
    let end = if end < f.len() { end } else { f.len() };
    let payload_offset = l4 + UDP_HEADER_LEN;
    let port = if first && payload_offset <= end {
        u16_at(f, l4 + 2)
    } else {
        None
    };
    let (dst_port, payload_len) = match port {
        Some(p) => (p, end - payload_offset),
        None => (0, 0),
    };
    Frame::Fragment(Fragment {
        source,
        first,
        dst_port,
        payload_offset,
        payload_len,
    })
}

/// A whole datagram whose UDP header starts at `l4`.
fn whole<F: Datagram + ?Sized>(f: &F, source: [u8; 16], l4: usize, ext_headers: u8) -> Frame {
    let (Some(dst_port), Some(udp_len)) = (u16_at(f, l4 + 2), u16_at(f, l4 + 4)) else {
        return Frame::Other;
    };
    let udp_len = usize::from(udp_len);
    // A UDP length that disagrees with the frame (a jumbogram's 0 included) is the stack's
    // to judge.
    if udp_len < UDP_HEADER_LEN || l4 + udp_len > f.len() {
        return Frame::Other;
    }
    Frame::Udp(Udp {
        source,
        dst_port,
        payload_offset: l4 + UDP_HEADER_LEN,
        payload_len: udp_len - UDP_HEADER_LEN,
        ext_headers,
    })
}

#[cfg(test)]
pub(crate) mod tests;
