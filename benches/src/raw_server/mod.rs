//! The concurrent raw ceiling: a TFTP-shaped responder with no TFTP server behind it, so the
//! concurrent rows of the side-by-side run (100 clients, the boot storm) can be stated as a
//! fraction of what any server could do on the machine, as `tftp-load ceiling` does for one
//! client.
//!
//! It serves the regular files of one directory, read into memory at start, to the real
//! load generator over loopback: an RRQ gets a socket of its own (a new TID), `blksize` is
//! answered with an OACK, every other option is ignored (so the client runs lock-step), and
//! each ACK of the last block sent is answered with the next one, a repeated ACK with the
//! same block again. No timers (the client's retransmissions drive recovery), no access
//! rules, no logs, no metrics, no file system: what is left is the kernel's work per
//! datagram and a minimal event loop around it, on one thread, like dnsmasq's.
//!
//! Two loops: [`Engine::Epoll`] (level-triggered `epoll`, a `recv` and a `send` per block,
//! what a C server does) and, on Linux, [`Engine::Uring`] (one io_uring for every transfer:
//! each loop turn submits the turn's sends and receives in one `io_uring_enter`).

mod epoll;
#[cfg(target_os = "linux")]
#[expect(
    unsafe_code,
    reason = "io_uring entries point at memory the kernel writes; each is kept until its completion"
)]
mod uring;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use tftpd::proto::Packet;
use tftpd::proto::packet::{DATA_HEADER_LEN, OP_ACK, OP_ERROR, data_header};

/// How often a loop looks at the stop flag and for transfers whose client went away.
const TICK: Duration = Duration::from_millis(100);
/// A transfer whose client has sent nothing for this long is dropped.
const IDLE: Duration = Duration::from_secs(10);
/// The largest ACK or ERROR worth reading whole.
const RECV_LEN: usize = 64;
/// The largest request.
const REQUEST_LEN: usize = 1024;

/// The event loop the responder runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Level-triggered `epoll` and a system call per datagram.
    Epoll,
    /// One io_uring for all transfers (Linux).
    #[cfg(target_os = "linux")]
    Uring,
}

impl Engine {
    /// The engine called `name` (`epoll`, `uring`), where this platform has it.
    pub fn named(name: &str) -> Option<Self> {
        match name {
            "epoll" => Some(Self::Epoll),
            #[cfg(target_os = "linux")]
            "uring" => Some(Self::Uring),
            _ => None,
        }
    }
}

/// The files served, by name, held in memory.
#[derive(Debug, Clone, Default)]
pub struct Files(HashMap<Vec<u8>, Arc<[u8]>>);

impl Files {
    /// Reads every regular file directly in `dir`.
    pub fn load(dir: &Path) -> io::Result<Self> {
        let mut files = HashMap::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                let bytes = std::fs::read(entry.path())?;
                files.insert(entry.file_name().into_encoded_bytes(), bytes.into());
            }
        }
        Ok(Self(files))
    }

    /// Serves `bytes` as `name`.
    pub fn insert(&mut self, name: &str, bytes: Vec<u8>) {
        self.0.insert(name.as_bytes().to_vec(), bytes.into());
    }

    fn get(&self, name: &[u8]) -> Option<Arc<[u8]>> {
        self.0.get(name).cloned()
    }
}

/// What a responder did, for its caller's checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Served {
    /// Transfers whose last block was acknowledged.
    pub completed: u64,
    /// DATA datagrams sent, repeats included.
    pub blocks_sent: u64,
}

/// Serves `files` on `socket` with `engine` until `stop` is set (looked at every 100 ms).
pub fn serve(
    socket: UdpSocket,
    files: &Files,
    engine: Engine,
    stop: &AtomicBool,
) -> io::Result<Served> {
    match engine {
        Engine::Epoll => epoll::serve(socket, files, stop),
        #[cfg(target_os = "linux")]
        Engine::Uring => uring::serve(socket, files, stop),
    }
}

