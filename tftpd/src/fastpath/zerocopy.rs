//! `MSG_ZEROCOPY` (Linux 4.14 for UDP: 5.0): a DATA datagram is sent without the kernel
//! copying its bytes, which it then reads from our buffer until it reports, on the socket's
//! error queue, that it is done. So a buffer lent to the kernel is never reused or freed
//! before its completion arrives: the [`Tracker`] holds it until then.
//!
//! The kernel numbers zerocopy sends per socket from 0 and reports completions as ranges
//! `[ee_info, ee_data]`, often coalesced over many sends, with `SO_EE_CODE_ZEROCOPY_COPIED`
//! when it copied after all (always on loopback and veth: shared/notes/fastpath-facts.md §4).
//! `ENOBUFS` (the socket's optmem for pinned pages is used up) is sent again by copy.
//!
//! # Minimum kernel version
//! 5.0 (`MSG_ZEROCOPY` for UDP); the probe at start decides.

use std::collections::VecDeque;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd as _};

use nix::errno::Errno;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, sendto};

/// `SO_ZEROCOPY` (include/uapi/asm-generic/socket.h; the libc crate lacks it). Architectures
/// with their own numbering fail the probe and fall back.
const SO_ZEROCOPY: nix::libc::c_int = 60;
/// `SO_EE_ORIGIN_ZEROCOPY` (include/uapi/linux/errqueue.h).
const SO_EE_ORIGIN_ZEROCOPY: u8 = 5;
/// `SO_EE_CODE_ZEROCOPY_COPIED` (include/uapi/linux/errqueue.h).
const SO_EE_CODE_ZEROCOPY_COPIED: u8 = 1;

/// Buffers kept at most for reuse.
const POOL: usize = 4;

/// What the kernel reported about zerocopy sends.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Completions {
    /// Sends reported complete.
    pub completed: u64,
    /// Of those, sends the kernel copied anyway.
    pub copied: u64,
}

/// The buffers lent to the kernel by one socket's zerocopy sends, in send order.
#[derive(Debug, Default)]
pub struct Tracker {
    /// The number the kernel gives the next zerocopy send.
    next: u32,
    lent: VecDeque<Lent>,
    pool: Vec<Vec<u8>>,
    reported: Completions,
}

#[derive(Debug)]
struct Lent {
    first: u32,
    count: u32,
    done: u32,
    buf: Vec<u8>,
}

impl Tracker {
    /// Records that `sends` zerocopy sends (the next numbers in the kernel's count) were
    /// made from `buf`, which is held until all of them complete.
    pub fn lend(&mut self, buf: Vec<u8>, sends: u32) {
        if sends == 0 {
            self.give_back(buf);
            return;
        }
        self.lent.push_back(Lent {
            first: self.next,
            count: sends,
            done: 0,
            buf,
        });
        self.next = self.next.wrapping_add(sends);
    }

    /// Handles a completion of sends `lo..=hi` (the range may wrap past `u32::MAX`).
    pub fn complete(&mut self, lo: u32, hi: u32, copied: bool) {
        let span = hi.wrapping_sub(lo);
        let n = u64::from(span) + 1;
        self.reported.completed += n;
        if copied {
            self.reported.copied += n;
        }
        for l in &mut self.lent {
            for k in 0..l.count {
                if l.first.wrapping_add(k).wrapping_sub(lo) <= span {
                    l.done += 1;
                }
            }
        }
        let mut i = 0;
        while i < self.lent.len() {
            if self.lent[i].done >= self.lent[i].count {
                if let Some(l) = self.lent.remove(i) {
                    self.give_back(l.buf);
                }
            } else {
                i += 1;
            }
        }
    }

    /// An empty buffer for the next turn: a released one when there is one.
    pub fn spare(&mut self) -> Vec<u8> {
        self.pool.pop().unwrap_or_default()
    }

    /// Buffers the kernel may still be reading.
    pub fn outstanding(&self) -> usize {
        self.lent.len()
    }

    /// What the kernel reported so far.
    pub fn reported(&self) -> Completions {
        self.reported
    }

