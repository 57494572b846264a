//! A transfer's own socket on the async runtime, registered for readability only
//! (`performance.batching.transfer_recvmmsg`, on by default; docs/adr/0026).
//!
//! tokio's `UdpSocket` registers for reading and writing, edge-triggered, so each datagram
//! a transfer sends makes its socket writable again once the kernel frees the buffer: an
//! epoll event per DATA, and a parked worker woken for nothing. A transfer's sends almost
//! never find the buffer full, so here they are made at once, and only one that does find it
//! full registers a duplicate descriptor for writability until it has gone.
//!
//! The receive on Linux takes up to two datagrams in one `recvmmsg`. Fewer than two means
//! the queue is empty, so readiness is cleared there and then, without the second receive
//! that would only answer EAGAIN; a second datagram is kept for the next receive. A
//! lock-step block thus costs one receive call instead of two. Elsewhere a receive reads
//! one datagram and the next one finds out that the queue is empty, as tokio's does.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd as _, AsRawFd, BorrowedFd};
use std::sync::Mutex;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::datagram::{DatagramIo, Lane};

/// See the module doc.
#[derive(Debug)]
pub struct OwnedSocket {
    fd: AsyncFd<std::net::UdpSocket>,
    /// The second datagram of a two-datagram receive, until the next receive takes it.
    /// Only that receive and the transfer's own task touch it: never contended.
    held: Mutex<Held>,
    /// Receive two datagrams per call (Linux; elsewhere always false).
    recv_two: bool,
}

#[derive(Debug, Default)]
struct Held {
    buf: Vec<u8>,
    datagram: Option<(usize, SocketAddr)>,
}

impl OwnedSocket {
    /// Binds a transfer socket on the listener's address `local` (the port replaced), from
    /// `ports` when given, else an ephemeral port, registered for reading with two-datagram
    /// receives.
    pub fn bind(local: SocketAddr, ports: Option<(u16, u16)>) -> io::Result<Self> {
        Self::new(super::socket::bind_transfer(local, ports)?, true)
    }

