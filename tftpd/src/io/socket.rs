//! Binding datagram sockets: listeners (dual-stack where asked, alone or in an
//! `SO_REUSEPORT` group) and the ports of per-transfer sockets (ephemeral, or from a
//! configured port range). A transfer's socket itself is [`super::transfer_socket`].

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};

/// How many random ports of a range are tried before scanning it in order.
const RANDOM_PORT_TRIES: usize = 32;

/// Binds a listening socket. `[::]` binds dual-stack (IPv4 arrives as v4-mapped addresses)
/// so one socket serves both families, as "every address" promises.
pub fn bind_listener(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    bind_one(addr)
}

/// Binds `n` listening sockets on `addr` in one `SO_REUSEPORT` group (`n` = 1: one plain
/// socket, as [`bind_listener`]). With port 0 the first socket's port is used for the rest.
/// The kernel spreads requests over the group by a hash of the client's address and port,
/// so one client's datagrams keep reaching the same socket.
pub fn bind_listener_group(addr: SocketAddr, n: usize) -> io::Result<Vec<std::net::UdpSocket>> {
    if n <= 1 {
        return Ok(vec![bind_listener(addr)?]);
    }
    let first = bind_reuseport(addr, dual_stack(addr))?;
    let mut group = join_group(&first, n - 1)?;
    group.insert(0, first);
    Ok(group)
}

/// Binds `more` sockets into the `SO_REUSEPORT` group of the bound socket `existing` (one
/// of ours, or one systemd passed with `ReusePort=yes`). Fails with `InvalidInput` when
/// `existing` has no `SO_REUSEPORT`: the kernel would refuse the address as in use.
pub fn join_group(
    existing: &std::net::UdpSocket,
    more: usize,
) -> io::Result<Vec<std::net::UdpSocket>> {
    let s = socket2::SockRef::from(existing);
    if !s.reuse_port()? {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the socket has no SO_REUSEPORT (systemd: ReusePort=yes in the .socket unit)",
        ));
    }
    let addr = existing.local_addr()?;
    let dual = addr.is_ipv6() && !s.only_v6()?;
    (0..more).map(|_| bind_reuseport(addr, dual)).collect()
}

fn dual_stack(addr: SocketAddr) -> bool {
    addr.is_ipv6() && addr.ip().is_unspecified()
}

fn bind_reuseport(addr: SocketAddr, dual: bool) -> io::Result<std::net::UdpSocket> {
    let socket = new_socket(addr)?;
    if addr.is_ipv6() {
        socket.set_only_v6(!dual)?;
    }
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// A non-blocking UDP socket for `addr`'s family. Every transfer start makes one, so the
/// flags go in with `socket(2)` where the platform takes them (socket2 sets close-on-exec
/// itself): that saves the three `fcntl` calls of setting them after.
fn new_socket(addr: SocketAddr) -> io::Result<Socket> {
    #[cfg(any(linux, bsd))]
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::DGRAM.nonblocking(),
        Some(Protocol::UDP),
    )?;
    #[cfg(not(any(linux, bsd)))]
    let socket = {
        let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        s.set_nonblocking(true)?;
        s
    };
    Ok(socket)
}

pub(super) fn bind_one(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let socket = new_socket(addr)?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        socket.set_only_v6(false)?;
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Binds a port in `lo..=hi`: random tries first (so concurrent transfers don't collide on
/// the same next port), then every port in order, so a nearly full range still works.
pub(super) fn bind_in_range(ip: IpAddr, lo: u16, hi: u16) -> io::Result<std::net::UdpSocket> {
    let random = (0..RANDOM_PORT_TRIES).map(|_| fastrand::u16(lo..=hi));
    let mut last_err = None;
    for port in random.chain(lo..=hi) {
        match bind_one(SocketAddr::new(ip, port)) {
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrInUse)))
}

/// The canonical form of a peer address: v4-mapped IPv6 becomes IPv4, so per-client limits
/// and logs see one address per client whichever socket it came in on.
pub fn canonical_ip(addr: SocketAddr) -> IpAddr {
    addr.ip().to_canonical()
}

/// The wildcard address of `addr`'s family.
pub fn unspecified_like(addr: SocketAddr) -> IpAddr {
    match addr {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

/// Binds a transfer socket on the listener's address `local` (the port replaced): from
/// `ports` when given, else an ephemeral port.
pub(super) fn bind_transfer(
    local: SocketAddr,
    ports: Option<(u16, u16)>,
) -> io::Result<std::net::UdpSocket> {
    let ip = match local.ip() {
        // A dual-stack listener must answer v4-mapped peers: keep the v6 wildcard.
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        ip => ip,
    };
    match ports {
        None => bind_one(SocketAddr::new(ip, 0)),
        Some((lo, hi)) => bind_in_range(ip, lo, hi),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reuseport_group_shares_one_port_and_stays_closed_to_others() {
        let group = bind_listener_group("127.0.0.1:0".parse().expect("addr"), 3).expect("group");
        assert_eq!(group.len(), 3, "three sockets");
        let port = group[0].local_addr().expect("addr").port();
        for s in &group {
            assert_eq!(s.local_addr().expect("addr").port(), port, "one port");
        }
        // A socket outside the group (no SO_REUSEPORT) cannot take the port.
        let err = bind_listener(SocketAddr::from(([127, 0, 0, 1], port))).expect_err("in use");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        let extra = join_group(&group[0], 1).expect("join");
        assert_eq!(extra[0].local_addr().expect("addr").port(), port);
    }

    #[test]
    fn sockets_are_made_non_blocking_and_close_on_exec() {
        use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
        let s = bind_one("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let fl = OFlag::from_bits_truncate(fcntl(&s, FcntlArg::F_GETFL).expect("F_GETFL"));
        assert!(fl.contains(OFlag::O_NONBLOCK), "{fl:?}");
        let fd = FdFlag::from_bits_truncate(fcntl(&s, FcntlArg::F_GETFD).expect("F_GETFD"));
        assert!(fd.contains(FdFlag::FD_CLOEXEC), "{fd:?}");
    }

    #[test]
    fn a_plain_socket_cannot_be_joined() {
        let plain = bind_listener("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let err = join_group(&plain, 1).expect_err("no SO_REUSEPORT");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    }

    #[test]
    fn mapped_addresses_are_canonicalised() {
        let mapped: SocketAddr = "[::ffff:10.1.2.3]:1000".parse().expect("addr");
        assert_eq!(
            canonical_ip(mapped),
            "10.1.2.3".parse::<IpAddr>().expect("ip")
        );
    }
}
