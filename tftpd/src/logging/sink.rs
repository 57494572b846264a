//! A connected Unix datagram socket to a log daemon (journald's or syslog's), one record per
//! datagram. Non-blocking: when the daemon does not keep up the record is dropped and counted
//! (`tftpd_log_lines_dropped_total`), never waited for, as on stderr. When the daemon
//! restarts the socket is connected again once, then the record is dropped.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Records dropped by every sink of the process.
pub(super) static DROPPED: AtomicU64 = AtomicU64::new(0);

/// The socket and where it leads.
#[derive(Debug)]
pub(crate) struct DatagramSink {
    path: PathBuf,
    socket: RwLock<UnixDatagram>,
}

fn connect(path: &Path) -> io::Result<UnixDatagram> {
    let s = UnixDatagram::unbound()?;
    s.connect(path)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

impl DatagramSink {
    /// Connects to `path` (at start, while the process may still reach it).
    pub(crate) fn connect(path: &Path) -> io::Result<Self> {
        Ok(Self {
            path: path.to_path_buf(),
            socket: RwLock::new(connect(path)?),
        })
    }

    /// Sends one record, or counts it dropped.
    pub(crate) fn send(&self, record: &[u8]) {
        let sent = self
            .socket
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .send(record);
        let gone = |e: &io::Error| {
            matches!(
                e.kind(),
                io::ErrorKind::ConnectionRefused
                    | io::ErrorKind::NotConnected
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::NotFound
            )
        };
        match sent {
            Ok(_) => {}
            Err(e) if gone(&e) => {
                // The daemon went away and may be back under the same path.
                let again = connect(&self.path).and_then(|s| {
                    s.send(record)?;
                    Ok(s)
                });
                match again {
                    Ok(s) => {
                        *self
                            .socket
                            .write()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) = s;
                    }
                    Err(_) => {
                        DROPPED.fetch_add(1, Relaxed);
                    }
                }
            }
            Err(_) => {
                DROPPED.fetch_add(1, Relaxed);
            }
        }
    }
}

/// A log daemon's socket for tests: bound in a directory of its own (removed on drop), with
/// a sink connected to it.
#[cfg(test)]
pub(super) struct TestDaemon {
    dir: PathBuf,
    pub(super) path: PathBuf,
    pub(super) socket: UnixDatagram,
}

#[cfg(test)]
impl TestDaemon {
    pub(super) fn bind(tag: &str) -> (Self, DatagramSink) {
        let dir = std::env::temp_dir().join(format!("tftpd-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let path = dir.join("socket");
        let socket = UnixDatagram::bind(&path).expect("binding a log socket");
        let sink = DatagramSink::connect(&path).expect("connecting");
        (Self { dir, path, socket }, sink)
    }

    /// The next datagram, as text.
    pub(super) fn recv(&self) -> String {
        let mut buf = vec![0u8; 65536];
        let n = self.socket.recv(&mut buf).expect("a datagram");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

#[cfg(test)]
impl Drop for TestDaemon {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_arrive_one_per_datagram_and_a_full_socket_drops_without_waiting() {
        let (mut daemon, sink) = TestDaemon::bind("sink");
        let path = daemon.path.clone();
        let server = &daemon.socket;
        sink.send(b"one");
        sink.send(b"two");
        let mut buf = [0u8; 16];
        let n = server.recv(&mut buf).expect("a datagram");
        assert_eq!(&buf[..n], b"one");
        let n = server.recv(&mut buf).expect("a datagram");
        assert_eq!(&buf[..n], b"two");
        // Nobody reads: the queue fills, and sending goes on without blocking.
        let before = DROPPED.load(Relaxed);
        for _ in 0..100_000 {
            sink.send(&[b'x'; 512]);
            if DROPPED.load(Relaxed) > before {
                break;
            }
        }
        assert!(
            DROPPED.load(Relaxed) > before,
            "a full socket drops and counts"
        );
        // The daemon restarts: a new socket at the same path, the old one closed.
        std::fs::remove_file(&path).expect("removing the old socket");
        let restarted = UnixDatagram::bind(&path).expect("binding again");
        drop(std::mem::replace(&mut daemon.socket, restarted));
        sink.send(b"after");
        assert_eq!(daemon.recv(), "after", "sent after the restart");
    }
}
