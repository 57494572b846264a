//! A transfer's socket and the one place a transfer sends and receives. Two ways to drive
//! it: registered with the async runtime (many transfers share its worker threads), or
//! blocking, on a thread the transfer has to itself (`performance.cpu.transfer_threads`):
//! there a lock-step block costs one `recvfrom` and one `sendto`, with none of the
//! `epoll_wait`, EAGAIN retries and cross-thread wake-ups of the async path (docs/adr/0023).

use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd as _, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

use super::alarms::{Alarms, Rang};
use super::batch::Batch;
use super::owned_socket::OwnedSocket;
use super::socket::{bind_in_range, bind_one};

/// The longest a blocked receive sleeps before it looks at the drain's abort signal: the
/// most a blocking transfer can lag behind the drain deadline.
pub const BLOCKING_WAKE: Duration = Duration::from_millis(100);

/// A transfer's socket: its own (a new TID, RFC 1350 §4, on the listener's address family),
/// or in single-port mode the listening socket, with the listener handing over what this
/// transfer's client sends.
#[derive(Debug)]
pub struct TransferSocket {
    handle: Handle,
    /// Single-port mode: the client's datagrams, routed here by the listener.
    inbox: Option<(Mutex<mpsc::Receiver<Vec<u8>>>, SocketAddr)>,
}

#[derive(Debug)]
enum Handle {
    /// Non-blocking, registered with the async runtime through tokio's socket (the portable
    /// path; also the listening socket a single-port transfer shares).
    Async(Arc<UdpSocket>),
    /// Non-blocking, the transfer's own, registered with the async runtime for reading only
    /// (`performance.batching.transfer_recvmmsg`).
    Owned(OwnedSocket),
    /// Blocking, for a transfer on a thread of its own; never registered with the runtime.
    Blocking(Blocking),
}

/// Where a transfer runs, as the metrics name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// A thread of its own, blocking socket calls.
    Thread,
    /// The shared async runtime.
    Async,
}

#[derive(Debug)]
struct Blocking {
    socket: std::net::UdpSocket,
    /// The receive timeout (`SO_RCVTIMEO`) now set, in µs: changed only when it must be, so
    /// a block's receive costs no `setsockopt`.
    timeout_us: AtomicU64,
}

/// What waiting on a transfer socket ended with.
#[derive(Debug)]
pub enum Waited {
    /// A datagram of this many bytes arrived from this source.
    Datagram(usize, SocketAddr),
    /// The deadline passed first.
    Deadline,
    /// The drain's abort signal came first.
    Abort,
    /// The receive failed (e.g. an ICMP error surfaced); the retransmit timer decides.
    Failed(io::Error),
}

impl TransferSocket {
    /// Binds a socket for a transfer with `peer`, on the listener's local address `local`
    /// (the port replaced), from `ports` when given, else an ephemeral port, and registers
    /// it with the async runtime: through tokio's socket (the portable path), or with
    /// `recvmmsg` for reading only (see [`OwnedSocket`]).
    pub fn bind(local: SocketAddr, ports: Option<(u16, u16)>, recvmmsg: bool) -> io::Result<Self> {
        let socket = bind_transfer(local, ports)?;
        let handle = if recvmmsg {
            Handle::Owned(OwnedSocket::new(socket, true)?)
        } else {
            Handle::Async(Arc::new(UdpSocket::from_std(socket)?))
        };
        Ok(Self {
            handle,
            inbox: None,
        })
    }

    /// As [`bind`](Self::bind), but blocking: for a transfer driven on a thread of its own.
    /// Every call on it blocks that thread; none may be made from an async worker.
    pub fn bind_blocking(local: SocketAddr, ports: Option<(u16, u16)>) -> io::Result<Self> {
        let socket = bind_transfer(local, ports)?;
        socket.set_nonblocking(false)?;
        socket.set_read_timeout(Some(BLOCKING_WAKE))?;
        Ok(Self {
            handle: Handle::Blocking(Blocking {
                socket,
                timeout_us: AtomicU64::new(micros(BLOCKING_WAKE)),
            }),
            inbox: None,
        })
    }

    /// A transfer answered from the listening socket `socket` (single-port mode): what `peer`
    /// sends arrives through `inbox`.
    pub fn shared(
        socket: Arc<UdpSocket>,
        inbox: mpsc::Receiver<Vec<u8>>,
        peer: SocketAddr,
    ) -> Self {
        Self {
            handle: Handle::Async(socket),
            inbox: Some((Mutex::new(inbox), peer)),
        }
    }

