//! The blocking backend, for a transfer on a thread of its own
//! (`performance.cpu.transfer_threads`): a lock-step block costs one `recvfrom` and one
//! `sendto`, with none of the `epoll_wait`, EAGAIN retries and cross-thread wake-ups of the
//! async path (docs/adr/0023). Every call blocks the calling thread, so none may be made
//! from an async worker; its futures finish on their first poll.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd as _, BorrowedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::alarms::Alarms;
use super::datagram::{DatagramIo, Lane, Waited};

/// The longest a blocked receive sleeps before it looks at the drain's abort signal: the
/// most a blocking transfer can lag behind the drain deadline.
pub const BLOCKING_WAKE: Duration = Duration::from_millis(100);

/// A transfer's own blocking socket.
#[derive(Debug)]
pub struct BlockingSocket {
    socket: std::net::UdpSocket,
    /// The receive timeout (`SO_RCVTIMEO`) now set, in µs: changed only when it must be, so
    /// a block's receive costs no `setsockopt`.
    timeout_us: AtomicU64,
}

impl BlockingSocket {
    /// Binds a blocking transfer socket on the listener's address `local` (the port
    /// replaced), from `ports` when given, else an ephemeral port.
    pub fn bind(local: SocketAddr, ports: Option<(u16, u16)>) -> io::Result<Self> {
        let socket = super::socket::bind_transfer(local, ports)?;
        socket.set_nonblocking(false)?;
        socket.set_read_timeout(Some(BLOCKING_WAKE))?;
        Ok(Self {
            socket,
            timeout_us: AtomicU64::new(micros(BLOCKING_WAKE)),
        })
    }
}

impl DatagramIo for BlockingSocket {
    fn lane(&self) -> Lane {
        Lane::Thread
    }

    fn own_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.socket.as_fd())
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        loop {
            match self.socket.recv_from(buf) {
                Err(e) if retry(&e) => {}
                r => return r,
            }
        }
    }

    async fn send_to(&self, datagram: &[u8], to: SocketAddr) -> io::Result<()> {
        self.socket.send_to(datagram, to).map(drop)
    }

    async fn write_with<R: Send>(
        &self,
        mut f: impl FnMut(BorrowedFd<'_>) -> io::Result<R> + Send,
    ) -> io::Result<R> {
        // Again when a signal interrupted the call.
        loop {
            match f(self.socket.as_fd()) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return r,
            }
        }
    }

    async fn wait(&self, buf: &mut [u8], deadline: Option<Instant>, alarms: &mut Alarms) -> Waited {
        self.wait_blocking(buf, deadline, alarms.abort())
    }
}

impl BlockingSocket {
    /// Blocks in `recvfrom` until a datagram, the deadline or the abort signal. The receive
    /// timeout is the time left, capped at [`BLOCKING_WAKE`] so the abort signal is seen;
    /// it is set only when it changes (near the deadline), not once per block.
    fn wait_blocking(
        &self,
        buf: &mut [u8],
        deadline: Option<Instant>,
        abort: &CancellationToken,
    ) -> Waited {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::alarms::AbortSignal;
    use crate::io::batch::Batch;
    use crate::io::datagram::send_batch;

    fn blocking_pair() -> (BlockingSocket, std::net::UdpSocket) {
        let local: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let s = BlockingSocket::bind(local, None).expect("bind");
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
        let report = ready(send_batch(&s, &batch, to, true));
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
