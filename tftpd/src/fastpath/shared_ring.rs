//! One io_uring for many async transfers (Linux; cargo feature `io-uring`;
//! `performance.io_uring.shared_ring`; docs/adr/0028).
//!
//! A ring lane is a thread with a single-threaded runtime and one ring. The transfers it runs
//! queue their sends (`SENDMSG`, a GSO run in one) and their next receive (`RECVMSG`) as
//! entries; a driver task on the same thread hands everything the ready transfers queued in
//! one scheduler turn to the kernel with one `io_uring_enter`, and learns of completions
//! through the ring's descriptor in the runtime's `epoll`. Per block that is a share of one
//! `epoll_wait` and one `io_uring_enter` instead of a `sendto` and a `recvmmsg` of its own.
//!
//! Memory the kernel reads or writes (the datagrams being sent, their headers and
//! addresses, each receive's buffer and source address) and the sockets themselves belong
//! to the ring's slots, not to the transfers: a transfer that ends marks its slot orphaned
//! and cancels its receive, and the slot (and socket) is freed only once no operation of it
//! is in flight. So no descriptor number is reused while an entry naming it is queued, and
//! no buffer is freed under the kernel. The ring's drop cancels what is left, waits up to a
//! second, and leaks what the kernel still holds.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd as _, BorrowedFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use io_uring::types::{Fd, SubmitArgs, Timespec};
use io_uring::{IoUring, opcode, squeue};
use nix::libc;
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;

use super::uring::{Message, set_segment, source};

/// Kinds of operation, in the low byte of `user_data`; the slot is in the high 32 bits and
/// a send's serial number in between.
const RECV: u64 = 0;
const SEND: u64 = 1;
const CANCEL: u64 = 2;
/// How long the drop waits for the kernel to let go of the slots' memory.
const DROP_WAIT: Duration = Duration::from_secs(1);
/// How long a stopping lane waits for its last sends (they complete in microseconds; this
/// bounds the daemon's exit if the kernel holds one).
const STOP_WAIT: Duration = Duration::from_millis(500);

fn tag(slot: usize, serial: u32, kind: u64) -> u64 {
    (slot as u64) << 32 | u64::from(serial & 0x00ff_ffff) << 8 | kind
}

/// One transfer's socket and the memory its operations use.
struct Slot {
    #[expect(
        dead_code,
        reason = "held so the descriptor closes only when no queued entry names it"
    )]
    socket: std::net::UdpSocket,
    recv: Box<Receive>,
    recv_state: RecvState,
    /// The task waiting for the receive.
    waker: Option<Waker>,
    /// Sends in flight, by serial number.
    #[expect(
        clippy::vec_box,
        reason = "the kernel holds pointers into each send: they must not move when the vector grows"
    )]
    sends: Vec<Box<Outgoing>>,
    /// Finished sends kept for their buffers.
    #[expect(clippy::vec_box, reason = "as `sends`: reused as they are")]
    spare: Vec<Box<Outgoing>>,
    next_serial: u32,
    /// The last send error the kernel reported (a lost datagram; the timer covers it).
    send_error: Option<io::Error>,
    /// Entries queued or in flight: the slot lives until this is 0.
    in_flight: u32,
    /// The transfer has ended: free the slot when nothing is in flight.
    orphan: bool,
}

struct Receive {
    buf: Vec<u8>,
    addr: libc::sockaddr_storage,
    msg: Message,
}

struct Outgoing {
    serial: u32,
    bytes: Vec<u8>,
    addr: socket2::SockAddr,
    msg: Message,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecvState {
    Idle,
    Armed,
    /// Completed with this result; the bytes are in `recv.buf`.
    Done(i32),
}

struct Inner {
    ring: IoUring,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    /// Entries pushed but not yet submitted.
    queued: bool,
}

/// A ring shared by the transfers of one lane thread.
pub struct SharedRing {
    inner: Mutex<Inner>,
    /// Wakes the driver: entries were queued.
    queued: Notify,
    fd: RawFd,
}

// SAFETY: the raw pointers inside the slots (`Message`, `Receive`) point only into the slots'
// own boxes and vectors; every access to them goes through the mutex.
unsafe impl Send for Inner {}

impl std::fmt::Debug for SharedRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedRing")
            .field("fd", &self.fd)
            .finish_non_exhaustive()
    }
}

/// A transfer's socket in a shared ring.
pub struct RingSocket {
    ring: Arc<SharedRing>,
    slot: usize,
    fd: RawFd,
}