    /// Where the transfer on this socket runs.
    pub fn lane(&self) -> Lane {
        match &self.handle {
            Handle::Async(_) | Handle::Owned(_) => Lane::Async,
            Handle::Blocking(_) => Lane::Thread,
        }
    }

    fn fd(&self) -> BorrowedFd<'_> {
        match &self.handle {
            Handle::Async(s) => s.as_fd(),
            Handle::Owned(s) => s.socket().as_fd(),
            Handle::Blocking(b) => b.socket.as_fd(),
        }
    }

    /// The socket's descriptor when it is the transfer's own (a kernel filter may be
    /// attached to it); `None` for the shared listening socket.
    pub fn own_fd(&self) -> Option<BorrowedFd<'_>> {
        self.inbox.is_none().then(|| self.fd())
    }

    /// The local address (the transfer's TID on our side).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.handle {
            Handle::Async(s) => s.local_addr(),
            Handle::Owned(s) => s.socket().local_addr(),
            Handle::Blocking(b) => b.socket.local_addr(),
        }
    }

    /// Receives one datagram and its source.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        if let Some((inbox, peer)) = &self.inbox {
            let Some(d) = inbox.lock().await.recv().await else {
                // The listener is gone (shutdown): nothing more will arrive.
                return std::future::pending().await;
            };
            let n = d.len().min(buf.len());
            buf[..n].copy_from_slice(&d[..n]);
            return Ok((n, *peer));
        }
        match &self.handle {
            Handle::Async(s) => s.recv_from(buf).await,
            Handle::Owned(s) => s.recv_from(buf).await,
            Handle::Blocking(b) => loop {
                match b.socket.recv_from(buf) {
                    Err(e) if retry(&e) => {}
                    r => return r,
                }
            },
        }
    }

    /// Waits for a datagram until `deadline` (none: no limit), or until the drain's abort
    /// signal in `alarms`, whichever comes first.
    pub async fn wait(
        &self,
        buf: &mut [u8],
        deadline: Option<Instant>,
        alarms: &mut Alarms,
    ) -> Waited {
        match &self.handle {
            Handle::Blocking(b) => return b.wait(buf, deadline, alarms.abort()),
            Handle::Async(_) | Handle::Owned(_) => {}
        }
        tokio::select! {
            received = self.recv_from(buf) => match received {
                Ok((n, from)) => Waited::Datagram(n, from),
                Err(e) => Waited::Failed(e),
            },
            rang = alarms.ring(deadline) => match rang {
                Rang::Deadline => Waited::Deadline,
                Rang::Abort => Waited::Abort,
            },
        }
    }

    /// Sends one datagram.
    pub async fn send_to(&self, datagram: &[u8], to: SocketAddr) -> io::Result<()> {
        match &self.handle {
            Handle::Async(s) => s.send_to(datagram, to).await.map(drop),
            Handle::Owned(s) => s.send_to(datagram, to).await,
            Handle::Blocking(b) => b.socket.send_to(datagram, to).map(drop),
        }
    }

    /// Runs the send call `f` on this socket's descriptor: when the async socket is
    /// writable, or at once (and blocking) for a blocking socket.
    #[cfg_attr(
        not(linux),
        expect(dead_code, reason = "only the Linux GSO path sends through it")
    )]
    pub(super) async fn write_with<R>(
        &self,
        mut f: impl FnMut(BorrowedFd<'_>) -> io::Result<R>,
    ) -> io::Result<R> {
        match &self.handle {
            Handle::Async(s) => {
                let fd = s.as_fd();
                s.async_io(tokio::io::Interest::WRITABLE, || f(fd)).await
            }
            Handle::Owned(s) => s.write_with(f).await,
            Handle::Blocking(b) => blocking_call(&b.socket, f),
        }
    }

    /// Sends a batch to `to`: with `gso`, each run of equal-size datagrams in one GSO call
    /// (Linux), else one call per datagram. A GSO call the kernel refuses is sent again one
    /// datagram at a time, and the report says so, so the caller can stop asking for GSO.
    pub async fn send_batch(&self, batch: &Batch, to: SocketAddr, gso: bool) -> SendReport {
        let mut report = SendReport::default();
        #[cfg(linux)]
        if gso {
            use crate::fastpath::gso;
            for run in batch.runs(gso::MAX_SEGMENTS, gso::MAX_BYTES) {
                let bytes = &batch.bytes()[run.start..run.end];
                if run.count > 1 {
                    let sent = self
                        .write_with(|fd| gso::send(&fd, bytes, run.segment, to))
                        .await;
                    match sent {
                        Ok(()) => {
                            report.gso_calls += 1;
                            report.datagrams += run.count as u64;
                            continue;
                        }
                        Err(e) => report.gso_refused = Some(e),
                    }
                }
                for d in bytes.chunks(run.segment) {
                    self.send_counted(d, to, &mut report).await;
                }
            }
            return report;
        }
        let _ = gso;
        for d in batch.datagrams() {
            self.send_counted(d, to, &mut report).await;
        }
        report
    }

    /// Sends one datagram with one plain send call, and reports it as `send_batch` would.
    pub async fn send_one_datagram(&self, d: &[u8], to: SocketAddr) -> SendReport {
        let mut report = SendReport::default();
        self.send_counted(d, to, &mut report).await;
        report
    }

    pub(super) async fn send_counted(&self, d: &[u8], to: SocketAddr, report: &mut SendReport) {
        report.single_calls += 1;
        match self.send_to(d, to).await {
            Ok(()) => report.datagrams += 1,
            Err(e) => report.failed = Some(e),
        }
    }
}

