//! The path MTU towards a client (Linux: `IP_MTU` / `IPV6_MTU` on a socket connected to it,
//! which is the route's MTU or a smaller one the kernel learned), and the largest block that
//! fits in it without IP fragmentation. Fragmented blocks are lost whole on networks that drop
//! fragments, and some PXE ROMs cannot reassemble them at all.

use std::io;
use std::net::SocketAddr;
#[cfg(target_os = "linux")]
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The path MTU to `peer`, or `None` where the platform cannot say.
pub fn path_mtu(peer: SocketAddr) -> io::Result<Option<u32>> {
    #[cfg(target_os = "linux")]
    {
        let any = match peer.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let s = std::net::UdpSocket::bind(SocketAddr::new(any, 0))?;
        // No datagram is sent: connect only picks the route.
        s.connect(peer)?;
        let mtu = match peer {
            SocketAddr::V4(_) => {
                nix::sys::socket::getsockopt(&s, nix::sys::socket::sockopt::IpMtu)?
            }
            SocketAddr::V6(_) => ipv6_mtu(&s)?,
        };
        Ok(u32::try_from(mtu).ok())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = peer;
        Ok(None)
    }
}

/// The largest TFTP block that fits one IP packet of `mtu` bytes to `peer`.
pub fn max_block(mtu: u32, peer: SocketAddr) -> u32 {
    let ip_header = if peer.is_ipv4() { 20 } else { 40 };
    mtu.saturating_sub(ip_header + 8 + 4)
}

#[cfg(target_os = "linux")]
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

    #[cfg(target_os = "linux")]
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
}
