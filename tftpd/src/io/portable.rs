//! The portable backend: tokio's UDP socket, registered with the async runtime. Built and
//! tested on every platform; every other backend is measured against it.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd as _, BorrowedFd};

use tokio::net::UdpSocket;

use super::datagram::{DatagramIo, Lane};

/// A transfer's own socket through tokio.
#[derive(Debug)]
pub struct PortableSocket(UdpSocket);

impl PortableSocket {
    /// Binds a transfer socket on the listener's address `local` (the port replaced), from
    /// `ports` when given, else an ephemeral port, registered with the current runtime.
    pub fn bind(local: SocketAddr, ports: Option<(u16, u16)>) -> io::Result<Self> {
        let socket = super::socket::bind_transfer(local, ports)?;
        Ok(Self(UdpSocket::from_std(socket)?))
    }
}

impl DatagramIo for PortableSocket {
    fn lane(&self) -> Lane {
        Lane::Async
    }

    fn own_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.0.as_fd())
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.0.recv_from(buf).await
    }

    async fn send_to(&self, datagram: &[u8], to: SocketAddr) -> io::Result<()> {
        self.0.send_to(datagram, to).await.map(drop)
    }

    async fn write_with<R: Send>(
        &self,
        mut f: impl FnMut(BorrowedFd<'_>) -> io::Result<R> + Send,
    ) -> io::Result<R> {
        let fd = self.0.as_fd();
        self.0
            .async_io(tokio::io::Interest::WRITABLE, || f(fd))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn transfer_socket_binds_inside_the_port_range() {
        let local: SocketAddr = "127.0.0.1:69".parse().expect("addr");
        let a = PortableSocket::bind(local, Some((40000, 40003))).expect("first bind");
        let b = crate::io::blocking::BlockingSocket::bind(local, Some((40000, 40003)))
            .expect("second bind");
        for addr in [a.local_addr(), b.local_addr()] {
            let port = addr.expect("addr").port();
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
        let _held = PortableSocket::bind(local, Some((40010, 40010))).expect("bind");
        let err = PortableSocket::bind(local, Some((40010, 40010))).expect_err("range is full");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }
}
