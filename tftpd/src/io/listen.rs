//! A listening socket that knows which of the host's addresses each request was sent to.
//!
//! With a wildcard listener (`0.0.0.0` or `[::]`) the kernel would pick the source address of
//! replies by routing, so on a host with several addresses a client that asked address B could
//! get its DATA from address A, and strict clients (PXE ROMs among them) reject that. On Linux
//! the listener asks for `IP_PKTINFO`/`IPV6_RECVPKTINFO` and each transfer socket binds the
//! address the request arrived at. Elsewhere the listener's own address is used (exact for
//! listeners bound to a specific address, which is the advice for multi-homed BSD hosts).

use std::io;
use std::net::SocketAddr;

use tokio::net::UdpSocket;

pub use super::received::Received;

/// A listening socket.
#[derive(Debug)]
pub struct ListenSocket {
    socket: std::sync::Arc<UdpSocket>,
    local: SocketAddr,
    pktinfo: bool,
}

impl ListenSocket {
    /// Wraps a bound socket, asking the kernel for each datagram's destination where it can.
    pub fn new(socket: std::net::UdpSocket) -> io::Result<Self> {
        let local = socket.local_addr()?;
        let pktinfo = local.ip().is_unspecified() && enable_pktinfo(&socket, local);
        Ok(Self {
            socket: std::sync::Arc::new(UdpSocket::from_std(socket)?),
            local,
            pktinfo,
        })
    }

    /// The socket itself, for transfers answered from it (single-port mode).
    pub fn shared(&self) -> std::sync::Arc<UdpSocket> {
        self.socket.clone()
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Sends one datagram (an ERROR answered from the listener).
    pub async fn send_to(&self, datagram: &[u8], to: SocketAddr) -> io::Result<()> {
        self.socket.send_to(datagram, to).await.map(drop)
    }

    /// Receives one datagram with its destination address.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        if self.pktinfo {
            #[cfg(linux)]
            return self
                .socket
                .async_io(tokio::io::Interest::READABLE, || {
                    linux::recv(&self.socket, buf, self.local)
                })
                .await;
        }
        let (len, peer) = self.socket.recv_from(buf).await?;
        Ok(Received {
            len,
            peer,
            local: self.local,
        })
    }
}

/// How a listener reads, from `[performance.batching]` (looked at before every call, so a
/// reload switches it at the next receive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvMode {
    /// One `recvmsg`/`recvfrom` per datagram: the portable path.
    Single,
    /// `recvmmsg`, up to `batch` datagrams per call (Linux; else as `Single`).
    Mmsg {
        /// The most datagrams per call.
        batch: usize,
        /// The slots on huge pages (`performance.memory.huge_pages`).
        huge_pages: bool,
    },
}

/// Which system call the last receive used (the metric's `method` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvMethod {
    /// One datagram per call.
    Single,
    /// `recvmmsg`.
    Recvmmsg,
}

/// A listener's receive buffers, kept from call to call: the portable path's one 64 KiB
/// buffer, and the `recvmmsg` slots once that path is asked for.
#[derive(Debug)]
pub struct RecvBuffers {
    single: Vec<u8>,
    single_got: Option<Received>,
    #[cfg(linux)]
    mmsg: Option<crate::fastpath::mmsg::MmsgReceiver>,
    method: RecvMethod,
    /// The kernel refused `recvmmsg` at run time: the portable path from then on.
    #[cfg(linux)]
    demoted: bool,
    /// The batch and huge-page choice the slots were made with (a reload may change them).
    #[cfg(linux)]
    mmsg_made_with: Option<(usize, bool)>,
}

impl Default for RecvBuffers {
    fn default() -> Self {
        Self {
            // One byte more than the largest datagram possible, so nothing is truncated.
            single: vec![0; 65536],
            single_got: None,
            #[cfg(linux)]
            mmsg: None,
            method: RecvMethod::Single,
            #[cfg(linux)]
            demoted: false,
            #[cfg(linux)]
            mmsg_made_with: None,
        }
    }
}

impl RecvBuffers {
    /// The `i`th datagram of the last receive (`i` below what it returned), with its bytes.
    pub fn get(&self, i: usize) -> Option<(Received, &[u8])> {
        match self.method {
            RecvMethod::Single => self
                .single_got
                .filter(|_| i == 0)
                .map(|r| (r, &self.single[..r.len.min(self.single.len())])),
            #[cfg(linux)]
            RecvMethod::Recvmmsg => self.mmsg.as_ref().and_then(|m| m.get(i)),
            #[cfg(not(linux))]
            RecvMethod::Recvmmsg => None,
        }
    }

    /// The system call the last receive used.
    pub fn method(&self) -> RecvMethod {
        self.method
    }
}

