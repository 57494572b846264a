//! `recvmmsg` on listening sockets (Linux): up to `recv_batch` requests per system call, each
//! with its source address and, on wildcard listeners, the `IP_PKTINFO`/`IPV6_PKTINFO`
//! destination, exactly as the portable one-at-a-time path reports them
//! ([`crate::io::listen`]).
//!
//! Written against libc rather than nix's `recvmmsg`: nix keeps its `mmsghdr`s between calls
//! without restoring `msg_namelen` and `msg_controllen`, which the kernel overwrites with
//! what each message used, so a slot whose last message carried less control data than the
//! next one would truncate that one's pktinfo (`MSG_CTRUNC`). Here every field is reset
//! before every call.
//!
//! Measured before it was kept off by default (shared/notes/fastpath-facts.md §2 and
//! docs/adr/0017): about 0.55 µs CPU per small datagram either way on this machine.
//!
//! # Minimum kernel version
//! `recvmmsg` is Linux 2.6.33.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd};

use nix::libc;

use crate::io::received::{Received, v6_local};

/// Bytes per datagram slot: one more than the largest UDP payload, as in the portable path,
/// so nothing is truncated. The slots are one zeroed allocation that the kernel maps lazily,
/// so a batch of small requests touches one page per slot, not 64 KiB.
pub const SLOT: usize = 65536;

/// Control-message room per slot: `IP_PKTINFO` and `IPV6_PKTINFO` together (both are asked
/// for on a dual-stack socket), with room to spare.
const CMSG_ROOM: usize = 128;

/// One slot's control buffer, aligned as `cmsghdr` needs.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct CmsgBuf([u8; CMSG_ROOM]);

/// Buffers for one `recvmmsg` call, reused from call to call.
pub struct MmsgReceiver {
    data: super::hugepage::PacketMemory,
    hdrs: Vec<libc::mmsghdr>,
    iovs: Vec<libc::iovec>,
    addrs: Vec<libc::sockaddr_storage>,
    cmsgs: Vec<CmsgBuf>,
    got: Vec<Received>,
    /// The slot of each entry of `got` (a message without a usable source is skipped).
    slots: Vec<usize>,
}

impl std::fmt::Debug for MmsgReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MmsgReceiver")
            .field("batch", &self.hdrs.len())
            .field("received", &self.got.len())
            .finish()
    }
}

// SAFETY: the raw pointers inside `hdrs` and `iovs` point only into this value's own
// buffers, are rewritten before every call, and are never dereferenced outside `recv`.
unsafe impl Send for MmsgReceiver {}

impl MmsgReceiver {
    /// Buffers for batches of `batch` datagrams (at least 1), the slots on huge pages when
    /// `huge` and the kernel gives them.
    pub fn new(batch: usize, huge: bool) -> Self {
        let batch = batch.max(1);
        Self {
            data: super::hugepage::PacketMemory::new(batch * SLOT, huge),
            // SAFETY: mmsghdr, iovec and sockaddr_storage are plain C structs for which all
            // zero bytes is a valid value (null pointers, zero lengths, AF_UNSPEC).
            hdrs: vec![unsafe { zeroed() }; batch],
            // SAFETY: as above.
            iovs: vec![unsafe { zeroed() }; batch],
            // SAFETY: as above.
            addrs: vec![unsafe { zeroed() }; batch],
            cmsgs: vec![CmsgBuf([0; CMSG_ROOM]); batch],
            got: Vec::with_capacity(batch),
            slots: Vec::with_capacity(batch),
        }
    }

    /// The most datagrams one call takes.
    pub fn batch(&self) -> usize {
        self.hdrs.len()
    }

    /// What backs the slots.
    pub fn pages(&self) -> super::hugepage::PageKind {
        self.data.kind()
    }

