//! The junk flood: threads inside the namespace that send each filter role's junk to its
//! port, bounded in packets and seconds.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::link::Link;
use super::{CLIENT, SERVER};

/// Upper bounds for each flood thread.
const FLOOD_MAX_PACKETS: u64 = 20_000_000;
pub(super) const FLOOD_MAX_SECONDS: u64 = 60;

/// DATA to the listener: junk for its role.
pub(super) const LISTENER_JUNK: &[u8] = b"\x00\x03\x00\x01junk to the listener";
/// An RRQ to the transfer port: junk for its role.
pub(super) const TRANSFER_JUNK: &[u8] = b"\x00\x01not for a transfer socket\x00octet\x00";

/// Threads in the namespace sending junk, one per target.
pub(super) struct Flood {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Flood {
    pub(super) fn start(link: &Link, targets: [(u16, &'static [u8]); 2], limit: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let threads = targets
            .into_iter()
            .map(|(port, junk)| {
                let to = SocketAddr::from((SERVER, port));
                let (stop, sent) = (stop.clone(), sent.clone());
                let ns = format!("/var/run/netns/{}", link.ns);
                std::thread::spawn(move || flood(&ns, to, junk, limit, &stop, &sent))
            })
            .collect();
        Self {
            stop,
            sent,
            threads,
        }
    }

    /// Stops the threads; returns how many datagrams they sent.
    pub(super) fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        self.sent.load(Ordering::Relaxed)
    }
}

/// Sends `junk` to `to` from inside the namespace at `ns` until stopped or a bound is hit.
fn flood(
    ns: &str,
    to: SocketAddr,
    junk: &[u8],
    limit: Duration,
    stop: &AtomicBool,
    sent: &AtomicU64,
) {
    // setns moves only this thread into the namespace.
    let entered = std::fs::File::open(ns).and_then(|f| {
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
    });
    if let Err(e) = entered {
        eprintln!("xtask: entering {ns}: {e}");
        return;
    }
    let Ok(socket) = UdpSocket::bind((CLIENT, 0)) else {
        return;
    };
    let deadline = Instant::now() + limit;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) && n < FLOOD_MAX_PACKETS {
        if socket.send_to(junk, to).is_ok() {
            n += 1;
        }
        if n.is_multiple_of(4096) && Instant::now() > deadline {
            break;
        }
    }
    sent.fetch_add(n, Ordering::Relaxed);
}
