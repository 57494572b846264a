//! One transfer's UDP socket, with the impairment applied on the way out and on the way in.
//!
//! Unimpaired, [`Link::send_to`] and [`Link::recv`] are the socket calls and nothing more.
//! Impaired, datagrams wait in a queue per direction until they are due (`delay`), a held one
//! waits until the next datagram has passed it, and queued bytes live in pooled buffers, so a
//! long transfer allocates only while its queues first grow.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;

use tokio::net::UdpSocket;
use tokio::time::Instant;

use crate::impair::{Fate, HOLD_LIMIT, Impairer, Impairment, Way};

/// What the impairment did to one link's datagrams, both ways.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImpairCounts {
    /// Datagrams dropped.
    pub dropped: u64,
    /// Extra copies delivered.
    pub duplicated: u64,
    /// Datagrams held back to be overtaken.
    pub held: u64,
}

impl ImpairCounts {
    /// Adds another link's counts.
    pub fn add(&mut self, other: &Self) {
        self.dropped += other.dropped;
        self.duplicated += other.duplicated;
        self.held += other.held;
    }
}

/// A socket and, when impaired, its queues.
#[derive(Debug)]
pub struct Link {
    socket: UdpSocket,
    shaper: Option<Shaper>,
    counts: ImpairCounts,
}

#[derive(Debug)]
struct Shaper {
    delay: std::time::Duration,
    send: Impairer,
    recv: Impairer,
    outbound: Queue,
    inbound: Queue,
    pool: Vec<Vec<u8>>,
    buf_len: usize,
}

/// A datagram waiting to be delivered.
#[derive(Debug)]
struct Pending {
    due: Instant,
    peer: SocketAddr,
    len: usize,
    buf: Vec<u8>,
}

/// One direction's datagrams in delivery order (dues never decrease along `ready`).
#[derive(Debug, Default)]
struct Queue {
    ready: VecDeque<Pending>,
    /// A datagram held back, and when it is released even if nothing overtook it.
    held: Option<(Pending, Instant)>,
}

impl Queue {
    fn push_ready(&mut self, mut p: Pending) {
        if let Some(last) = self.ready.back() {
            p.due = p.due.max(last.due);
        }
        self.ready.push_back(p);
    }

    /// Queues `p` by its fate; `copy` is the duplicate, when the fate asks for one.
    fn push(&mut self, p: Pending, copy: Option<Pending>, hold: bool, now: Instant) {
        if hold {
            if let Some((old, _)) = self.held.take() {
                self.push_ready(old);
            }
            self.held = Some((p, now + HOLD_LIMIT));
        } else {
            self.push_ready(p);
            // The held datagram has now been overtaken.
            if let Some((old, _)) = self.held.take() {
                self.push_ready(old);
            }
        }
        if let Some(c) = copy {
            self.push_ready(c);
        }
    }

    fn release_expired(&mut self, now: Instant) {
        if self.held.as_ref().is_some_and(|(_, at)| *at <= now) {
            let (p, _) = self.held.take().expect("checked above");
            self.push_ready(p);
        }
    }

    /// When something in this queue next needs attention.
    fn next_event(&self) -> Option<Instant> {
        let ready = self.ready.front().map(|p| p.due);
        let held = self.held.as_ref().map(|(_, at)| *at);
        match (ready, held) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn pop_due(&mut self, now: Instant) -> Option<Pending> {
        if self.ready.front().is_some_and(|p| p.due <= now) {
            self.ready.pop_front()
        } else {
            None
        }
    }
}

/// Every client socket's receive buffer. The kernel default (~208 KiB) holds about a dozen
/// 8 KiB datagrams once their bookkeeping is counted, so a window of 16 × 8 KiB overflowed it
/// and each loss cost the client a timeout: the generator, not the server, set the pace. As
/// root it is forced past `rmem_max`; otherwise the kernel caps it there.
pub const RECV_BUFFER: usize = 4 * 1024 * 1024;

impl Link {
    /// Binds a socket of `server`'s family on an ephemeral port. `buf_len` is the largest
    /// datagram queued when impaired; `client` and `repeat` pick the impairment's streams.
    pub async fn bind(
        server: SocketAddr,
        impairment: &Impairment,
        buf_len: usize,
        client: u32,
        repeat: u64,
    ) -> io::Result<Self> {
        let any: SocketAddr = if server.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(any).await?;
        tftpd::io::buffers::apply(&socket, RECV_BUFFER, 0)?;
        let shaper = impairment.is_active().then(|| Shaper {
            delay: impairment.delay,
            send: Impairer::new(impairment, client, repeat, Way::Send),
            recv: Impairer::new(impairment, client, repeat, Way::Receive),
            outbound: Queue::default(),
            inbound: Queue::default(),
            pool: Vec::new(),
            buf_len,
        });
        Ok(Self {
            socket,
            shaper,
            counts: ImpairCounts::default(),
        })
    }

    /// What the impairment has done so far.
    pub fn counts(&self) -> ImpairCounts {
        self.counts
    }

    /// Sends `data` to `to`, or queues, duplicates or drops it as the impairment decides.
    /// True unless the impairment dropped it (it is sent, or queued to be).
    pub async fn send_to(&mut self, data: &[u8], to: SocketAddr) -> io::Result<bool> {
        let Some(sh) = &mut self.shaper else {
            self.socket.send_to(data, to).await?;
            return Ok(true);
        };
        let now = Instant::now();
        let fate = sh.send.decide();
        if fate.drop {
            self.counts.dropped += 1;
            return Ok(false);
        }
        let p = sh.pending(data, to, now);
        let copy = fate.dup.then(|| sh.pending(data, to, now));
        self.counts.count(fate);
        sh.outbound.push(p, copy, fate.hold, now);
        self.flush_outbound().await?;
        Ok(true)
    }

