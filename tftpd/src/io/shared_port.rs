//! The single-port backend (`single_port = true`): a transfer answered from the listening
//! socket, so one port carries every transfer through NAT and firewalls. The listener routes
//! what this transfer's client sends into its inbox.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd as _, BorrowedFd};
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::{Mutex, mpsc};

use super::datagram::{DatagramIo, Lane};

/// A transfer on the listening socket.
#[derive(Debug)]
pub struct SharedPortSocket {
    socket: Arc<UdpSocket>,
    inbox: Mutex<mpsc::Receiver<Vec<u8>>>,
    peer: SocketAddr,
}

impl SharedPortSocket {
    /// A transfer with `peer` answered from the listening socket `socket`: what `peer`
    /// sends arrives through `inbox`.
    pub fn new(socket: Arc<UdpSocket>, inbox: mpsc::Receiver<Vec<u8>>, peer: SocketAddr) -> Self {
        Self {
            socket,
            inbox: Mutex::new(inbox),
            peer,
        }
    }
}

impl DatagramIo for SharedPortSocket {
    fn lane(&self) -> Lane {
        Lane::Async
    }

    /// Not the transfer's own: the listening socket's filter is the listener's.
    fn own_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let Some(d) = self.inbox.lock().await.recv().await else {
            // The listener is gone (shutdown): nothing more will arrive.
            return std::future::pending().await;
        };
        let n = d.len().min(buf.len());
        buf[..n].copy_from_slice(&d[..n]);
        Ok((n, self.peer))
    }

    async fn send_to(&self, datagram: &[u8], to: SocketAddr) -> io::Result<()> {
        self.socket.send_to(datagram, to).await.map(drop)
    }

    async fn write_with<R: Send>(
        &self,
        mut f: impl FnMut(BorrowedFd<'_>) -> io::Result<R> + Send,
    ) -> io::Result<R> {
        let fd = self.socket.as_fd();
        self.socket
            .async_io(tokio::io::Interest::WRITABLE, || f(fd))
            .await
    }
}