/// What a request turns into.
enum Accepted {
    /// A transfer, with its first datagram (OACK or DATA 1) in `out`.
    Transfer(Transfer),
    /// An ERROR to send back from the listening socket.
    Refused(&'static [u8]),
    /// Not a request: nothing.
    Ignored,
}

const NOT_FOUND: &[u8] = b"\x00\x05\x00\x01file not found\x00";
const NO_SOCKET: &[u8] = b"\x00\x05\x00\x00no socket\x00";

/// One download.
struct Transfer {
    socket: UdpSocket,
    file: Arc<[u8]>,
    blksize: usize,
    /// The last block sent (0: the OACK).
    sent: u64,
    /// Blocks in the file (the last one short, possibly empty).
    total: u64,
    /// The datagram to send (and to send again on a repeated ACK).
    out: Vec<u8>,
    last_heard: Instant,
    done: bool,
}

/// Turns a datagram on the listening socket into a transfer (bound to `local`, connected
/// to `peer`), an ERROR, or nothing.
fn accept(d: &[u8], peer: SocketAddr, local: IpAddr, files: &Files) -> Accepted {
    let Ok(Packet::Rrq(req)) = Packet::decode(d) else {
        return Accepted::Ignored;
    };
    let Some(file) = files.get(req.filename) else {
        return Accepted::Refused(NOT_FOUND);
    };
    let blksize = req.options.iter().find_map(|(k, v)| {
        if !k.eq_ignore_ascii_case(b"blksize") {
            return None;
        }
        let n: usize = std::str::from_utf8(v).ok()?.parse().ok()?;
        Some(n.clamp(8, 65464))
    });
    let Ok(socket) = bound_to(local, peer) else {
        return Accepted::Refused(NO_SOCKET);
    };
    let mut t = Transfer {
        socket,
        blksize: blksize.unwrap_or(512),
        total: (file.len() / blksize.unwrap_or(512)) as u64 + 1,
        file,
        sent: 0,
        out: Vec::new(),
        last_heard: Instant::now(),
        done: false,
    };
    match blksize {
        Some(n) => {
            t.out.extend_from_slice(b"\x00\x06blksize\x00");
            t.out.extend_from_slice(n.to_string().as_bytes());
            t.out.push(0);
        }
        None => t.next_block(),
    }
    Accepted::Transfer(t)
}

/// A non-blocking socket on `local`, any port, connected to `peer`.
fn bound_to(local: IpAddr, peer: SocketAddr) -> io::Result<UdpSocket> {
    let socket = UdpSocket::bind(SocketAddr::new(local, 0))?;
    socket.connect(peer)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

impl Transfer {
    /// Puts the block after `sent` into `out`.
    fn next_block(&mut self) {
        self.sent += 1;
        let start = ((self.sent - 1) as usize * self.blksize).min(self.file.len());
        let end = (start + self.blksize).min(self.file.len());
        self.out.clear();
        self.out.extend_from_slice(&data_header(self.sent as u16));
        self.out.extend_from_slice(&self.file[start..end]);
    }

    /// Handles a datagram from the client; true when `out` is to be sent.
    fn on_datagram(&mut self, d: &[u8], now: Instant) -> bool {
        if d.len() >= 2 && d[..2] == OP_ERROR.to_be_bytes() {
            self.done = true;
            return false;
        }
        if d.len() != 4 || d[..2] != OP_ACK.to_be_bytes() {
            return false;
        }
        self.last_heard = now;
        let block = u16::from_be_bytes([d[2], d[3]]);
        if block == self.sent as u16 {
            if self.sent == self.total {
                self.done = true;
                return false;
            }
            self.next_block();
            true
        } else {
            // The previous block acknowledged again: the client missed this one.
            self.sent > 0 && block == (self.sent - 1) as u16
        }
    }

    /// True for a sent DATA (not the OACK).
    fn sends_data(&self) -> bool {
        self.out.len() >= DATA_HEADER_LEN && self.sent > 0
    }

    fn idle(&self, now: Instant) -> bool {
        now.duration_since(self.last_heard) > IDLE
    }
}

/// Transfers by slot, slots reused.
struct Slab<T> {
    slots: Vec<Option<T>>,
    free: Vec<usize>,
}

impl<T> Slab<T> {
    fn new() -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }

    fn insert(&mut self, t: T) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(t);
                i
            }
            None => {
                self.slots.push(Some(t));
                self.slots.len() - 1
            }
        }
    }

    fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.slots.get_mut(i).and_then(Option::as_mut)
    }

    fn remove(&mut self, i: usize) -> Option<T> {
        let t = self.slots.get_mut(i)?.take();
        if t.is_some() {
            self.free.push(i);
        }
        t
    }

    fn indices(&self) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|&i| self.slots[i].is_some())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> Files {
        let mut f = Files::default();
        f.insert("f", (0..3000u32).map(|i| i as u8).collect());
        f
    }

    fn rrq(options: &[u8]) -> Vec<u8> {
        let mut d = b"\x00\x01f\x00octet\x00".to_vec();
        d.extend_from_slice(options);
        d
    }

    fn start(options: &[u8]) -> Transfer {
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        match accept(&rrq(options), peer, peer.ip(), &files()) {
            Accepted::Transfer(t) => t,
            _ => panic!("not accepted"),
        }
    }

    #[test]
    fn blksize_is_acknowledged_and_the_blocks_follow_each_ack() {
        let mut t = start(b"blksize\x001000\x00windowsize\x0016\x00");
        assert_eq!(t.out, b"\x00\x06blksize\x001000\x00");
        let now = Instant::now();
        assert!(t.on_datagram(&[0, 4, 0, 0], now));
        assert_eq!(&t.out[..4], &[0, 3, 0, 1]);
        assert_eq!(t.out[4..], files().get(b"f").unwrap()[..1000]);
        assert!(t.on_datagram(&[0, 4, 0, 0], now), "a repeated ACK resends");
        assert_eq!(&t.out[..4], &[0, 3, 0, 1]);
        assert!(t.on_datagram(&[0, 4, 0, 1], now));
        assert!(t.on_datagram(&[0, 4, 0, 2], now));
        assert_eq!(t.out.len(), 4 + 1000);
        // 3000 bytes at 1000: a fourth, empty block ends it.
        assert!(t.on_datagram(&[0, 4, 0, 3], now));
        assert_eq!(t.out, [0, 3, 0, 4]);
        assert!(!t.on_datagram(&[0, 4, 0, 4], now));
        assert!(t.done);
    }

    #[test]
    fn without_options_it_starts_with_512_byte_blocks() {
        let t = start(b"");
        assert_eq!(&t.out[..4], &[0, 3, 0, 1]);
        assert_eq!(t.out.len(), 4 + 512);
        assert!(t.sends_data());
    }

    #[test]
    fn unknown_files_are_refused_and_junk_ignored() {
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let d = b"\x00\x01nope\x00octet\x00";
        assert!(matches!(
            accept(d, peer, peer.ip(), &files()),
            Accepted::Refused(NOT_FOUND)
        ));
        assert!(matches!(
            accept(b"\x00\x04\x00\x01", peer, peer.ip(), &files()),
            Accepted::Ignored
        ));
        let mut t = start(b"");
        assert!(!t.on_datagram(b"\x00\x05\x00\x00bye\x00", Instant::now()));
        assert!(t.done);
    }
}
