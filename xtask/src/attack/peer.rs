//! A raw client that does answer (from 127.0.0.1), for attacks that need the server's replies:
//! the hostile requests of the log-forging row and the uploads cut short by kill -9.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use anyhow::Context as _;

pub(crate) struct Peer {
    socket: UdpSocket,
}

impl Peer {
    pub(crate) fn new() -> anyhow::Result<Self> {
        Ok(Self {
            socket: UdpSocket::bind("127.0.0.1:0").context("binding a client socket")?,
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.socket
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub(crate) fn send(&self, d: &[u8], to: SocketAddr) -> anyhow::Result<()> {
        self.socket.send_to(d, to).context("sending")?;
        Ok(())
    }

    /// The next datagram and its source, or `None` after `timeout`.
    pub(crate) fn recv(&self, timeout: Duration) -> Option<(Vec<u8>, SocketAddr)> {
        self.socket.set_read_timeout(Some(timeout)).ok()?;
        let mut buf = vec![0u8; 65536];
        let (n, from) = self.socket.recv_from(&mut buf).ok()?;
        buf.truncate(n);
        Some((buf, from))
    }
}