    /// Waits until a datagram arrives (into `buf`) or `deadline` passes (`None`). While it
    /// waits, queued outgoing datagrams are sent when they fall due.
    pub async fn recv(
        &mut self,
        buf: &mut [u8],
        deadline: Instant,
    ) -> io::Result<Option<(usize, SocketAddr)>> {
        if self.shaper.is_none() {
            return match tokio::time::timeout_at(deadline, self.socket.recv_from(buf)).await {
                Ok(r) => r.map(Some),
                Err(_) => Ok(None),
            };
        }
        loop {
            self.flush_outbound().await?;
            let now = Instant::now();
            let sh = self.shaper.as_mut().expect("impaired link");
            sh.inbound.release_expired(now);
            if let Some(p) = sh.inbound.pop_due(now) {
                let n = p.len.min(buf.len());
                buf[..n].copy_from_slice(&p.buf[..n]);
                let peer = p.peer;
                sh.pool.push(p.buf);
                return Ok(Some((n, peer)));
            }
            if now >= deadline {
                return Ok(None);
            }
            let wake = [sh.inbound.next_event(), sh.outbound.next_event()]
                .into_iter()
                .flatten()
                .fold(deadline, Instant::min);
            let mut rx = sh.take_buf();
            tokio::select! {
                r = self.socket.recv_from(&mut rx) => {
                    let (len, peer) = r?;
                    let now = Instant::now();
                    let sh = self.shaper.as_mut().expect("impaired link");
                    let fate = sh.recv.decide();
                    if fate.drop {
                        self.counts.dropped += 1;
                        sh.pool.push(rx);
                        continue;
                    }
                    let copy = fate.dup.then(|| sh.pending(&rx[..len], peer, now));
                    let p = Pending { due: now + sh.delay, peer, len, buf: rx };
                    self.counts.count(fate);
                    sh.inbound.push(p, copy, fate.hold, now);
                }
                () = tokio::time::sleep_until(wake) => {
                    self.shaper.as_mut().expect("impaired link").pool.push(rx);
                }
            }
        }
    }

    /// Sends every queued outgoing datagram that is due.
    async fn flush_outbound(&mut self) -> io::Result<()> {
        let Some(sh) = &mut self.shaper else {
            return Ok(());
        };
        let now = Instant::now();
        sh.outbound.release_expired(now);
        while let Some(p) = sh.outbound.pop_due(now) {
            let sent = self.socket.send_to(&p.buf[..p.len], p.peer).await;
            sh.pool.push(p.buf);
            sent?;
        }
        Ok(())
    }
}

impl ImpairCounts {
    fn count(&mut self, fate: Fate) {
        self.duplicated += u64::from(fate.dup);
        self.held += u64::from(fate.hold);
    }
}

impl Shaper {
    fn take_buf(&mut self) -> Vec<u8> {
        self.pool.pop().unwrap_or_else(|| vec![0; self.buf_len])
    }

    fn pending(&mut self, data: &[u8], peer: SocketAddr, now: Instant) -> Pending {
        let mut buf = self.take_buf();
        if buf.len() < data.len() {
            buf.resize(data.len(), 0);
        }
        let len = data.len();
        buf[..len].copy_from_slice(data);
        Pending {
            due: now + self.delay,
            peer,
            len,
            buf,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(tag: u8, due: Instant) -> Pending {
        Pending {
            due,
            peer: "127.0.0.1:9".parse().expect("address"),
            len: 1,
            buf: vec![tag],
        }
    }

    fn drain(q: &mut Queue, now: Instant) -> Vec<u8> {
        std::iter::from_fn(|| q.pop_due(now).map(|p| p.buf[0])).collect()
    }

    #[test]
    fn a_held_datagram_goes_out_after_the_next_one() {
        let now = Instant::now();
        let mut q = Queue::default();
        q.push(pending(1, now), None, true, now);
        assert_eq!(drain(&mut q, now), Vec::<u8>::new(), "held, nothing due");
        q.push(pending(2, now), Some(pending(3, now)), false, now);
        assert_eq!(
            drain(&mut q, now),
            vec![2, 1, 3],
            "2 overtook 1; 3 is 2's copy"
        );
    }

    #[test]
    fn a_held_datagram_nobody_overtakes_is_released_at_the_hold_limit() {
        let now = Instant::now();
        let mut q = Queue::default();
        q.push(pending(1, now), None, true, now);
        assert_eq!(q.next_event(), Some(now + HOLD_LIMIT));
        q.release_expired(now + HOLD_LIMIT);
        assert_eq!(drain(&mut q, now + HOLD_LIMIT), vec![1]);
    }

    #[test]
    fn nothing_leaves_before_it_is_due_and_order_is_kept() {
        let now = Instant::now();
        let later = now + std::time::Duration::from_millis(10);
        let mut q = Queue::default();
        q.push(pending(1, later), None, false, now);
        // Due earlier than the one before it, yet it may not overtake it.
        q.push(pending(2, now), None, false, now);
        assert_eq!(drain(&mut q, now), Vec::<u8>::new(), "not due yet");
        assert_eq!(drain(&mut q, later), vec![1, 2]);
    }
}
