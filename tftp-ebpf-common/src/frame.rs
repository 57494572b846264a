//! Finding the UDP datagram in an Ethernet frame, for the XDP program: one VLAN tag at most,
//! IPv4 (any header length) or IPv6 (UDP as the first next header). Anything else, including
//! IPv6 extension headers other than a fragment header, is `Other` and passes untouched: the
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
const IPV6_FRAGMENT: u8 = 44;
const IPV6_HEADER_LEN: usize = 40;
const UDP_HEADER_LEN: usize = 8;

/// What a frame holds, as far as the filter cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// Not a UDP datagram this parser reads.
    Other,
    /// A UDP fragment (IPv4 with MF or an offset, or IPv6 with a fragment header).
    Fragment,
    /// A whole UDP datagram.
    Udp(Udp),
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
}

fn u16_at<F: Datagram + ?Sized>(f: &F, at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([f.byte(at)?, f.byte(at + 1)?]))
}

/// Reads the frame's headers. Truncated or inconsistent headers give `Other`: the kernel's
/// stack drops those itself.
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
    let mut source = [0u8; 16];
    let l4 = match ethertype {
        ETH_P_IPV4 => {
            let Some(b0) = f.byte(l3) else {
                return Frame::Other;
            };
            let ihl = usize::from(b0 & 0x0f) * 4;
            if b0 >> 4 != 4 || ihl < 20 || f.byte(l3 + 9) != Some(IPPROTO_UDP) {
                return Frame::Other;
            }
            let Some(flags_offset) = u16_at(f, l3 + 6) else {
                return Frame::Other;
            };
            // MF set, or a fragment offset: one piece of a datagram.
            if flags_offset & 0x3fff != 0 {
                return Frame::Fragment;
            }
            source[10] = 0xff;
            source[11] = 0xff;
            let mut i = 0;
            while i < 4 {
                let Some(b) = f.byte(l3 + 12 + i) else {
                    return Frame::Other;
                };
                source[12 + i] = b;
                i += 1;
            }
            l3 + ihl
        }
        ETH_P_IPV6 => {
            match f.byte(l3 + 6) {
                Some(IPPROTO_UDP) => {}
                Some(IPV6_FRAGMENT) if f.byte(l3 + IPV6_HEADER_LEN) == Some(IPPROTO_UDP) => {
                    return Frame::Fragment;
                }
                _ => return Frame::Other,
            }
            let mut i = 0;
            while i < 16 {
                let Some(b) = f.byte(l3 + 8 + i) else {
                    return Frame::Other;
                };
                source[i] = b;
                i += 1;
            }
            l3 + IPV6_HEADER_LEN
        }
        _ => return Frame::Other,
    };
    let (Some(dst_port), Some(udp_len)) = (u16_at(f, l4 + 2), u16_at(f, l4 + 4)) else {
        return Frame::Other;
    };
    let udp_len = usize::from(udp_len);
    let payload_offset = l4 + UDP_HEADER_LEN;
    // A UDP length that disagrees with the frame (a jumbogram's 0 included) is the stack's
    // to judge.
    if udp_len < UDP_HEADER_LEN || l4 + udp_len > f.len() {
        return Frame::Other;
    }
    Frame::Udp(Udp {
        source,
        dst_port,
        payload_offset,
        payload_len: udp_len - UDP_HEADER_LEN,
    })
}

#[cfg(test)]
pub(crate) mod tests;
