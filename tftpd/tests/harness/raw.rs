//! A raw TFTP client over a std UdpSocket, for packets no well-behaved client sends. Its own
//! tiny codec keeps the tests independent of the crate under test.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// A decoded server datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    Data { block: u16, data: Vec<u8> },
    Ack(u16),
    Error { code: u16, message: String },
    Oack(Vec<(String, String)>),
    Other(Vec<u8>),
}

impl Reply {
    pub(crate) fn parse(d: &[u8]) -> Self {
        let op = if d.len() >= 2 {
            u16::from_be_bytes([d[0], d[1]])
        } else {
            0
        };
        let n = if d.len() >= 4 {
            u16::from_be_bytes([d[2], d[3]])
        } else {
            0
        };
        match op {
            3 if d.len() >= 4 => Self::Data {
                block: n,
                data: d[4..].to_vec(),
            },
            4 if d.len() == 4 => Self::Ack(n),
            5 if d.len() >= 5 => Self::Error {
                code: n,
                message: String::from_utf8_lossy(&d[4..d.len() - 1]).into_owned(),
            },
            6 => {
                let fields: Vec<String> = d[2..]
                    .split(|&b| b == 0)
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect();
                let pairs = fields
                    .chunks(2)
                    .filter(|c| c.len() == 2)
                    .map(|c| (c[0].clone(), c[1].clone()))
                    .collect();
                Self::Oack(pairs)
            }
            _ => Self::Other(d.to_vec()),
        }
    }
}

pub(crate) fn request(op: u16, name: &[u8], mode: &str, options: &[(&str, &str)]) -> Vec<u8> {
    let mut d = op.to_be_bytes().to_vec();
    d.extend_from_slice(name);
    d.push(0);
    d.extend_from_slice(mode.as_bytes());
    d.push(0);
    for (k, v) in options {
        d.extend_from_slice(k.as_bytes());
        d.push(0);
        d.extend_from_slice(v.as_bytes());
        d.push(0);
    }
    d
}

pub(crate) fn ack(block: u16) -> Vec<u8> {
    let mut d = vec![0, 4];
    d.extend_from_slice(&block.to_be_bytes());
    d
}

pub(crate) fn data(block: u16, payload: &[u8]) -> Vec<u8> {
    let mut d = vec![0, 3];
    d.extend_from_slice(&block.to_be_bytes());
    d.extend_from_slice(payload);
    d
}

pub(crate) fn error(code: u16, msg: &str) -> Vec<u8> {
    let mut d = vec![0, 5];
    d.extend_from_slice(&code.to_be_bytes());
    d.extend_from_slice(msg.as_bytes());
    d.push(0);
    d
}

/// One client socket.
pub(crate) struct Raw {
    pub(crate) socket: UdpSocket,
    pub(crate) server: SocketAddr,
}

impl Raw {
    pub(crate) fn new(server: SocketAddr) -> Self {
        let bind = if server.is_ipv6() {
            "[::1]:0"
        } else {
            "127.0.0.1:0"
        };
        let socket = UdpSocket::bind(bind).expect("binding a client socket");
        Self { socket, server }
    }

    /// A client whose socket is bound to `source` (e.g. another 127.x address on `lo`).
    pub(crate) fn from_source(source: std::net::IpAddr, server: SocketAddr) -> Self {
        let socket = UdpSocket::bind((source, 0)).expect("binding a client socket");
        Self { socket, server }
    }

    pub(crate) fn send(&self, d: &[u8]) {
        self.socket.send_to(d, self.server).expect("send");
    }

    pub(crate) fn send_to(&self, d: &[u8], to: SocketAddr) {
        self.socket.send_to(d, to).expect("send_to");
    }