    /// One non-blocking `recvmmsg`; returns how many datagrams arrived (at least 1), or
    /// `WouldBlock`. `listener` is the socket's bound address; `pktinfo` says whether the
    /// socket was asked for destination addresses.
    pub fn recv(
        &mut self,
        socket: &impl AsFd,
        listener: SocketAddr,
        pktinfo: bool,
    ) -> io::Result<usize> {
        self.got.clear();
        self.slots.clear();
        let batch = self.hdrs.len();
        let data = self.data.as_mut_ptr();
        for i in 0..batch {
            self.iovs[i] = libc::iovec {
                // SAFETY: i * SLOT + SLOT <= data.len() (batch * SLOT bytes were allocated).
                iov_base: unsafe { data.add(i * SLOT) }.cast(),
                iov_len: SLOT,
            };
            // The kernel overwrote last call's lengths with what each message used: restore
            // every field, not only the pointers.
            let h = &mut self.hdrs[i];
            h.msg_len = 0;
            h.msg_hdr.msg_name = (&raw mut self.addrs[i]).cast();
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_iov = &raw mut self.iovs[i];
            h.msg_hdr.msg_iovlen = 1;
            if pktinfo {
                h.msg_hdr.msg_control = (&raw mut self.cmsgs[i]).cast();
                h.msg_hdr.msg_controllen = CMSG_ROOM as _;
            } else {
                h.msg_hdr.msg_control = std::ptr::null_mut();
                h.msg_hdr.msg_controllen = 0;
            }
            h.msg_hdr.msg_flags = 0;
        }
        // SAFETY: every header points at this value's own name, iovec and control buffers,
        // sized as stated in the header, all alive for the call; `batch` is hdrs.len().
        let n = unsafe {
            libc::recvmmsg(
                socket.as_fd().as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                batch as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        for i in 0..n {
            let h = &self.hdrs[i];
            let Some(peer) = peer(&self.addrs[i], h.msg_hdr.msg_namelen) else {
                // Like the portable path's "datagram without a source address": unusable.
                continue;
            };
            let local = if pktinfo {
                destination(&h.msg_hdr, listener)
            } else {
                listener
            };
            self.got.push(Received {
                len: h.msg_len as usize,
                peer,
                local,
            });
            self.slots.push(i);
        }
        Ok(self.got.len())
    }

    /// The `i`th datagram of the last call, and its bytes.
    pub fn get(&self, i: usize) -> Option<(Received, &[u8])> {
        let r = *self.got.get(i)?;
        let start = self.slots.get(i)? * SLOT;
        Some((r, &self.data[start..start + r.len.min(SLOT)]))
    }
}

/// What one [`recv_two`] call received: how many datagrams the kernel gave (1 or 2; fewer
/// than 2 means the queue is now empty), and each one's length and source (`None` for one
/// without an IPv4 or IPv6 source, which UDP over IP never gives).
pub type Two = (usize, [Option<(usize, SocketAddr)>; 2]);

/// Up to two datagrams in one non-blocking `recvmmsg`, into `first` and then `second`: a
/// transfer's receive that also tells whether its queue is now empty, so it can stop
/// without a second call that would only say EAGAIN. `WouldBlock` when nothing is queued.
pub fn recv_two(socket: &impl AsFd, first: &mut [u8], second: &mut [u8]) -> io::Result<Two> {
    // SAFETY: all zero bytes is a valid sockaddr_storage (AF_UNSPEC).
    let mut addrs: [libc::sockaddr_storage; 2] = unsafe { zeroed() };
    let mut iovs = [
        libc::iovec {
            iov_base: first.as_mut_ptr().cast(),
            iov_len: first.len(),
        },
        libc::iovec {
            iov_base: second.as_mut_ptr().cast(),
            iov_len: second.len(),
        },
    ];
    // SAFETY: all zero bytes is a valid mmsghdr (null pointers, zero lengths).
    let mut hdrs: [libc::mmsghdr; 2] = unsafe { zeroed() };
    for (i, h) in hdrs.iter_mut().enumerate() {
        h.msg_hdr.msg_name = (&raw mut addrs[i]).cast();
        h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        h.msg_hdr.msg_iov = &raw mut iovs[i];
        h.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: both headers point at this frame's address storage and iovecs, which point
    // at the two caller buffers with their true lengths; all outlive the call.
    let n = unsafe {
        libc::recvmmsg(
            socket.as_fd().as_raw_fd(),
            hdrs.as_mut_ptr(),
            2,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    let mut got = [None, None];
    for (i, slot) in got.iter_mut().enumerate().take(n) {
        let h = &hdrs[i].msg_hdr;
        *slot = peer(&addrs[i], h.msg_namelen).map(|from| (hdrs[i].msg_len as usize, from));
    }
    Ok((n, got))
}

/// The source address the kernel wrote (`len` bytes of it), if it is IPv4 or IPv6. Public
/// for the load generator's raw responder, which reads the same kernel structures.
pub fn peer(addr: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match i32::from(addr.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, and sockaddr_storage
            // is large and aligned enough for it.
            let a = unsafe { &*std::ptr::from_ref(addr).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let a = unsafe { &*std::ptr::from_ref(addr).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// The address a datagram was sent to, from its packet-info control messages (the last one
/// wins, as in the portable path); the listener's own address when there is none.
fn destination(msg: &libc::msghdr, listener: SocketAddr) -> SocketAddr {
    let mut local = listener;
    // SAFETY: msg is a header the kernel just filled: msg_control/msg_controllen describe
    // the initialised part of this slot's control buffer.
    let mut c = unsafe { libc::CMSG_FIRSTHDR(msg) };
    while !c.is_null() {
        // SAFETY: CMSG_FIRSTHDR/CMSG_NXTHDR return null or a header inside the buffer.
        let h = unsafe { &*c };
        // SAFETY: CMSG_DATA of a header inside the buffer points at its payload.
        let payload = unsafe { libc::CMSG_DATA(c) };
        match (h.cmsg_level, h.cmsg_type) {
            (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                // SAFETY: an IP_PKTINFO payload is an in_pktinfo; it may be unaligned.
                let info = unsafe { payload.cast::<libc::in_pktinfo>().read_unaligned() };
                let ip = Ipv4Addr::from(u32::from_be(info.ipi_addr.s_addr));
                local = SocketAddr::new(IpAddr::V4(ip), listener.port());
            }
            (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                // SAFETY: an IPV6_PKTINFO payload is an in6_pktinfo; it may be unaligned.
                let info = unsafe { payload.cast::<libc::in6_pktinfo>().read_unaligned() };
                let ip = Ipv6Addr::from(info.ipi6_addr.s6_addr);
                local = v6_local(ip, info.ipi6_ifindex, listener.port());
            }
            _ => {}
        }
        // SAFETY: msg and c are as above.
        c = unsafe { libc::CMSG_NXTHDR(msg, c) };
    }
    local
}

/// Whether the kernel has `recvmmsg` (a seccomp filter or an old kernel may lack it): one
/// non-blocking call on a fresh socket must say "nothing queued", not ENOSYS.
pub fn probe() -> bool {
    let Ok(s) = std::net::UdpSocket::bind("127.0.0.1:0") else {
        return false;
    };
    let mut r = MmsgReceiver::new(1, false);
    matches!(r.recv(&s, "127.0.0.1:0".parse().expect("literal address"), false),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}