    /// Registers `socket` (non-blocking) with the current runtime for readability. With
    /// `recv_two` (ignored where `recvmmsg` is not built) receives take two datagrams a call.
    pub fn new(socket: std::net::UdpSocket, recv_two: bool) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        Ok(Self {
            fd: register(socket, Interest::READABLE)?,
            held: Mutex::default(),
            recv_two: recv_two && cfg!(linux),
        })
    }

    /// The socket.
    pub fn socket(&self) -> &std::net::UdpSocket {
        self.fd.get_ref()
    }

    /// Receives one datagram and its source, waiting for one when none is queued. A datagram
    /// longer than `buf` is cut to its length.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        if let Some(got) = self.take_held(buf) {
            return Ok(got);
        }
        loop {
            let mut ready = self.fd.readable().await?;
            #[cfg(linux)]
            if self.recv_two {
                let mut held = self.lock();
                if held.buf.len() < buf.len() {
                    held.buf.resize(buf.len(), 0);
                }
                let spare = &mut held.buf[..buf.len()];
                match crate::fastpath::mmsg::recv_two(self.fd.get_ref(), buf, spare) {
                    Ok((received, [first, second])) => {
                        if received < 2 {
                            // The queue is empty: no need for a call to say so.
                            ready.clear_ready();
                        }
                        match (first, second) {
                            (Some(got), second) => {
                                held.datagram = second;
                                return Ok(got);
                            }
                            // A datagram without a usable source (never for UDP over IP) is
                            // as if not received; the second then comes first.
                            (None, Some((n, from))) => {
                                let n = n.min(buf.len());
                                buf[..n].copy_from_slice(&held.buf[..n]);
                                return Ok((n, from));
                            }
                            (None, None) => {}
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        ready.clear_ready();
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            match ready.try_io(|s| s.get_ref().recv_from(buf)) {
                Ok(result) => return result,
                Err(_would_block) => {}
            }
        }
    }

    /// The datagram a two-datagram receive kept, copied into `buf`.
    fn take_held(&self, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
        if !self.recv_two {
            return None;
        }
        let mut held = self.lock();
        let (n, from) = held.datagram.take()?;
        let n = n.min(buf.len());
        buf[..n].copy_from_slice(&held.buf[..n]);
        Some((n, from))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        // Only this transfer's task uses it; a poisoned lock still holds consistent data.
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs the send call `f` on the descriptor at once; if the send buffer is full, again
    /// each time the socket becomes writable until it goes.
    pub async fn write_with<R>(
        &self,
        mut f: impl FnMut(BorrowedFd<'_>) -> io::Result<R>,
    ) -> io::Result<R> {
        match f(self.fd.as_fd()) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            done => return done,
        }
        // The buffer is full: watch for writability through a second descriptor (the
        // socket itself stays registered for reading only), until the send goes.
        let watch = register(self.fd.as_fd().try_clone_to_owned()?, Interest::WRITABLE)?;
        loop {
            let mut ready = watch.writable().await?;
            match ready.try_io(|_| f(self.fd.as_fd())) {
                Ok(done) => return done,
                Err(_would_block) => {}
            }
        }
    }

    /// Sends one datagram to `to`.
    pub async fn send_to(&self, datagram: &[u8], to: SocketAddr) -> io::Result<()> {
        let socket = self.fd.get_ref();
        self.write_with(|_| socket.send_to(datagram, to).map(drop))
            .await
    }
}

impl DatagramIo for OwnedSocket {
    fn lane(&self) -> Lane {
        Lane::Async
    }

    fn own_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.fd.as_fd())
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket().local_addr()
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        Self::recv_from(self, buf).await
    }

    async fn send_to(&self, datagram: &[u8], to: SocketAddr) -> io::Result<()> {
        Self::send_to(self, datagram, to).await
    }

    async fn write_with<R: Send>(
        &self,
        f: impl FnMut(BorrowedFd<'_>) -> io::Result<R> + Send,
    ) -> io::Result<R> {
        Self::write_with(self, f).await
    }
}

/// Registers a descriptor this process owns with the current runtime for `interest`.
fn register<T: AsRawFd>(owned: T, interest: Interest) -> io::Result<AsyncFd<T>> {
    // SAFETY: `T` owns its descriptor (a socket or an `OwnedFd`), which stays open and the
    // same until the `AsyncFd` is dropped, and `as_raw_fd` always returns it.
    unsafe { AsyncFd::register_with_interest(owned, interest) }.map_err(|e| e.into_parts().1)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn pair(recv_two: bool) -> (OwnedSocket, std::net::UdpSocket) {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let owned = OwnedSocket::new(s, recv_two).expect("register");
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").expect("peer");
        (owned, peer)
    }

    async fn recv(s: &OwnedSocket, buf: &mut [u8]) -> (Vec<u8>, SocketAddr) {
        let (n, from) = tokio::time::timeout(Duration::from_secs(5), s.recv_from(buf))
            .await
            .expect("a datagram within 5 s")
            .expect("recv");
        (buf[..n].to_vec(), from)
    }

    /// Every datagram arrives once, in order, with its source, however they are queued:
    /// one at a time, two, or three at once (the second of a pair is kept, the third read
    /// by the next call).
    #[tokio::test]
    async fn every_datagram_arrives_once_in_order_however_they_queue() {
        for recv_two in [false, true] {
            let (s, peer) = pair(recv_two);
            let to = s.socket().local_addr().expect("addr");
            let me = peer.local_addr().expect("peer addr");
            let mut buf = [0u8; 64];
            peer.send_to(b"one", to).expect("send");
            assert_eq!(recv(&s, &mut buf).await, (b"one".to_vec(), me));
            for d in [&b"two"[..], b"three", b"four"] {
                peer.send_to(d, to).expect("send");
            }
            // Let all three queue before the next receive.
            tokio::time::sleep(Duration::from_millis(20)).await;
            for want in [&b"two"[..], b"three", b"four"] {
                assert_eq!(recv(&s, &mut buf).await.0, want, "recv_two = {recv_two}");
            }
            peer.send_to(b"five", to).expect("send");
            assert_eq!(
                recv(&s, &mut buf).await.0,
                b"five",
                "a datagram after the queue ran dry still wakes the receive (recv_two = {recv_two})"
            );
        }
    }

    #[tokio::test]
    async fn a_datagram_longer_than_the_buffer_is_cut_to_it_in_either_slot() {
        let (s, peer) = pair(true);
        let to = s.socket().local_addr().expect("addr");
        peer.send_to(b"0123456789", to).expect("send");
        peer.send_to(b"abcdefghij", to).expect("send");
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut buf = [0u8; 4];
        assert_eq!(recv(&s, &mut buf).await.0, b"0123");
        assert_eq!(recv(&s, &mut buf).await.0, b"abcd", "the kept one too");
    }

    /// A send that finds the buffer full (EAGAIN) is made again once the socket is
    /// writable, through the second descriptor, rather than failing. (Loopback frees a
    /// datagram's buffer as it is delivered, so a real full buffer cannot be made here:
    /// the call reports one.)
    #[tokio::test]
    async fn a_send_that_finds_the_buffer_full_is_made_again_when_writable() {
        let (s, peer) = pair(true);
        peer.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let to = peer.local_addr().expect("addr");
        let mut calls = 0;
        let sent = tokio::time::timeout(
            Duration::from_secs(5),
            s.write_with(|fd| {
                calls += 1;
                if calls == 1 {
                    return Err(io::Error::from(io::ErrorKind::WouldBlock));
                }
                let socket = socket2::SockRef::from(&fd);
                socket.send_to(b"after a full buffer", &to.into())
            }),
        )
        .await
        .expect("writability came")
        .expect("sent");
        assert_eq!(sent, 19);
        assert_eq!(calls, 2, "one refused call, one that went");
        let mut buf = [0u8; 64];
        let n = peer.recv(&mut buf).expect("the datagram arrived");
        assert_eq!(&buf[..n], b"after a full buffer");
        s.send_to(b"and the next", to).await.expect("send");
        let n = peer.recv(&mut buf).expect("the next one too");
        assert_eq!(&buf[..n], b"and the next");
    }
}
