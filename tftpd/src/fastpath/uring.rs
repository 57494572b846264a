//! io_uring for transfer threads (Linux; cargo feature `io-uring`; `[performance.io_uring]`).
//!
//! A transfer on a thread of its own queues its DATA (or ACK) as `SENDMSG` entries and its
//! next receive as a `RECVMSG` entry, then makes one `io_uring_enter` that submits them all
//! and sleeps until the receive completes (or the wait's timeout): one system call per
//! lock-step block instead of the blocking path's two (`sendto`, `recvfrom`). With SQPOLL a
//! kernel thread takes the submissions, at the price of a CPU it polls on while busy.
//!
//! Memory the kernel reads or writes (the datagrams, the message headers, the receive buffer
//! and the source address) lives in boxes this struct owns and is not touched while an
//! operation on it is in flight: a new batch waits for the previous one's completions, and
//! the drop cancels the receive and waits for everything before freeing anything.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd as _, BorrowedFd};
use std::time::{Duration, Instant};

use io_uring::types::{Fd, SubmitArgs, Timespec};
use io_uring::{IoUring, opcode};
use nix::libc;

/// `user_data` of the receive; sends are numbered from 0.
const RECV: u64 = u64::MAX;
/// `user_data` of a cancellation.
const CANCEL: u64 = u64::MAX - 1;
/// How long the drop waits for the kernel to let go of this transfer's memory.
const DROP_WAIT: Duration = Duration::from_secs(1);

/// The `[performance.io_uring]` settings a ring is made with.
#[derive(Debug, Clone, Copy)]
pub struct RingSettings {
    /// Submission queue entries (the kernel rounds up to a power of two).
    pub queue_depth: u32,
    /// A kernel thread polls the submission queue, idling after this many ms (None: off).
    pub sqpoll_idle_ms: Option<u32>,
}

/// Whether this kernel makes rings and knows the operations used here. Probed once at start:
/// `io_uring_disabled`, a seccomp profile or an old kernel say no here, not mid-transfer.
pub fn probe() -> bool {
    let Ok(ring) = IoUring::new(8) else {
        return false;
    };
    let mut probe = io_uring::Probe::new();
    if ring.submitter().register_probe(&mut probe).is_err() {
        return false;
    }
    [
        opcode::SendMsg::CODE,
        opcode::RecvMsg::CODE,
        opcode::AsyncCancel::CODE,
    ]
    .iter()
    .all(|&op| probe.is_supported(op))
        && ring.params().is_feature_ext_arg()
}

/// A message header and what it points at, boxed so the kernel's pointers stay valid.
pub(super) struct Message {
    pub(super) hdr: libc::msghdr,
    pub(super) iov: libc::iovec,
    /// Room for one `UDP_SEGMENT` control message (a u16), 8-byte aligned.
    pub(super) control: [u64; 4],
}

/// The receive in flight: its buffer, header and source address.
struct Receive {
    buf: Vec<u8>,
    addr: libc::sockaddr_storage,
    msg: Message,
}

/// What a wait ended with.
#[derive(Debug)]
pub enum Completion {
    /// A datagram of this many bytes (in the caller's buffer) from this source.
    Datagram(usize, SocketAddr),
    /// The timeout passed.
    TimedOut,
    /// The receive failed.
    Failed(io::Error),
}

/// A transfer socket driven through its own ring.
pub struct RingSocket {
    ring: IoUring,
    fd: i32,
    /// The batch being sent: its bytes, the destination and one header per send.
    send_bytes: Vec<u8>,
    send_addr: Box<socket2::SockAddr>,
    #[expect(
        clippy::vec_box,
        reason = "the kernel holds pointers into each message: they must not move when the vector grows"
    )]
    sends: Vec<Box<Message>>,
    /// Sends queued or in flight; their memory is not reused until this is 0.
    in_flight: usize,
    /// Sends queued but not yet submitted.
    queued: bool,
    /// The last send error the kernel reported (a lost datagram; the timer covers it).
    send_error: Option<io::Error>,
    recv: Box<Receive>,
    recv_armed: bool,
    /// A receive that completed (its result), its bytes still in `recv`.
    received: Option<i32>,
}

// SAFETY: the raw pointers inside `Message` and `Receive` point only into this struct's own
// boxes and vectors, which move with it; nothing is shared with another thread.
unsafe impl Send for RingSocket {}

impl std::fmt::Debug for RingSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingSocket")
            .field("fd", &self.fd)
            .field("in_flight", &self.in_flight)
            .field("recv_armed", &self.recv_armed)
            .finish_non_exhaustive()
    }
}

impl Message {
    pub(super) fn empty() -> Self {
        // SAFETY: msghdr and iovec are plain C structs for which all-zero is a valid value
        // (null pointers, zero lengths).
        let (hdr, iov) = unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
        Self {
            hdr,
            iov,
            control: [0; 4],
        }
    }
}