impl Blocking {
    /// Blocks in `recvfrom` until a datagram, the deadline or the abort signal. The receive
    /// timeout is the time left, capped at [`BLOCKING_WAKE`] so the abort signal is seen;
    /// it is set only when it changes (near the deadline), not once per block.
    fn wait(&self, buf: &mut [u8], deadline: Option<Instant>, abort: &CancellationToken) -> Waited {
        loop {
            let left = match time_left(deadline, abort) {
                Ok(left) => left,
                Err(ended) => return ended,
            };
            // SO_RCVTIMEO rounds down to the kernel's tick and 0 means "forever": at least 1 ms.
            let timeout = left.max(Duration::from_millis(1));
            if micros(timeout) != self.timeout_us.load(Ordering::Relaxed) {
                if let Err(e) = self.socket.set_read_timeout(Some(timeout)) {
                    return Waited::Failed(e);
                }
                self.timeout_us.store(micros(timeout), Ordering::Relaxed);
            }
            match self.socket.recv_from(buf) {
                Ok((n, from)) => return Waited::Datagram(n, from),
                Err(e) if retry(&e) => {}
                Err(e) => return Waited::Failed(e),
            }
        }
    }
}

/// How long a blocking wait may sleep now: the time left before `deadline`, at most
/// [`BLOCKING_WAKE`] (so the abort signal is seen); or how the wait ends without sleeping.
fn time_left(deadline: Option<Instant>, abort: &CancellationToken) -> Result<Duration, Waited> {
    if abort.is_cancelled() {
        return Err(Waited::Abort);
    }
    let now = Instant::now();
    match deadline {
        Some(d) if d <= now => Err(Waited::Deadline),
        Some(d) => Ok((d - now).min(BLOCKING_WAKE)),
        None => Ok(BLOCKING_WAKE),
    }
}