impl ListenSocket {
    /// Receives what is queued, up to the batch `mode` allows (at least one datagram is
    /// waited for), into `bufs`; returns how many datagrams [`RecvBuffers::get`] now holds.
    /// `recvmmsg` refused by the kernel (ENOSYS, EINVAL) is logged once and the portable
    /// path used from then on.
    pub async fn recv_batch(&self, bufs: &mut RecvBuffers, mode: RecvMode) -> io::Result<usize> {
        #[cfg(linux)]
        if let RecvMode::Mmsg { batch, huge_pages } = mode
            && !bufs.demoted
        {
            use crate::fastpath::mmsg::MmsgReceiver;
            if bufs.mmsg.is_none() || bufs.mmsg_made_with != Some((batch, huge_pages)) {
                let m = MmsgReceiver::new(batch, huge_pages);
                if huge_pages {
                    tracing::info!(
                        fastpath = "huge_pages",
                        listen = %self.local,
                        pages = m.pages().name(),
                        "recvmmsg slots allocated (hugetlb: a reserved huge page; transparent: \
                         MADV_HUGEPAGE; normal: the kernel gave neither)"
                    );
                }
                bufs.mmsg_made_with = Some((batch, huge_pages));
                bufs.mmsg = Some(m);
            }
            let m = bufs
                .mmsg
                .get_or_insert_with(|| MmsgReceiver::new(batch, huge_pages));
            let r = self
                .socket
                .async_io(tokio::io::Interest::READABLE, || {
                    m.recv(&*self.socket, self.local, self.pktinfo)
                })
                .await;
            match r {
                Ok(n) => {
                    bufs.method = RecvMethod::Recvmmsg;
                    return Ok(n);
                }
                Err(e) if refused(&e) => {
                    tracing::warn!(
                        fastpath = "recvmmsg",
                        error = %e,
                        listen = %self.local,
                        "the kernel refused recvmmsg; this listener reads one datagram per call"
                    );
                    bufs.demoted = true;
                    bufs.mmsg = None;
                }
                Err(e) => return Err(e),
            }
        }
        #[cfg(not(linux))]
        let _ = mode;
        let r = self.recv(&mut bufs.single).await?;
        bufs.single_got = Some(r);
        bufs.method = RecvMethod::Single;
        Ok(1)
    }
}

/// Errors that mean "this kernel (or its seccomp profile) will not do recvmmsg", as opposed
/// to a failed receive.
#[cfg(linux)]
fn refused(e: &io::Error) -> bool {
    use nix::errno::Errno;
    matches!(e.raw_os_error(), Some(c) if [Errno::ENOSYS, Errno::EINVAL, Errno::EOPNOTSUPP, Errno::EPERM]
        .iter()
        .any(|x| *x as i32 == c))
}

#[cfg(linux)]
fn enable_pktinfo(socket: &std::net::UdpSocket, local: SocketAddr) -> bool {
    use nix::sys::socket::{setsockopt, sockopt};
    let v4 = setsockopt(socket, sockopt::Ipv4PacketInfo, &true);
    let ok = match local {
        SocketAddr::V4(_) => v4.is_ok(),
        // A dual-stack socket reports IPv6 packets with IPV6_PKTINFO and v4-mapped ones with
        // IP_PKTINFO: both are asked for.
        SocketAddr::V6(_) => setsockopt(socket, sockopt::Ipv6RecvPacketInfo, &true).is_ok(),
    };
    if !ok {
        tracing::warn!(%local, "IP_PKTINFO unavailable: replies use the routing's source address");
    }
    ok
}

#[cfg(not(linux))]
fn enable_pktinfo(_socket: &std::net::UdpSocket, _local: SocketAddr) -> bool {
    false
}

#[cfg(linux)]
mod linux {
    use std::io::{self, IoSliceMut};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
    use std::os::fd::AsRawFd;

    use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg};

    use super::Received;
    use crate::io::received::v6_local;

    /// One non-blocking recvmsg with the packet-info control message.
    pub(super) fn recv(
        socket: &tokio::net::UdpSocket,
        buf: &mut [u8],
        listener: SocketAddr,
    ) -> io::Result<Received> {
        let mut cmsg = nix::cmsg_space!(nix::libc::in6_pktinfo, nix::libc::in_pktinfo);
        let mut iov = [IoSliceMut::new(buf)];
        let msg = recvmsg::<SockaddrStorage>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_DONTWAIT,
        )
        .map_err(io::Error::from)?;
        let peer = msg
            .address
            .and_then(|a| {
                a.as_sockaddr_in()
                    .map(|v4| SocketAddr::from(std::net::SocketAddrV4::from(*v4)))
                    .or_else(|| {
                        a.as_sockaddr_in6()
                            .map(|v6| SocketAddr::from(SocketAddrV6::from(*v6)))
                    })
            })
            .ok_or_else(|| io::Error::other("datagram without a source address"))?;
        let mut local = listener;
        for c in msg.cmsgs().map_err(io::Error::from)? {
            match c {
                ControlMessageOwned::Ipv4PacketInfo(info) => {
                    let ip = Ipv4Addr::from(u32::from_be(info.ipi_addr.s_addr));
                    local = SocketAddr::new(IpAddr::V4(ip), listener.port());
                }
                ControlMessageOwned::Ipv6PacketInfo(info) => {
                    let ip = Ipv6Addr::from(info.ipi6_addr.s6_addr);
                    local = v6_local(ip, info.ipi6_ifindex, listener.port());
                }
                _ => {}
            }
        }
        Ok(Received {
            len: msg.bytes,
            peer,
            local,
        })
    }
}

#[cfg(test)]
mod tests;
