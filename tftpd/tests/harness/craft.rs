//! Hand-made IPv6 packets, sent whole through a raw socket (`IPPROTO_RAW`: the kernel adds no
//! header of its own), for what no ordinary socket sends: chains of extension headers of any
//! length. Root only. The UDP checksum is right, so what a filter passes reaches the socket.

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};

use socket2::{Domain, Protocol, Socket, Type};

const IPPROTO_UDP: u8 = 17;
/// Destination options (RFC 8200 §4.6): accepted by every stack, ignored when only padded.
pub(crate) const DEST_OPTS: u8 = 60;

/// An IPv6 packet from `src:src_port` to `dst:dst_port` carrying `payload` in UDP, behind
/// `ext_headers` destination-options headers (8 bytes each, a PadN option inside).
pub(crate) fn ipv6_udp(
    src: Ipv6Addr,
    src_port: u16,
    dst: Ipv6Addr,
    dst_port: u16,
    ext_headers: usize,
    payload: &[u8],
) -> Vec<u8> {
    let udp_len = u16::try_from(8 + payload.len()).expect("fits");
    let mut udp = src_port.to_be_bytes().to_vec();
    udp.extend_from_slice(&dst_port.to_be_bytes());
    udp.extend_from_slice(&udp_len.to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    let sum = checksum(src, dst, &udp);
    udp[6..8].copy_from_slice(&sum.to_be_bytes());
    let mut rest = Vec::new();
    for i in 0..ext_headers {
        let next = if i + 1 == ext_headers {
            IPPROTO_UDP
        } else {
            DEST_OPTS
        };
        rest.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
    }
    rest.extend_from_slice(&udp);
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&u16::try_from(rest.len()).expect("fits").to_be_bytes());
    p.push(if ext_headers == 0 {
        IPPROTO_UDP
    } else {
        DEST_OPTS
    });
    p.push(64);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&rest);
    p
}

/// The UDP checksum over the IPv6 pseudo-header (RFC 8200 §8.1).
fn checksum(src: Ipv6Addr, dst: Ipv6Addr, udp: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            let hi = u32::from(pair[0]) << 8;
            sum += hi | pair.get(1).map_or(0, |b| u32::from(*b));
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&u32::try_from(udp.len()).expect("fits").to_be_bytes());
    add(&[0, 0, 0, IPPROTO_UDP]);
    add(udp);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    match !(sum as u16) {
        // 0 means "no checksum", which IPv6 UDP may not use (RFC 8200 §8.1).
        0 => 0xffff,
        s => s,
    }
}

/// Sends `packet` (a whole IPv6 packet) towards `dst` from the current network namespace.
pub(crate) fn send_raw_v6(packet: &[u8], dst: Ipv6Addr) {
    let s = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::from(255)))
        .expect("an IPv6 raw socket (root)");
    s.set_header_included_v6(true).expect("IPV6_HDRINCL");
    let to = SocketAddr::V6(SocketAddrV6::new(dst, 0, 0, 0));
    s.send_to(packet, &to.into())
        .expect("sending a raw IPv6 packet");
}
