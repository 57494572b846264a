//! Datagram sockets: binding listeners (dual-stack where asked) and per-transfer sockets
//! (ephemeral, or from a configured port range), and the one place that sends and receives.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::{Mutex, mpsc};

use super::batch::Batch;

/// How many random ports of a range are tried before scanning it in order.
const RANDOM_PORT_TRIES: usize = 32;

/// Binds a listening socket. `[::]` binds dual-stack (IPv4 arrives as v4-mapped addresses)
/// so one socket serves both families, as "every address" promises.
pub fn bind_listener(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    bind_one(addr)
}

/// Binds `n` listening sockets on `addr` in one `SO_REUSEPORT` group (`n` = 1: one plain
/// socket, as [`bind_listener`]). With port 0 the first socket's port is used for the rest.
/// The kernel spreads requests over the group by a hash of the client's address and port,
/// so one client's datagrams keep reaching the same socket.
pub fn bind_listener_group(addr: SocketAddr, n: usize) -> io::Result<Vec<std::net::UdpSocket>> {
    if n <= 1 {
        return Ok(vec![bind_listener(addr)?]);
    }
    let first = bind_reuseport(addr, dual_stack(addr))?;
    let mut group = join_group(&first, n - 1)?;
    group.insert(0, first);
    Ok(group)
}

/// Binds `more` sockets into the `SO_REUSEPORT` group of the bound socket `existing` (one
/// of ours, or one systemd passed with `ReusePort=yes`). Fails with `InvalidInput` when
/// `existing` has no `SO_REUSEPORT`: the kernel would refuse the address as in use.
pub fn join_group(
    existing: &std::net::UdpSocket,
    more: usize,
) -> io::Result<Vec<std::net::UdpSocket>> {
    let s = socket2::SockRef::from(existing);
    if !s.reuse_port()? {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the socket has no SO_REUSEPORT (systemd: ReusePort=yes in the .socket unit)",
        ));
    }
    let addr = existing.local_addr()?;
    let dual = addr.is_ipv6() && !s.only_v6()?;
    (0..more).map(|_| bind_reuseport(addr, dual)).collect()
}

fn dual_stack(addr: SocketAddr) -> bool {
    addr.is_ipv6() && addr.ip().is_unspecified()
}

fn bind_reuseport(addr: SocketAddr, dual: bool) -> io::Result<std::net::UdpSocket> {
    let socket = new_socket(addr)?;
    if addr.is_ipv6() {
        socket.set_only_v6(!dual)?;
    }
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

fn new_socket(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_nonblocking(true)?;
    socket.set_cloexec(true)?;
    Ok(socket)
}

/// A transfer's socket: its own (a new TID, RFC 1350 §4, on the listener's address family),
/// or in single-port mode the listening socket, with the listener handing over what this
/// transfer's client sends.
#[derive(Debug)]
pub struct TransferSocket {
    pub(super) socket: Arc<UdpSocket>,
    /// Single-port mode: the client's datagrams, routed here by the listener.
    inbox: Option<(Mutex<mpsc::Receiver<Vec<u8>>>, SocketAddr)>,
}

impl TransferSocket {
    /// Binds a socket for a transfer with `peer`, on the listener's local address `local`
    /// (the port replaced), from `ports` when given, else an ephemeral port.
    pub fn bind(local: SocketAddr, ports: Option<(u16, u16)>) -> io::Result<Self> {
        let ip = match local.ip() {
            // A dual-stack listener must answer v4-mapped peers: keep the v6 wildcard.
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            ip => ip,
        };
        let socket = match ports {
            None => bind_one(SocketAddr::new(ip, 0))?,
            Some((lo, hi)) => bind_in_range(ip, lo, hi)?,
        };
        Ok(Self {
            socket: Arc::new(UdpSocket::from_std(socket)?),
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
            socket,
            inbox: Some((Mutex::new(inbox), peer)),
        }
    }

    /// The socket's descriptor when it is the transfer's own (a kernel filter may be
    /// attached to it); `None` for the shared listening socket.
    pub fn own_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd as _;
        self.inbox.is_none().then(|| self.socket.as_fd())
    }

    /// The local address (the transfer's TID on our side).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Receives one datagram and its source.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let Some((inbox, peer)) = &self.inbox else {
            return self.socket.recv_from(buf).await;
        };
        let Some(d) = inbox.lock().await.recv().await else {
            // The listener is gone (shutdown): nothing more will arrive.
            return std::future::pending().await;
        };
        let n = d.len().min(buf.len());
        buf[..n].copy_from_slice(&d[..n]);
        Ok((n, *peer))
    }

    /// Sends one datagram.
    pub async fn send_to(&self, datagram: &[u8], to: SocketAddr) -> io::Result<()> {
        self.socket.send_to(datagram, to).await.map(drop)
    }

    /// Sends a batch to `to`: with `gso`, each run of equal-size datagrams in one GSO call
    /// (Linux), else one call per datagram. A GSO call the kernel refuses is sent again one
    /// datagram at a time, and the report says so, so the caller can stop asking for GSO.
    /// With `zerocopy`, datagrams sent one per call of at least that many bytes go with
    /// `MSG_ZEROCOPY` (Linux): the caller must then keep the batch's buffer until the kernel
    /// reports completion (`report.zerocopy_sends`).
    pub async fn send_batch(
        &self,
        batch: &Batch,
        to: SocketAddr,
        gso: bool,
        zerocopy: Option<usize>,
    ) -> SendReport {
        let mut report = SendReport::default();
        #[cfg(target_os = "linux")]
        if gso {
            use crate::fastpath::gso;
            for run in batch.runs(gso::MAX_SEGMENTS, gso::MAX_BYTES) {
                let bytes = &batch.bytes()[run.start..run.end];
                if run.count > 1 {
                    let sent = self
                        .socket
                        .async_io(tokio::io::Interest::WRITABLE, || {
                            gso::send(&self.socket, bytes, run.segment, to)
                        })
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
                    self.send_one(d, to, zerocopy, &mut report).await;
                }
            }
            return report;
        }
        let _ = gso;
        for d in batch.datagrams() {
            self.send_one(d, to, zerocopy, &mut report).await;
        }
        report
    }

    /// Sends one datagram of a batch: by `MSG_ZEROCOPY` when it is long enough and the
    /// kernel has not refused it, else by copy (also after ENOBUFS: the socket's allowance
    /// of pinned pages is used up for now).
    async fn send_one(
        &self,
        d: &[u8],
        to: SocketAddr,
        zerocopy: Option<usize>,
        report: &mut SendReport,
    ) {
        #[cfg(target_os = "linux")]
        if let Some(min) = zerocopy
            && d.len() >= min
            && report.zerocopy_refused.is_none()
        {
            use crate::fastpath::zerocopy::{self, Refusal};
            let s = &*self.socket;
            let sent = s
                .async_io(tokio::io::Interest::WRITABLE, || zerocopy::send(s, d, to))
                .await;
            match sent {
                Ok(()) => {
                    report.zerocopy_sends += 1;
                    report.datagrams += 1;
                    return;
                }
                Err(e) => match Refusal::of(&e) {
                    Refusal::NoBuffers => report.zerocopy_fallbacks += 1,
                    Refusal::Unsupported => report.zerocopy_refused = Some(e),
                    Refusal::Other => {}
                },
            }
        }
        let _ = zerocopy;
        self.send_counted(d, to, report).await;
    }

    pub(super) async fn send_counted(&self, d: &[u8], to: SocketAddr, report: &mut SendReport) {
        report.single_calls += 1;
        match self.send_to(d, to).await {
            Ok(()) => report.datagrams += 1,
            Err(e) => report.failed = Some(e),
        }
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
    /// DATA sent as a `MSG_MORE` header + `sendfile` (each such pair counted once).
    pub sendfile_calls: u64,
    /// The kernel refused `sendfile` (the block went by `pread` + send instead).
    pub sendfile_refused: Option<io::Error>,
    /// Datagrams sent with `MSG_ZEROCOPY` (their buffer is lent until completion).
    pub zerocopy_sends: u64,
    /// Zerocopy sends the kernel answered ENOBUFS, sent again by copy.
    pub zerocopy_fallbacks: u64,
    /// The kernel refused `MSG_ZEROCOPY` (EINVAL, EOPNOTSUPP); sent by copy.
    pub zerocopy_refused: Option<io::Error>,
}