/// Runs the send call `f` on a blocking socket, again when a signal interrupted it.
fn blocking_call<R>(
    socket: &std::net::UdpSocket,
    mut f: impl FnMut(BorrowedFd<'_>) -> io::Result<R>,
) -> io::Result<R> {
    loop {
        match f(socket.as_fd()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            r => return r,
        }
    }
}

/// A blocking receive that timed out or was interrupted: look at the clock and try again.
fn retry(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn bind_transfer(local: SocketAddr, ports: Option<(u16, u16)>) -> io::Result<std::net::UdpSocket> {
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

/// What a batch send did: how many calls of each kind, and what went wrong.
#[derive(Debug, Default)]
pub struct SendReport {
    /// GSO calls that were accepted.
    pub gso_calls: u64,
    /// One-datagram calls.
    pub single_calls: u64,
    /// Datagrams handed to the kernel.
    pub datagrams: u64,
    /// The kernel refused GSO (the datagrams went one by one instead).
    pub gso_refused: Option<io::Error>,
    /// A send failed (like a lost datagram: the retransmit timer covers it).
    pub failed: Option<io::Error>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::alarms::AbortSignal;

    #[tokio::test]
    async fn transfer_socket_binds_inside_the_port_range() {
        let local: SocketAddr = "127.0.0.1:69".parse().expect("addr");
        let a = TransferSocket::bind(local, Some((40000, 40003)), true).expect("first bind");
        let b = TransferSocket::bind_blocking(local, Some((40000, 40003))).expect("second bind");
        for s in [&a, &b] {
            let port = s.local_addr().expect("addr").port();
            assert!(
                (40000..=40003).contains(&port),
                "port {port} outside the range"
            );
        }
        assert_ne!(
            a.local_addr().expect("a").port(),
            b.local_addr().expect("b").port(),
            "two transfers never share a port"
        );
    }

    #[tokio::test]
    async fn full_port_range_is_an_addr_in_use_error() {
        let local: SocketAddr = "127.0.0.1:69".parse().expect("addr");
        let _held = TransferSocket::bind(local, Some((40010, 40010)), false).expect("bind");
        let err =
            TransferSocket::bind(local, Some((40010, 40010)), true).expect_err("range is full");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }

    fn blocking_pair() -> (TransferSocket, std::net::UdpSocket) {
        let local: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let s = TransferSocket::bind_blocking(local, None).expect("bind");
        let peer = std::net::UdpSocket::bind(local).expect("peer");
        (s, peer)
    }

    fn ready<F: Future>(f: F) -> F::Output {
        // A blocking socket's futures never wait on the runtime: one poll finishes them.
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("a blocking socket's future was pending"),
        }
    }

    #[test]
    fn a_blocking_wait_returns_the_datagram_and_its_source() {
        let (s, peer) = blocking_pair();
        peer.send_to(b"\0\x04\0\x01", s.local_addr().expect("addr"))
            .expect("send");
        let mut buf = [0u8; 16];
        let deadline = Instant::now() + Duration::from_secs(5);
        match ready(s.wait(
            &mut buf,
            Some(deadline),
            &mut Alarms::new(&AbortSignal::new()),
        )) {
            Waited::Datagram(n, from) => {
                assert_eq!(&buf[..n], b"\0\x04\0\x01", "the bytes sent");
                assert_eq!(from, peer.local_addr().expect("addr"), "the source");
            }
            other => panic!("expected the datagram, got {other:?}"),
        }
    }

    #[test]
    fn a_blocking_wait_ends_at_the_deadline_not_at_the_wake_interval() {
        let (s, _peer) = blocking_pair();
        let mut buf = [0u8; 16];
        let started = Instant::now();
        let deadline = started + BLOCKING_WAKE * 3 + Duration::from_millis(20);
        let waited = ready(s.wait(
            &mut buf,
            Some(deadline),
            &mut Alarms::new(&AbortSignal::new()),
        ));
        assert!(matches!(waited, Waited::Deadline), "got {waited:?}");
        assert!(
            Instant::now() >= deadline,
            "returned {:?} before the deadline",
            deadline - Instant::now()
        );
    }

    #[test]
    fn a_blocking_wait_sees_the_abort_signal_within_the_wake_interval() {
        let (s, _peer) = blocking_pair();
        let abort = AbortSignal::new();
        let signal = abort.clone();
        let canceller = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            signal.raise();
        });
        let mut buf = [0u8; 16];
        let started = Instant::now();
        let waited = ready(s.wait(&mut buf, None, &mut Alarms::new(&abort)));
        canceller.join().expect("canceller");
        assert!(matches!(waited, Waited::Abort), "got {waited:?}");
        // Bounded by the wake interval, with room for a busy machine.
        assert!(
            started.elapsed() < BLOCKING_WAKE * 20,
            "abort seen after {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_blocking_socket_sends_a_gso_batch_as_separate_datagrams() {
        let (s, peer) = blocking_pair();
        peer.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut batch = Batch::default();
        for i in 0..3u8 {
            batch.push(&[0, 3, 0, i + 1, i, i, i]);
        }
        batch.push(&[0, 3, 0, 4]);
        let to = peer.local_addr().expect("addr");
        let report = ready(s.send_batch(&batch, to, true));
        assert!(report.failed.is_none(), "{report:?}");
        assert_eq!(
            report.datagrams, 4,
            "every datagram handed over: {report:?}"
        );
        let mut buf = [0u8; 64];
        let got: Vec<Vec<u8>> = (0..4)
            .map(|_| {
                let n = peer.recv(&mut buf).expect("recv");
                buf[..n].to_vec()
            })
            .collect();
        let sent: Vec<Vec<u8>> = batch.datagrams().map(<[u8]>::to_vec).collect();
        assert_eq!(got, sent, "the datagrams, in order, unchanged");
    }
}