    /// Gives up on buffers whose completions never came (the socket is closing): they are
    /// leaked, never freed, since the kernel may still read them.
    pub fn abandon(&mut self) -> usize {
        let n = self.lent.len();
        for l in self.lent.drain(..) {
            std::mem::forget(l.buf);
        }
        n
    }

    fn give_back(&mut self, mut buf: Vec<u8>) {
        if self.pool.len() < POOL {
            buf.clear();
            self.pool.push(buf);
        }
    }
}

impl Drop for Tracker {
    /// However a transfer ends (even by a panic), a buffer the kernel may still read is
    /// leaked rather than freed.
    fn drop(&mut self) {
        self.abandon();
    }
}

/// What a failed zerocopy send means for the datagram and the transfer. In every case the
/// datagram is sent again by copy; the buffer was not lent (a failed send takes no number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// ENOBUFS: the socket's allowance of pinned pages (optmem) is used up for now.
    NoBuffers,
    /// EINVAL, EOPNOTSUPP: this socket or kernel does not do it; stop asking.
    Unsupported,
    /// Anything else (an ICMP error, say) would fail a copy too.
    Other,
}

impl Refusal {
    /// Classifies a send error.
    pub fn of(e: &io::Error) -> Self {
        match e.raw_os_error() {
            Some(nix::libc::ENOBUFS) => Self::NoBuffers,
            Some(nix::libc::EINVAL | nix::libc::EOPNOTSUPP) => Self::Unsupported,
            _ => Self::Other,
        }
    }
}

/// Turns `SO_ZEROCOPY` on for `socket`.
pub fn enable(socket: &impl AsFd) -> io::Result<()> {
    let one: nix::libc::c_int = 1;
    #[expect(unsafe_code, reason = "SO_ZEROCOPY has no safe wrapper; see SAFETY")]
    // SAFETY: the fd is open for the borrow; `one` is a readable c_int and the length its size.
    let rc = unsafe {
        nix::libc::setsockopt(
            socket.as_fd().as_raw_fd(),
            nix::libc::SOL_SOCKET,
            SO_ZEROCOPY,
            (&raw const one).cast(),
            size_of::<nix::libc::c_int>() as nix::libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sends `datagram` to `to` with `MSG_ZEROCOPY`; on success the caller must keep the buffer
/// until the tracker releases it.
pub fn send(socket: &impl AsFd, datagram: &[u8], to: SocketAddr) -> io::Result<()> {
    let sent = sendto(
        socket.as_fd().as_raw_fd(),
        datagram,
        &SockaddrStorage::from(to),
        MsgFlags::from_bits_retain(nix::libc::MSG_ZEROCOPY),
    )?;
    if sent == datagram.len() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "short zerocopy send",
        ))
    }
}