fn bind_one(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let socket = new_socket(addr)?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        socket.set_only_v6(false)?;
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Binds a port in `lo..=hi`: random tries first (so concurrent transfers don't collide on
/// the same next port), then every port in order, so a nearly full range still works.
fn bind_in_range(ip: IpAddr, lo: u16, hi: u16) -> io::Result<std::net::UdpSocket> {
    let random = (0..RANDOM_PORT_TRIES).map(|_| fastrand::u16(lo..=hi));
    let mut last_err = None;
    for port in random.chain(lo..=hi) {
        match bind_one(SocketAddr::new(ip, port)) {
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrInUse)))
}

/// The canonical form of a peer address: v4-mapped IPv6 becomes IPv4, so per-client limits
/// and logs see one address per client whichever socket it came in on.
pub fn canonical_ip(addr: SocketAddr) -> IpAddr {
    addr.ip().to_canonical()
}

/// The wildcard address of `addr`'s family.
pub fn unspecified_like(addr: SocketAddr) -> IpAddr {
    match addr {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn transfer_socket_binds_inside_the_port_range() {
        let local: SocketAddr = "127.0.0.1:69".parse().expect("addr");
        let a = TransferSocket::bind(local, Some((40000, 40003))).expect("first bind");
        let b = TransferSocket::bind(local, Some((40000, 40003))).expect("second bind");
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
        let _held = TransferSocket::bind(local, Some((40010, 40010))).expect("bind");
        let err = TransferSocket::bind(local, Some((40010, 40010))).expect_err("range is full");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }

    #[test]
    fn a_reuseport_group_shares_one_port_and_stays_closed_to_others() {
        let group = bind_listener_group("127.0.0.1:0".parse().expect("addr"), 3).expect("group");
        assert_eq!(group.len(), 3, "three sockets");
        let port = group[0].local_addr().expect("addr").port();
        for s in &group {
            assert_eq!(s.local_addr().expect("addr").port(), port, "one port");
        }
        // A socket outside the group (no SO_REUSEPORT) cannot take the port.
        let err = bind_listener(SocketAddr::from(([127, 0, 0, 1], port))).expect_err("in use");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        let extra = join_group(&group[0], 1).expect("join");
        assert_eq!(extra[0].local_addr().expect("addr").port(), port);
    }

    #[test]
    fn a_plain_socket_cannot_be_joined() {
        let plain = bind_listener("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let err = join_group(&plain, 1).expect_err("no SO_REUSEPORT");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    }

    #[test]
    fn mapped_addresses_are_canonicalised() {
        let mapped: SocketAddr = "[::ffff:10.1.2.3]:1000".parse().expect("addr");
        assert_eq!(
            canonical_ip(mapped),
            "10.1.2.3".parse::<IpAddr>().expect("ip")
        );
    }
}