impl Receive {
    fn empty() -> Box<Self> {
        // SAFETY: sockaddr_storage is a plain C struct; all-zero is a valid value.
        let addr = unsafe { std::mem::zeroed() };
        Box::new(Self {
            buf: Vec::new(),
            addr,
            msg: Message::empty(),
        })
    }
}

impl RingSocket {
    /// A ring for the socket `fd` (which must outlive this value).
    pub fn new(fd: BorrowedFd<'_>, settings: RingSettings) -> io::Result<Self> {
        let mut builder = IoUring::builder();
        if let Some(idle) = settings.sqpoll_idle_ms {
            builder.setup_sqpoll(idle);
        }
        let ring = builder.build(settings.queue_depth)?;
        Ok(Self {
            ring,
            fd: fd.as_raw_fd(),
            send_bytes: Vec::new(),
            send_addr: Box::new(socket2::SockAddr::from(SocketAddr::from(([0, 0, 0, 0], 0)))),
            sends: Vec::new(),
            in_flight: 0,
            queued: false,
            send_error: None,
            recv: Receive::empty(),
            recv_armed: false,
            received: None,
        })
    }

    /// Queues `bytes` for `to` as datagrams: each `(start, end, segment)` run is one send,
    /// cut into `segment`-byte datagrams by UDP GSO when it holds more than one. Nothing
    /// leaves until the next [`wait`](Self::wait) (or [`flush`](Self::flush)).
    pub fn queue(
        &mut self,
        bytes: &[u8],
        runs: &[(usize, usize, usize)],
        to: SocketAddr,
    ) -> io::Result<()> {
        // The previous batch's memory may still be read by the kernel.
        self.settle_sends()?;
        self.send_bytes.clear();
        self.send_bytes.extend_from_slice(bytes);
        *self.send_addr = socket2::SockAddr::from(to);
        while self.sends.len() < runs.len() {
            self.sends.push(Box::new(Message::empty()));
        }
        for (i, &(start, end, segment)) in runs.iter().enumerate() {
            let m = &mut *self.sends[i];
            m.iov = libc::iovec {
                iov_base: self.send_bytes[start..end].as_ptr() as *mut libc::c_void,
                iov_len: end - start,
            };
            m.hdr.msg_name = self.send_addr.as_ptr() as *mut libc::c_void;
            m.hdr.msg_namelen = self.send_addr.len();
            m.hdr.msg_iov = &mut m.iov;
            m.hdr.msg_iovlen = 1;
            if end - start > segment {
                set_segment(&mut m.hdr, &mut m.control, segment)?;
            } else {
                m.hdr.msg_control = std::ptr::null_mut();
                m.hdr.msg_controllen = 0;
            }
            let entry = opcode::SendMsg::new(Fd(self.fd), &m.hdr)
                .build()
                .user_data(i as u64);
            self.push(&entry)?;
            self.in_flight += 1;
            self.queued = true;
        }
        Ok(())
    }

    /// The send error the kernel last reported, taken.
    pub fn take_send_error(&mut self) -> Option<io::Error> {
        self.send_error.take()
    }

    /// Submits what is queued and waits for every send to complete: before the socket is
    /// used directly (an ERROR by `sendto`, a `sendfile`).
    pub fn flush(&mut self) -> io::Result<()> {
        self.settle_sends()
    }

    /// Submits what is queued, arms the receive (into a buffer of `buf.len()` bytes) unless
    /// it is armed already, and sleeps until it completes or `timeout` passes.
    pub fn wait(&mut self, buf: &mut [u8], timeout: Duration) -> Completion {
        if self.received.is_none()
            && !self.recv_armed
            && let Err(e) = self.arm_receive(buf.len())
        {
            return Completion::Failed(e);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(result) = self.received.take() {
                return self.hand_over(result, buf);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let ts = Timespec::from(left.max(Duration::from_micros(1)));
            let args = SubmitArgs::new().timespec(&ts);
            // The receive, and every send still out (so their memory is free on return).
            match self
                .ring
                .submitter()
                .submit_with_args(self.in_flight + 1, &args)
            {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ETIME) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Completion::Failed(e),
            }
            self.queued = false;
            self.reap();
            if self.received.is_none() && Instant::now() >= deadline {
                return Completion::TimedOut;
            }
        }
    }

    /// The completed receive's datagram, copied into `buf`.
    fn hand_over(&self, result: i32, buf: &mut [u8]) -> Completion {
        if result < 0 {
            return Completion::Failed(io::Error::from_raw_os_error(-result));
        }
        let n = usize::try_from(result).unwrap_or(0).min(buf.len());
        buf[..n].copy_from_slice(&self.recv.buf[..n]);
        match source(&self.recv.addr) {
            Some(from) => Completion::Datagram(n, from),
            None => Completion::Failed(io::Error::other(
                "a datagram from an address family other than IPv4 or IPv6",
            )),
        }
    }