/// Reads every completion waiting on `socket`'s error queue into `tracker`.
pub fn drain(socket: &impl AsFd, tracker: &mut Tracker) -> io::Result<()> {
    loop {
        let mut cmsg = nix::cmsg_space!(nix::libc::sock_extended_err, nix::libc::sockaddr_in6);
        let mut iov: [IoSliceMut<'_>; 0] = [];
        let msg = match recvmsg::<SockaddrStorage>(
            socket.as_fd().as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(m) => m,
            Err(Errno::EAGAIN) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        for c in msg.cmsgs()? {
            let ee = match c {
                ControlMessageOwned::Ipv4RecvErr(ee, _)
                | ControlMessageOwned::Ipv6RecvErr(ee, _) => ee,
                _ => continue,
            };
            if ee.ee_origin == SO_EE_ORIGIN_ZEROCOPY && ee.ee_errno == 0 {
                let copied = ee.ee_code & SO_EE_CODE_ZEROCOPY_COPIED != 0;
                tracker.complete(ee.ee_info, ee.ee_data, copied);
            }
        }
    }
}

/// Whether a zerocopy send on a loopback pair is accepted and completed.
pub fn probe() -> bool {
    probe_once().unwrap_or(false)
}

fn probe_once() -> io::Result<bool> {
    let rx = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let tx = std::net::UdpSocket::bind("127.0.0.1:0")?;
    enable(&tx)?;
    let mut t = Tracker::default();
    let buf = vec![0u8, 3, 0, 1, 42];
    send(&tx, &buf, rx.local_addr()?)?;
    t.lend(buf, 1);
    for _ in 0..100 {
        drain(&tx, &mut t)?;
        if t.outstanding() == 0 {
            return Ok(true);
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    // Never completed: keep the buffer (the kernel may still hold it) and say no.
    t.abandon();
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buf(tag: u8) -> Vec<u8> {
        vec![tag; 8]
    }

    #[test]
    fn a_buffer_is_held_until_every_send_from_it_completes() {
        let mut t = Tracker::default();
        t.lend(buf(1), 3); // sends 0, 1, 2
        t.lend(buf(2), 2); // sends 3, 4
        t.complete(0, 1, false);
        assert_eq!(t.outstanding(), 2, "send 2 still outstanding");
        t.complete(2, 2, false);
        assert_eq!(t.outstanding(), 1, "the first buffer is free");
        assert_eq!(t.spare().capacity(), 8, "and comes back for reuse");
        t.complete(3, 4, true);
        assert_eq!(t.outstanding(), 0);
        assert_eq!(
            t.reported(),
            Completions {
                completed: 5,
                copied: 2
            }
        );
    }

    #[test]
    fn one_coalesced_range_can_free_many_buffers_and_out_of_order_ones() {
        let mut t = Tracker::default();
        for i in 0..4 {
            t.lend(buf(i), 2);
        }
        t.complete(4, 5, false); // the third buffer first
        assert_eq!(t.outstanding(), 3);
        t.complete(0, 7, true); // everything, coalesced (4 and 5 reported twice)
        assert_eq!(t.outstanding(), 0);
    }

    #[test]
    fn ranges_wrap_past_u32_max() {
        let mut t = Tracker::default();
        t.next = u32::MAX - 1;
        t.lend(buf(1), 4); // MAX-1, MAX, 0, 1
        t.complete(u32::MAX - 1, 0, false);
        assert_eq!(t.outstanding(), 1, "send 1 is outstanding");
        t.complete(1, 1, false);
        assert_eq!(t.outstanding(), 0);
        assert_eq!(t.reported().completed, 4);
    }

    #[test]
    fn zero_sends_lend_nothing_and_abandoned_buffers_are_not_pooled() {
        let mut t = Tracker::default();
        t.lend(buf(1), 0);
        assert_eq!(t.outstanding(), 0);
        t.lend(buf(2), 1);
        assert_eq!(t.abandon(), 1);
        assert_eq!(t.outstanding(), 0);
        assert_eq!(t.spare().capacity(), 8, "only the one never lent is pooled");
        assert_eq!(t.spare().capacity(), 0);
    }

    #[test]
    fn enobufs_retries_by_copy_and_einval_turns_zerocopy_off() {
        let e = |n| io::Error::from_raw_os_error(n);
        assert_eq!(Refusal::of(&e(nix::libc::ENOBUFS)), Refusal::NoBuffers);
        assert_eq!(Refusal::of(&e(nix::libc::EINVAL)), Refusal::Unsupported);
        assert_eq!(Refusal::of(&e(nix::libc::EOPNOTSUPP)), Refusal::Unsupported);
        assert_eq!(Refusal::of(&e(nix::libc::ECONNREFUSED)), Refusal::Other);
    }

    #[test]
    fn the_kernel_reports_completions_on_loopback() {
        // fastpath-facts §4: on loopback every completion says the kernel copied.
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        enable(&tx).expect("SO_ZEROCOPY");
        let mut t = Tracker::default();
        let mut b = Vec::new();
        for i in 0..10u8 {
            b.extend_from_slice(&[0, 3, 0, i]);
            b.extend_from_slice(&[i; 8192]);
        }
        for d in b.chunks(8196) {
            send(&tx, d, rx.local_addr().expect("addr")).expect("zerocopy send");
        }
        t.lend(b, 10);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while t.outstanding() > 0 {
            assert!(std::time::Instant::now() < deadline, "no completion in 5 s");
            drain(&tx, &mut t).expect("drain");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(t.reported().completed, 10);
        let mut got = [0u8; 9000];
        for i in 0..10u8 {
            let n = rx.recv(&mut got).expect("datagram");
            assert_eq!((n, got[3], got[8195]), (8196, i, i), "datagram {i} intact");
        }
    }
}
