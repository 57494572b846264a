//! What a listener knows of one request datagram, whichever receive call took it (one
//! `recvmsg` with packet info in `listen.rs`, or a slot of a `recvmmsg` batch in
//! `fastpath/mmsg.rs`): its own file, so neither of those depends on the other.

use std::net::SocketAddr;

/// One received request datagram.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    /// Bytes received.
    pub len: usize,
    /// The client.
    pub peer: SocketAddr,
    /// The address the client sent to (the listener's port), for the transfer socket to bind.
    pub local: SocketAddr,
}

/// The address to bind for a request that arrived at `ip` on interface `ifindex`: link-local
/// addresses need the interface as their scope, and v4-mapped ones are plain IPv4.
#[cfg(linux)]
pub fn v6_local(ip: std::net::Ipv6Addr, ifindex: u32, port: u16) -> SocketAddr {
    use std::net::{IpAddr, SocketAddrV6};
    let scope = if ip.is_unicast_link_local() {
        ifindex
    } else {
        0
    };
    match ip.to_ipv4_mapped() {
        Some(v4) => SocketAddr::new(IpAddr::V4(v4), port),
        None => SocketAddr::V6(SocketAddrV6::new(ip, port, 0, scope)),
    }
}