    /// Receives one datagram within `timeout`.
    pub(crate) fn recv(&self, timeout: Duration) -> Option<(Reply, SocketAddr)> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 65536];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            self.socket
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .expect("set_read_timeout");
            match self.socket.recv_from(&mut buf) {
                Ok((n, from)) => return Some((Reply::parse(&buf[..n]), from)),
                // A signal to the test process (seen in lifecycle.rs, about one run in
                // eight) is not a timeout: wait out the rest.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
    }

    /// Receives, failing the test if nothing arrives.
    pub(crate) fn expect(&self, timeout: Duration, what: &str) -> (Reply, SocketAddr) {
        self.recv(timeout)
            .unwrap_or_else(|| panic!("expected {what} within {timeout:?}, got nothing"))
    }

    /// Downloads `name` (`len` bytes, `pattern(len, seed)`, at most 4 blocks of 512) while a
    /// stranger sends an ACK to the transfer's port: the stranger gets ERROR 5 from that
    /// port, and the transfer's bytes are whole. `what` names the case in messages.
    pub(crate) fn download_past_a_stranger(&self, name: &str, len: usize, seed: u64, what: &str) {
        self.send(&request(1, name.as_bytes(), "octet", &[]));
        let (first, tid) = self.expect(Duration::from_secs(5), "DATA 1");
        let Reply::Data { block: 1, data } = first else {
            panic!("{what}: expected DATA 1, got {first:?}");
        };
        let stranger = Self::new(self.server);
        stranger.send_to(&ack(1), tid);
        match stranger.expect(Duration::from_secs(5), "ERROR 5") {
            (Reply::Error { code: 5, .. }, from) => {
                assert_eq!(from, tid, "{what}: from the transfer's port");
            }
            other => panic!("{what}: expected ERROR 5, got {other:?}"),
        }
        let mut got = data;
        let last = u16::try_from(len / 512 + 1).expect("a few blocks");
        for block in 1..last {
            self.send_to(&ack(block), tid);
            match self.expect(Duration::from_secs(5), "DATA") {
                (Reply::Data { block: b, data }, _) if b == block + 1 => {
                    got.extend_from_slice(&data);
                }
                other => panic!("{what}: expected DATA {}, got {other:?}", block + 1),
            }
        }
        self.send_to(&ack(last), tid);
        assert!(
            got == super::pattern(len, seed),
            "{what}: the transfer was not disturbed"
        );
    }

    /// Waits for the drain's ERROR 0 "shutting down" to a transfer whose client went quiet
    /// after DATA 1; retransmissions of DATA 1 may come first.
    pub(crate) fn expect_drain_error(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            match self.recv(deadline.saturating_duration_since(Instant::now())) {
                Some((Reply::Error { code: 0, message }, _)) => {
                    assert!(message.contains("shutting down"), "{message}");
                    return;
                }
                Some((Reply::Data { block: 1, .. }, _)) => {}
                other => panic!("expected ERROR 0 from the drain, got {other:?}"),
            }
        }
    }

    /// Every datagram that arrives within `window`.
    pub(crate) fn collect(&self, window: Duration) -> Vec<(Reply, SocketAddr)> {
        let end = Instant::now() + window;
        let mut v = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.recv(left) {
                Some(x) => v.push(x),
                None => break,
            }
        }
        v
    }

    /// A whole lock-step octet download; returns the bytes (or the ERROR).
    pub(crate) fn download(
        &self,
        name: &str,
        options: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<Vec<u8>, Reply> {
        self.download_in("octet", name, options, timeout)
    }

    /// A whole lock-step download in `mode`; returns the bytes as they were on the wire.
    pub(crate) fn download_in(
        &self,
        mode: &str,
        name: &str,
        options: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<Vec<u8>, Reply> {
        self.send(&request(1, name.as_bytes(), mode, options));
        let mut out = Vec::new();
        let mut blksize = 512;
        let mut expected: u16 = 1;
        loop {
            let (reply, from) = self.expect(timeout, "DATA, OACK or ERROR");
            match reply {
                Reply::Oack(opts) => {
                    if let Some((_, v)) = opts.iter().find(|(k, _)| k == "blksize") {
                        blksize = v.parse().expect("numeric blksize");
                    }
                    self.send_to(&ack(0), from);
                }
                Reply::Data { block, data } if block == expected => {
                    out.extend_from_slice(&data);
                    self.send_to(&ack(block), from);
                    expected = expected.wrapping_add(1);
                    if data.len() < blksize {
                        return Ok(out);
                    }
                }
                Reply::Data { .. } => {}
                other => return Err(other),
            }
        }
    }
}