    fn arm_receive(&mut self, capacity: usize) -> io::Result<()> {
        let r = &mut *self.recv;
        r.buf.resize(capacity, 0);
        r.msg.iov = libc::iovec {
            iov_base: r.buf.as_mut_ptr().cast(),
            iov_len: capacity,
        };
        r.msg.hdr.msg_name = (&raw mut r.addr).cast();
        r.msg.hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        r.msg.hdr.msg_iov = &mut r.msg.iov;
        r.msg.hdr.msg_iovlen = 1;
        let entry = opcode::RecvMsg::new(Fd(self.fd), &mut r.msg.hdr)
            .build()
            .user_data(RECV);
        self.push(&entry)?;
        self.recv_armed = true;
        Ok(())
    }

    /// Takes every completion: a receive's result is kept for the next wait, a send's
    /// frees its slot.
    fn reap(&mut self) {
        let completions: Vec<(u64, i32)> = self
            .ring
            .completion()
            .map(|c| (c.user_data(), c.result()))
            .collect();
        for (tag, result) in completions {
            match tag {
                RECV => {
                    self.recv_armed = false;
                    // A cancelled receive (the drop) has nothing to hand over.
                    if result != -libc::ECANCELED {
                        self.received = Some(result);
                    }
                }
                CANCEL => {}
                _ => {
                    self.in_flight = self.in_flight.saturating_sub(1);
                    if result < 0 {
                        self.send_error = Some(io::Error::from_raw_os_error(-result));
                    }
                }
            }
        }
    }

    /// Submits queued sends and waits until none is in flight.
    fn settle_sends(&mut self) -> io::Result<()> {
        while self.in_flight > 0 || self.queued {
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            self.queued = false;
            self.reap();
        }
        Ok(())
    }

    fn push(&mut self, entry: &io_uring::squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every entry built here points into memory this struct owns and keeps
            // unchanged until the entry's completion has been reaped (see the module doc).
            let pushed = unsafe { self.ring.submission().push(entry) };
            if pushed.is_ok() {
                return Ok(());
            }
            // A full queue: hand what is there to the kernel and try again.
            self.ring.submit()?;
        }
    }
}

impl Drop for RingSocket {
    fn drop(&mut self) {
        if self.recv_armed {
            let cancel = opcode::AsyncCancel::new(RECV).build().user_data(CANCEL);
            let _ = self.push(&cancel);
        }
        let deadline = Instant::now() + DROP_WAIT;
        while (self.recv_armed || self.in_flight > 0) && Instant::now() < deadline {
            let ts = Timespec::from(Duration::from_millis(10));
            let args = SubmitArgs::new().timespec(&ts);
            let _ = self.ring.submitter().submit_with_args(1, &args);
            self.reap();
        }
        if self.recv_armed || self.in_flight > 0 {
            // The kernel still holds pointers into these buffers: leak them rather than let
            // it write into freed memory.
            tracing::warn!("io_uring operations did not finish; leaking their buffers");
            std::mem::forget(std::mem::replace(&mut self.recv, Receive::empty()));
            std::mem::forget(std::mem::replace(
                &mut self.send_addr,
                Box::new(socket2::SockAddr::from(SocketAddr::from(([0, 0, 0, 0], 0)))),
            ));
            std::mem::forget(std::mem::take(&mut self.send_bytes));
            std::mem::forget(std::mem::take(&mut self.sends));
        }
    }
}

/// Fills `hdr`'s control buffer with one `UDP_SEGMENT` message of `segment` bytes.
pub(super) fn set_segment(
    hdr: &mut libc::msghdr,
    control: &mut [u64; 4],
    segment: usize,
) -> io::Result<()> {
    let seg = u16::try_from(segment)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "segment over 65535 bytes"))?;
    hdr.msg_control = control.as_mut_ptr().cast();
    // SAFETY: the control buffer is 32 bytes, 8-byte aligned, and CMSG_SPACE(2) is 24 on
    // every Linux ABI, so the one header and its 2 data bytes fit; CMSG_FIRSTHDR of a
    // msghdr whose msg_controllen covers them is non-null and points into `control`.
    unsafe {
        hdr.msg_controllen = libc::CMSG_SPACE(2) as _;
        let cmsg = libc::CMSG_FIRSTHDR(hdr);
        (*cmsg).cmsg_level = libc::SOL_UDP;
        (*cmsg).cmsg_type = libc::UDP_SEGMENT;
        (*cmsg).cmsg_len = libc::CMSG_LEN(2) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), seg);
    }
    Ok(())
}

/// The source address the kernel wrote into `addr` (a receive's whole name buffer).
pub(super) fn source(addr: &libc::sockaddr_storage) -> Option<SocketAddr> {
    super::mmsg::peer(addr, STORAGE_LEN)
}

/// The size of a receive's name buffer, as the kernel's length type.
const STORAGE_LEN: libc::socklen_t = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