impl std::fmt::Debug for RingSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingSocket")
            .field("slot", &self.slot)
            .field("fd", &self.fd)
            .finish_non_exhaustive()
    }
}

impl SharedRing {
    /// A ring of `depth` submission entries (the kernel rounds up to a power of two).
    pub fn new(depth: u32) -> io::Result<Arc<Self>> {
        // Completions of receives run as task work on the lane thread. Cooperatively: not
        // by an interrupt while it runs transfers, but at its next system call (the
        // driver's submit, or the runtime's `epoll_wait`, which the work wakes).
        let ring = IoUring::builder()
            .setup_coop_taskrun()
            .build(depth)
            .or_else(|_| IoUring::new(depth))?;
        let fd = ring.as_raw_fd();
        Ok(Arc::new(Self {
            inner: Mutex::new(Inner {
                ring,
                slots: Vec::new(),
                free: Vec::new(),
                queued: false,
            }),
            queued: Notify::new(),
            fd,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every user keeps the slots consistent between pushes; a panic elsewhere leaves
        // them droppable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes `socket` (non-blocking) into the ring.
    pub fn register(self: &Arc<Self>, socket: std::net::UdpSocket) -> RingSocket {
        let fd = socket.as_raw_fd();
        let slot = Slot {
            socket,
            recv: Box::new(Receive {
                buf: Vec::new(),
                // SAFETY: all-zero is a valid sockaddr_storage.
                addr: unsafe { std::mem::zeroed() },
                msg: Message::empty(),
            }),
            recv_state: RecvState::Idle,
            waker: None,
            sends: Vec::new(),
            spare: Vec::new(),
            next_serial: 0,
            send_error: None,
            in_flight: 0,
            orphan: false,
        };
        let mut inner = self.lock();
        let index = match inner.free.pop() {
            Some(i) => {
                inner.slots[i] = Some(slot);
                i
            }
            None => {
                inner.slots.push(Some(slot));
                inner.slots.len() - 1
            }
        };
        RingSocket {
            ring: self.clone(),
            slot: index,
            fd,
        }
    }

    /// The driver: submits what transfers queued, once per scheduler turn, and hands
    /// completions to their transfers. Runs on the lane's thread until `stop`, then sends
    /// what is still queued.
    pub async fn drive(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        // SAFETY: the ring's descriptor stays open while `self` lives, which this future holds
        // until after the registration is dropped.
        let registered =
            unsafe { AsyncFd::register_with_interest(self.fd, tokio::io::Interest::READABLE) };
        let ready = match registered.map_err(|e| e.into_parts().1) {
            Ok(fd) => fd,
            Err(e) => {
                tracing::error!(error = %e, "registering the shared io_uring with the runtime failed");
                return;
            }
        };
        loop {
            self.submit_queued();
            self.lock().reap();
            tokio::select! {
                biased;
                () = stop.cancelled() => {
                    self.send_what_is_queued(&ready).await;
                    return;
                }
                r = ready.readable() => match r {
                    Ok(mut guard) => guard.clear_ready(),
                    Err(e) => {
                        tracing::error!(error = %e, "waiting on the shared io_uring failed");
                        return;
                    }
                },
                () = self.queued.notified() => {
                    // Let the other transfers ready in this turn queue theirs first.
                    tokio::task::yield_now().await;
                }
            }
        }
    }

    /// Hands the kernel what transfers queued since the last submission.
    fn submit_queued(&self) {
        // The submission runs every queued send through the kernel's UDP stack, so it is
        // made without the lock: the listener thread registering a new transfer's socket
        // (and anything else that takes the lock) goes on meanwhile. The count is taken
        // under the lock; entries pushed after it wait for the next turn.
        let to_submit = {
            let mut inner = self.lock();
            if inner.queued {
                inner.queued = false;
                u32::try_from(inner.ring.submission().len()).unwrap_or(u32::MAX)
            } else {
                0
            }
        };
        if to_submit == 0 {
            return;
        }
        let short = match enter(self.fd, to_submit) {
            Ok(n) => n < to_submit,
            Err(e) => {
                tracing::debug!(error = %e, "io_uring submit");
                true
            }
        };
        if short {
            // EBUSY (the completion queue is full) or a short submission: reaping makes
            // room, and the permit brings the driver straight back.
            self.lock().queued = true;
            self.queued.notify_one();
        }
    }

    /// The lane is stopping (the daemon exits): the last things its transfers said — the
    /// drain's ERRORs — are queued but not yet submitted, and would die with the process.
    /// Submits them and waits, at most [`STOP_WAIT`], until the kernel has taken every send.
    async fn send_what_is_queued(&self, ready: &AsyncFd<RawFd>) {
        let deadline = tokio::time::Instant::now() + STOP_WAIT;
        loop {
            self.submit_queued();
            let sending = {
                let mut inner = self.lock();
                inner.reap();
                inner.queued || inner.slots.iter().flatten().any(|s| !s.sends.is_empty())
            };
            if !sending {
                return;
            }
            match tokio::time::timeout_at(deadline, ready.readable()).await {
                Ok(Ok(mut guard)) => guard.clear_ready(),
                Ok(Err(_)) | Err(_) => {
                    tracing::warn!("a stopping ring lane's last sends did not complete in time");
                    return;
                }
            }
        }
    }
}

/// `io_uring_enter(fd, to_submit)` with no wait: hands the kernel up to `to_submit` entries
/// from the submission queue's head, whoever pushed them. Returns how many it took.
fn enter(fd: RawFd, to_submit: u32) -> io::Result<u32> {
    // SAFETY: the call names only the ring's descriptor (open while the ring lives) and
    // counts; no user memory is passed. The entries it submits point at slot memory that
    // is freed only after their completions (see the module doc).
    let n = unsafe {
        libc::syscall(
            libc::SYS_io_uring_enter,
            fd,
            to_submit,
            0u32,
            0u32,
            std::ptr::null::<libc::c_void>(),
            0usize,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }
}

impl Inner {
    /// Queues `entry`, submitting first when the queue is full.
    ///
    /// # Safety
    /// Whatever `entry` points at must stay valid and unmoved until its completion is reaped.
    unsafe fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: the caller's promise.
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                self.queued = true;
                return Ok(());
            }
            self.ring.submit()?;
        }
    }

    /// Takes every completion and hands it to its slot; frees orphaned slots that are done.
    fn reap(&mut self) {
        let done: Vec<(u64, i32)> = self
            .ring
            .completion()
            .map(|c| (c.user_data(), c.result()))
            .collect();
        for (ud, result) in done {
            let index = (ud >> 32) as usize;
            let Some(Some(slot)) = self.slots.get_mut(index) else {
                continue;
            };
            slot.in_flight = slot.in_flight.saturating_sub(1);
            match ud & 0xff {
                RECV => {
                    slot.recv_state = RecvState::Done(result);
                    if let Some(w) = slot.waker.take() {
                        w.wake();
                    }
                }
                SEND => {
                    let serial = ((ud >> 8) & 0x00ff_ffff) as u32;
                    if let Some(i) = slot.sends.iter().position(|s| s.serial == serial) {
                        let s = slot.sends.swap_remove(i);
                        slot.spare.push(s);
                    }
                    if result < 0 {
                        slot.send_error = Some(io::Error::from_raw_os_error(-result));
                    }
                }
                _ => {}
            }
            if slot.orphan && slot.in_flight == 0 {
                self.slots[index] = None;
                self.free.push(index);
            }
        }
    }

    fn slot(&mut self, index: usize) -> io::Result<&mut Slot> {
        self.slots
            .get_mut(index)
            .and_then(Option::as_mut)
            .ok_or_else(|| io::Error::other("shared io_uring slot gone"))
    }
}

impl RingSocket {
    /// The socket, for calls made on it directly (options, a filter, `sendfile`).
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the slot owns the socket and is freed only after this handle's drop has
        // orphaned it, so the descriptor is open for as long as the borrow.
        unsafe { BorrowedFd::borrow_raw(self.fd) }
    }

    /// Queues `bytes` for `to`: each `(start, end, segment)` run one `SENDMSG`, cut into
    /// `segment`-byte datagrams by UDP GSO when it holds more than one. They leave with the
    /// driver's next submission; a send error surfaces with [`take_send_error`].
    ///
    /// [`take_send_error`]: Self::take_send_error
    pub fn queue(
        &self,
        bytes: &[u8],
        runs: &[(usize, usize, usize)],
        to: SocketAddr,
    ) -> io::Result<()> {
        {
            let mut inner = self.ring.lock();
            for &(start, end, segment) in runs {
                let slot = inner.slot(self.slot)?;
                let mut send = slot.spare.pop().unwrap_or_else(|| {
                    Box::new(Outgoing {
                        serial: 0,
                        bytes: Vec::new(),
                        addr: socket2::SockAddr::from(to),
                        msg: Message::empty(),
                    })
                });
                slot.next_serial = slot.next_serial.wrapping_add(1) & 0x00ff_ffff;
                send.serial = slot.next_serial;
                send.bytes.clear();
                send.bytes.extend_from_slice(&bytes[start..end]);
                send.addr = socket2::SockAddr::from(to);
                let s = &mut *send;
                s.msg.iov = libc::iovec {
                    iov_base: s.bytes.as_mut_ptr().cast(),
                    iov_len: s.bytes.len(),
                };
                s.msg.hdr.msg_name = s.addr.as_ptr() as *mut libc::c_void;
                s.msg.hdr.msg_namelen = s.addr.len();
                s.msg.hdr.msg_iov = &raw mut s.msg.iov;
                s.msg.hdr.msg_iovlen = 1;
                if end - start > segment {
                    set_segment(&mut s.msg.hdr, &mut s.msg.control, segment)?;
                } else {
                    s.msg.hdr.msg_control = std::ptr::null_mut();
                    s.msg.hdr.msg_controllen = 0;
                }
                let entry = opcode::SendMsg::new(Fd(self.fd), &raw const s.msg.hdr)
                    .build()
                    .user_data(tag(self.slot, send.serial, SEND));
                slot.sends.push(send);
                slot.in_flight += 1;
                // SAFETY: the header, its iovec, address and bytes live in a box the slot
                // keeps in `sends` until this entry's completion.
                unsafe { inner.push(&entry)? };
            }
        }
        self.ring.queued.notify_one();
        Ok(())
    }

    /// The send error the kernel last reported, taken.
    pub fn take_send_error(&self) -> Option<io::Error> {
        self.ring
            .lock()
            .slot(self.slot)
            .ok()
            .and_then(|s| s.send_error.take())
    }

    /// Receives one datagram into `buf` (a longer one is cut), arming the ring's receive
    /// when none is out. Cancel-safe: a receive that completes after the caller gave up is
    /// kept for the next call.
    pub fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        let mut inner = self.ring.lock();
        let slot = match inner.slot(self.slot) {
            Ok(s) => s,
            Err(e) => return Poll::Ready(Err(e)),
        };
        match slot.recv_state {
            RecvState::Done(result) => {
                slot.recv_state = RecvState::Idle;
                if result < 0 {
                    return Poll::Ready(Err(io::Error::from_raw_os_error(-result)));
                }
                let n = usize::try_from(result).unwrap_or(0).min(buf.len());
                buf[..n].copy_from_slice(&slot.recv.buf[..n]);
                Poll::Ready(
                    source(&slot.recv.addr)
                        .map(|from| (n, from))
                        .ok_or_else(|| {
                            io::Error::other(
                                "a datagram from an address family other than IPv4 or IPv6",
                            )
                        }),
                )
            }
            RecvState::Armed => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
            RecvState::Idle => {
                let r = &mut *slot.recv;
                r.buf.resize(buf.len(), 0);
                r.msg.iov = libc::iovec {
                    iov_base: r.buf.as_mut_ptr().cast(),
                    iov_len: r.buf.len(),
                };
                r.msg.hdr.msg_name = (&raw mut r.addr).cast();
                r.msg.hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                r.msg.hdr.msg_iov = &raw mut r.msg.iov;
                r.msg.hdr.msg_iovlen = 1;
                r.msg.hdr.msg_control = std::ptr::null_mut();
                r.msg.hdr.msg_controllen = 0;
                let entry = opcode::RecvMsg::new(Fd(self.fd), &raw mut r.msg.hdr)
                    .build()
                    .user_data(tag(self.slot, 0, RECV));
                slot.recv_state = RecvState::Armed;
                slot.waker = Some(cx.waker().clone());
                slot.in_flight += 1;
                // SAFETY: the buffer, address and header are in the slot's boxed `Receive`,
                // which is neither moved nor resized while the receive is armed.
                if let Err(e) = unsafe { inner.push(&entry) } {
                    if let Ok(slot) = inner.slot(self.slot) {
                        slot.recv_state = RecvState::Idle;
                        slot.in_flight -= 1;
                    }
                    return Poll::Ready(Err(e));
                }
                drop(inner);
                self.ring.queued.notify_one();
                Poll::Pending
            }
        }
    }

