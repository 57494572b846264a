//! The path MTU towards a client (Linux: `IP_MTU` / `IPV6_MTU` on a socket connected to it,
//! which is the route's MTU or a smaller one the kernel learned), and the largest block that
//! fits in it without IP fragmentation. Fragmented blocks are lost whole on networks that drop
//! fragments, and some PXE ROMs cannot reassemble them at all.

use std::io;
use std::net::SocketAddr;

/// The path MTU to `peer`, or `None` where the platform cannot say.
pub fn path_mtu(peer: SocketAddr) -> io::Result<Option<u32>> {
    #[cfg(linux)]
    {
        Ok(u32::try_from(probe::mtu(peer)?).ok())
    }
    #[cfg(not(linux))]
    {
        let _ = peer;
        Ok(None)
    }
}

/// One socket per address family, kept for route lookups: connecting a UDP socket picks the
/// route (no datagram is sent) and `IP_MTU` reads that route's MTU. A socket made, bound and
/// closed per request cost ~20 µs on the test VM against ~4 µs to re-connect a kept one
/// (`connect` + `getsockopt`), which every transfer start paid. The kept socket is connected
/// to the last client asked about, so it could receive that client's datagrams: a classic BPF
/// filter that drops everything keeps its receive queue empty.
#[cfg(linux)]
mod probe {
    use std::io;
    use std::net::{SocketAddr, UdpSocket};
    use std::sync::{Mutex, PoisonError};

    static V4: Mutex<Option<UdpSocket>> = Mutex::new(None);
    static V6: Mutex<Option<UdpSocket>> = Mutex::new(None);

    /// `BPF_RET | BPF_K` with k = 0: keep no byte, that is, drop the datagram.
    const DROP_ALL: u16 = 0x06;

    pub(super) fn mtu(peer: SocketAddr) -> io::Result<i32> {
        let slot = if peer.is_ipv4() { &V4 } else { &V6 };
        let mut kept = slot.lock().unwrap_or_else(PoisonError::into_inner);
        let socket = match kept.take() {
            Some(s) => s,
            None => new_probe(peer)?,
        };
        let mtu = socket.connect(peer).and_then(|()| match peer {
            SocketAddr::V4(_) => Ok(nix::sys::socket::getsockopt(
                &socket,
                nix::sys::socket::sockopt::IpMtu,
            )?),
            SocketAddr::V6(_) => super::ipv6_mtu(&socket),
        });
        // Kept whatever the answer: a refused connect (no route) leaves the socket as it was.
        *kept = Some(socket);
        mtu
    }

    fn new_probe(peer: SocketAddr) -> io::Result<UdpSocket> {
        let any = super::super::socket::unspecified_like(peer);
        let socket = UdpSocket::bind(SocketAddr::new(any, 0))?;
        socket2::SockRef::from(&socket)
            .attach_filter(&[socket2::SockFilter::new(DROP_ALL, 0, 0, 0)])?;
        Ok(socket)
    }

    /// The kept socket of `peer`'s family, for tests.
    #[cfg(test)]
    pub(super) fn with_kept<T>(peer: SocketAddr, f: impl FnOnce(&UdpSocket) -> T) -> Option<T> {
        let slot = if peer.is_ipv4() { &V4 } else { &V6 };
        slot.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(f)
    }
}

/// The largest TFTP block that fits one IP packet of `mtu` bytes to `peer`.
pub fn max_block(mtu: u32, peer: SocketAddr) -> u32 {
    let ip_header = if peer.is_ipv4() { 20 } else { 40 };
    mtu.saturating_sub(ip_header + 8 + 4)
}

#[cfg(linux)]
fn ipv6_mtu(s: &std::net::UdpSocket) -> io::Result<i32> {
    use std::os::fd::AsRawFd;

    use nix::libc;
    let mut mtu: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    #[expect(unsafe_code, reason = "IPV6_MTU has no safe wrapper; see SAFETY")]
    // SAFETY: the fd is open for the borrow; `mtu` is a writable c_int and `len` its size.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_IPV6,
            libc::IPV6_MTU,
            (&raw mut mtu).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(mtu)
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_sizes_leave_room_for_the_headers() {
        let v4: SocketAddr = "192.0.2.1:69".parse().expect("addr");
        let v6: SocketAddr = "[2001:db8::1]:69".parse().expect("addr");
        assert_eq!(max_block(1500, v4), 1468);
        assert_eq!(max_block(1500, v6), 1448);
        assert_eq!(max_block(10, v4), 0);
    }

    #[cfg(linux)]
    #[test]
    fn loopback_reports_its_mtu() {
        let mtu = path_mtu("127.0.0.1:9".parse().expect("addr"))
            .expect("IP_MTU")
            .expect("Linux knows");
        let lo: u32 = std::fs::read_to_string("/sys/class/net/lo/mtu")
            .expect("lo mtu")
            .trim()
            .parse()
            .expect("a number");
        // An IP packet is at most 65535 bytes, whatever the device allows.
        assert_eq!(mtu, lo.min(65535));
    }

    #[cfg(linux)]
    #[test]
    fn the_kept_probe_socket_is_reused_and_drops_what_the_client_sends_it() {
        let client = std::net::UdpSocket::bind("127.0.0.1:0").expect("client");
        let peer = client.local_addr().expect("addr");
        path_mtu(peer).expect("first lookup").expect("Linux knows");
        let first = probe::with_kept(peer, |s| s.local_addr().expect("addr")).expect("kept");
        path_mtu(peer).expect("second lookup").expect("Linux knows");
        let second = probe::with_kept(peer, |s| s.local_addr().expect("addr")).expect("kept");
        assert_eq!(first, second, "one socket, not one per lookup");
        // Connected to the client now: what it sends there must not queue.
        client.send_to(&[0, 4, 0, 1], second).expect("send");
        std::thread::sleep(std::time::Duration::from_millis(50));
        let queued = probe::with_kept(peer, |s| {
            s.set_nonblocking(true).expect("nonblocking");
            let mut buf = [0u8; 16];
            s.recv(&mut buf).map_err(|e| e.kind())
        });
        assert_eq!(
            queued,
            Some(Err(io::ErrorKind::WouldBlock)),
            "the drop-all filter keeps the queue empty"
        );
    }
}
