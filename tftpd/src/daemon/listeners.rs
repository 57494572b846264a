//! The listening sockets at start: bound (the IPv6 wildcard falling back to IPv4 where the
//! host has no IPv6) or adopted from systemd and grown into `SO_REUSEPORT` groups, their
//! buffers set and read back, and the open-file limit raised for the transfers to come.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tracing::{info, warn};

use crate::config::SocketConfig;
use crate::io::socket::bind_listener_group;

/// Raises the soft open-file limit to the hard one: each transfer holds a socket and a file,
/// and a boot storm of a thousand clients would hit the usual soft limit of 1024.
pub fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => info!(from = soft, to = hard, "raised the open-file limit"),
            Err(e) => warn!(soft, hard, error = %e, "could not raise the open-file limit"),
        },
        Ok(_) => {}
        Err(e) => warn!(error = %e, "could not read the open-file limit"),
    }
}

/// Binds `n` sockets on `addr` (an `SO_REUSEPORT` group when `n` > 1); the IPv6 wildcard
/// falls back to the IPv4 one on a host without IPv6, so the default `[::]:69` ("every
/// address") still works there.
pub fn bind_or_v4(addr: SocketAddr, n: usize) -> std::io::Result<Vec<std::net::UdpSocket>> {
    match bind_listener_group(addr, n) {
        Err(e) if addr.ip() == IpAddr::V6(Ipv6Addr::UNSPECIFIED) && ipv6_unavailable(&e) => {
            let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), addr.port());
            warn!(%addr, fallback = %v4, error = %e, "IPv6 is not available; listening on IPv4 only");
            bind_listener_group(v4, n)
        }
        other => other,
    }
}

/// Socket activation with `reuseport_workers` > 1: each adopted socket gets `n - 1` siblings
/// in its `SO_REUSEPORT` group, which needs `ReusePort=yes` in the .socket unit. Without it
/// the adopted sockets serve alone, and one line says why.
pub fn adopt_into_groups(adopted: Vec<std::net::UdpSocket>, n: usize) -> Vec<std::net::UdpSocket> {
    if n <= 1 {
        return adopted;
    }
    let mut all = Vec::with_capacity(adopted.len() * n);
    let mut refused = None;
    for s in adopted {
        match crate::io::socket::join_group(&s, n - 1) {
            Ok(more) => {
                all.push(s);
                all.extend(more);
            }
            Err(e) => {
                refused.get_or_insert(e);
                all.push(s);
            }
        }
    }
    if let Some(e) = refused {
        warn!(
            fastpath = "reuseport",
            error = %e,
            "performance.socket.reuseport_workers: adopted sockets without SO_REUSEPORT are \
             served by one socket each"
        );
    }
    all
}

/// Sets `performance.socket`'s buffer sizes on each listening socket and says what the
/// kernel granted (it caps them at net.core.rmem_max/wmem_max for an unprivileged process).
pub fn apply_buffers(listeners: &[std::net::UdpSocket], b: &SocketConfig) -> std::io::Result<()> {
    for l in listeners {
        crate::io::buffers::apply(l, b.recv_buffer, b.send_buffer)?;
        let got = crate::io::buffers::effective(l)?;
        // The kernel reports twice what it was asked for (half is its own bookkeeping).
        if (b.recv_buffer > 0 && got.recv < b.recv_buffer)
            || (b.send_buffer > 0 && got.send < b.send_buffer)
        {
            warn!(
                requested_recv = b.recv_buffer,
                requested_send = b.send_buffer,
                effective_recv = got.recv,
                effective_send = got.send,
                "socket buffers capped by net.core.rmem_max/wmem_max (raise them, or start as root)"
            );
        } else {
            info!(
                effective_recv = got.recv,
                effective_send = got.send,
                "socket buffers set"
            );
        }
    }
    Ok(())
}

fn ipv6_unavailable(e: &std::io::Error) -> bool {
    // EAFNOSUPPORT: no IPv6 in the kernel; EADDRNOTAVAIL: IPv6 disabled by sysctl.
    use nix::errno::Errno;
    matches!(e.raw_os_error(), Some(c) if c == Errno::EAFNOSUPPORT as i32 || c == Errno::EADDRNOTAVAIL as i32)
}