    /// Receives one datagram (see [`poll_recv`](Self::poll_recv)).
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        std::future::poll_fn(|cx| self.poll_recv(cx, buf)).await
    }
}

impl Drop for RingSocket {
    fn drop(&mut self) {
        let mut inner = self.ring.lock();
        let Ok(slot) = inner.slot(self.slot) else {
            return;
        };
        slot.orphan = true;
        slot.waker = None;
        if slot.recv_state == RecvState::Armed {
            slot.in_flight += 1;
            let entry = opcode::AsyncCancel::new(tag(self.slot, 0, RECV))
                .build()
                .user_data(tag(self.slot, 0, CANCEL));
            // SAFETY: a cancellation points at no memory.
            if unsafe { inner.push(&entry) }.is_err()
                && let Ok(slot) = inner.slot(self.slot)
            {
                slot.in_flight -= 1;
            }
        }
        if inner.slot(self.slot).is_ok_and(|s| s.in_flight == 0) {
            inner.slots[self.slot] = None;
            inner.free.push(self.slot);
        }
        drop(inner);
        self.ring.queued.notify_one();
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Every transfer has let go (each holds the ring): cancel what is still out, wait
        // for it, and leak what the kernel does not give back.
        let armed: Vec<usize> = (0..self.slots.len())
            .filter(|&i| {
                self.slots[i]
                    .as_ref()
                    .is_some_and(|s| s.recv_state == RecvState::Armed)
            })
            .collect();
        for i in armed {
            let entry = opcode::AsyncCancel::new(tag(i, 0, RECV))
                .build()
                .user_data(tag(i, 0, CANCEL));
            if let Some(Some(slot)) = self.slots.get_mut(i) {
                slot.in_flight += 1;
            }
            // SAFETY: a cancellation points at no memory.
            let _ = unsafe { self.push(&entry) };
        }
        let busy = |inner: &Self| inner.slots.iter().flatten().any(|s| s.in_flight > 0);
        let deadline = Instant::now() + DROP_WAIT;
        while busy(self) && Instant::now() < deadline {
            let ts = Timespec::from(Duration::from_millis(10));
            let _ = self
                .ring
                .submitter()
                .submit_with_args(1, &SubmitArgs::new().timespec(&ts));
            self.reap();
        }
        if busy(self) {
            tracing::warn!("shared io_uring operations did not finish; leaking their buffers");
            std::mem::forget(std::mem::take(&mut self.slots));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use tokio_util::sync::CancellationToken;

    impl SharedRing {
        /// Slots still held (a transfer's, or an orphan's with operations in flight).
        fn live_slots(&self) -> usize {
            self.lock().slots.iter().flatten().count()
        }
    }

    /// Whether io_uring is here; under CI=true it must be (the suite's machine has it).
    fn ring_here() -> bool {
        let here = crate::fastpath::support().io_uring;
        assert!(
            here || std::env::var("CI").map_or(true, |v| v != "true"),
            "io_uring is unavailable under CI=true"
        );
        here
    }

    /// A ring with its driver on the current runtime, a transfer socket in it, and a peer.
    fn setup() -> (Arc<SharedRing>, RingSocket, UdpSocket, CancellationToken) {
        let (ring, socket, peer, stop, _driver) = setup_with_driver();
        (ring, socket, peer, stop)
    }

    /// As [`setup`], with the driver's task to wait for.
    fn setup_with_driver() -> (
        Arc<SharedRing>,
        RingSocket,
        UdpSocket,
        CancellationToken,
        tokio::task::JoinHandle<()>,
    ) {
        let ring = SharedRing::new(64).expect("a ring");
        let stop = CancellationToken::new();
        let driver = tokio::spawn(ring.clone().drive(stop.clone()));
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket.set_nonblocking(true).expect("non-blocking");
        let peer = UdpSocket::bind("127.0.0.1:0").expect("peer");
        peer.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        (ring.clone(), ring.register(socket), peer, stop, driver)
    }

    fn local(s: &RingSocket) -> SocketAddr {
        socket2::SockRef::from(&s.as_fd())
            .local_addr()
            .expect("local")
            .as_socket()
            .expect("ip")
    }

    #[tokio::test(flavor = "current_thread")]
    async fn sends_leave_through_the_ring_and_receives_come_back_with_their_source() {
        if !ring_here() {
            return;
        }
        let (_ring, s, peer, stop) = setup();
        let to = peer.local_addr().expect("peer addr");
        s.queue(b"\x00\x03\x00\x01hello", &[(0, 9, 9)], to)
            .expect("queued");
        let mut buf = [0u8; 64];
        let (n, from) = tokio::task::spawn_blocking(move || {
            let r = peer.recv_from(&mut buf).map(|(n, f)| (n, f, buf));
            (r, peer)
        })
        .await
        .map(|(r, peer)| {
            let (n, from, got) = r.expect("the datagram");
            assert_eq!(&got[..n], b"\x00\x03\x00\x01hello");
            peer.send_to(b"\x00\x04\x00\x01", from).expect("answer");
            (n, peer.local_addr().expect("addr"))
        })
        .expect("peer");
        assert_eq!(n, 9);
        let mut rx = [0u8; 16];
        let (len, source) = s.recv_from(&mut rx).await.expect("received");
        assert_eq!((&rx[..len], source), (&b"\x00\x04\x00\x01"[..], from));
        assert!(s.take_send_error().is_none());
        stop.cancel();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_send_queued_as_the_lane_stops_still_leaves() {
        if !ring_here() {
            return;
        }
        let (_ring, s, peer, stop, driver) = setup_with_driver();
        // The driver is parked waiting; then the last transfer queues its ERROR and the
        // daemon stops the lane before the driver's next turn (the drain's exit).
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        let to = peer.local_addr().expect("peer addr");
        s.queue(b"\x00\x05\x00\x00bye\x00", &[(0, 8, 8)], to)
            .expect("queued");
        drop(s);
        stop.cancel();
        driver.await.expect("the driver ends");
        peer.set_read_timeout(Some(Duration::from_millis(500)))
            .expect("timeout");
        let mut buf = [0u8; 16];
        let (n, _) = peer
            .recv_from(&mut buf)
            .expect("the ERROR left before the lane ended");
        assert_eq!(&buf[..n], b"\x00\x05\x00\x00bye\x00");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_gso_run_leaves_as_one_send_and_arrives_as_its_datagrams() {
        if !ring_here() || !crate::fastpath::support().gso {
            return;
        }
        let (_ring, s, peer, stop) = setup();
        let to = peer.local_addr().expect("peer addr");
        let bytes: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        s.queue(&bytes, &[(0, 3000, 1000)], to).expect("queued");
        let got = tokio::task::spawn_blocking(move || {
            let mut all = Vec::new();
            let mut buf = [0u8; 2000];
            for _ in 0..3 {
                let (n, _) = peer.recv_from(&mut buf).expect("a segment");
                assert_eq!(n, 1000, "cut at the segment size");
                all.extend_from_slice(&buf[..n]);
            }
            all
        })
        .await
        .expect("peer");
        assert_eq!(got, bytes);
        stop.cancel();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_receive_that_completes_after_the_waiter_gave_up_is_kept_for_the_next() {
        if !ring_here() {
            return;
        }
        let (_ring, s, peer, stop) = setup();
        let mut rx = [0u8; 16];
        let gave_up = tokio::time::timeout(Duration::from_millis(50), s.recv_from(&mut rx)).await;
        assert!(gave_up.is_err(), "nothing was sent yet");
        peer.send_to(b"late", local(&s)).expect("send");
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), s.recv_from(&mut rx))
            .await
            .expect("the armed receive completes")
            .expect("received");
        assert_eq!(&rx[..n], b"late");
        stop.cancel();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_socket_dropped_with_its_receive_armed_is_freed_once_the_kernel_lets_go() {
        if !ring_here() {
            return;
        }
        let (ring, s, _peer, stop) = setup();
        let mut rx = [0u8; 16];
        let armed = tokio::time::timeout(Duration::from_millis(20), s.recv_from(&mut rx)).await;
        assert!(armed.is_err());
        assert_eq!(ring.live_slots(), 1);
        drop(s);
        // The slot (and its buffer and socket) outlives the drop until the cancellation's
        // completion is reaped by the driver, which has not run since.
        assert_eq!(
            ring.live_slots(),
            1,
            "kept while the kernel may write into it"
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while ring.live_slots() > 0 {
            assert!(
                Instant::now() < deadline,
                "the orphaned slot was never freed"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // A new socket takes the freed slot.
        let again = UdpSocket::bind("127.0.0.1:0").expect("bind");
        again.set_nonblocking(true).expect("non-blocking");
        let s2 = ring.register(again);
        assert_eq!(s2.slot, 0, "the slot is reused");
        stop.cancel();
    }
}
