//! The eBPF counters a daemon pinned under `ebpf.pin_dir`, read without its help (the way
//! [`crate::filter::ebpf::read_pinned`] sums the per-CPU maps), and which process holds the
//! directory: a running daemon keeps an exclusive `flock` on it
//! ([`crate::filter::pin_dir`]), so pins nobody holds were left by a daemon that was
//! killed. The lock is looked up in `/proc/locks`, never taken: taking it, even for a
//! moment, could make a daemon starting at that moment refuse its pin directory.

use std::path::{Path, PathBuf};

use serde::Serialize;
#[cfg(target_os = "linux")]
use tftp_ebpf_common::Reason;

/// Why the pins could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PinnedError {
    /// Neither the socket filters' nor XDP's counter maps are pinned there.
    #[error(
        "no eBPF counters are pinned under {} (ebpf.pin_dir): neither listen_counts nor \
         xdp_counts is there",
        dir.display()
    )]
    Absent {
        /// The directory.
        dir: PathBuf,
    },
    /// They are there but could not be read (bpf(2) needs root, or the daemon's user with
    /// unprivileged BPF allowed).
    #[error("reading the eBPF counters pinned under {} (needs root or the daemon's user)", dir.display())]
    Read {
        /// The directory.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// One row: a socket role (or XDP), a verdict and a reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// `listener`, `transfer` or `xdp`.
    pub socket: &'static str,
    /// `pass` or `drop`.
    pub verdict: &'static str,
    /// The reason label, as in `tftpd_filter_packets_total`.
    pub reason: &'static str,
    /// Datagrams, summed over CPUs.
    pub packets: u64,
    /// Payload bytes, summed over CPUs.
    pub bytes: u64,
}

/// The pinned counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pinned {
    /// The directory read.
    pub dir: PathBuf,
    /// The process holding the directory (the running daemon); `None`: the pins are left
    /// from a daemon that did not stop cleanly, or the lock could not be looked up.
    pub holder_pid: Option<u32>,
    /// Every role and reason, zeros included.
    pub rows: Vec<Row>,
}

/// Reads the pins under `dir`.
#[cfg(target_os = "linux")]
pub fn read(dir: &Path) -> Result<Pinned, PinnedError> {
    use crate::filter::{ebpf, xdp};
    let sockets_pinned = dir.join(ebpf::LISTEN_COUNTS.1).exists();
    let xdp_pinned = dir.join(xdp::XDP_COUNTS.1).exists();
    if !sockets_pinned && !xdp_pinned {
        return Err(PinnedError::Absent {
            dir: dir.to_path_buf(),
        });
    }
    let failed = |source: Box<dyn std::error::Error + Send + Sync>| PinnedError::Read {
        dir: dir.to_path_buf(),
        source,
    };
    let mut rows = Vec::new();
    if sockets_pinned {
        let (listener, transfer) = ebpf::read_pinned(dir).map_err(|e| failed(Box::new(e)))?;
        rows.extend(rows_of("listener", &listener, Reason::SOCKET));
        rows.extend(rows_of("transfer", &transfer, Reason::SOCKET));
    }
    if xdp_pinned {
        let totals = xdp::read_pinned(dir).map_err(|e| failed(Box::new(e)))?;
        rows.extend(rows_of("xdp", &totals, &Reason::ALL));
    }
    Ok(Pinned {
        dir: dir.to_path_buf(),
        holder_pid: holder(dir),
        rows,
    })
}

/// eBPF exists only on Linux: there is nothing pinned to read.
#[cfg(not(target_os = "linux"))]
pub fn read(dir: &Path) -> Result<Pinned, PinnedError> {
    Err(PinnedError::Absent {
        dir: dir.to_path_buf(),
    })
}

#[cfg(target_os = "linux")]
fn rows_of(
    socket: &'static str,
    totals: &crate::filter::counters::Totals,
    reasons: &[Reason],
) -> Vec<Row> {
    reasons
        .iter()
        .map(|&reason| {
            let c = totals[reason.index() as usize];
            Row {
                socket,
                verdict: if reason.passes() { "pass" } else { "drop" },
                reason: reason.label(),
                packets: c.packets,
                bytes: c.bytes,
            }
        })
        .collect()
}

/// The pid holding an exclusive flock on `dir`, from `/proc/locks`.
#[cfg(target_os = "linux")]
fn holder(dir: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(dir).ok()?;
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    flock_holder(&locks, meta.dev(), meta.ino())
}

/// The pid of the `FLOCK ... WRITE` lock on the inode `ino` of device `dev` in a
/// `/proc/locks` table (`1: FLOCK  ADVISORY  WRITE 4242 00:1f:1234 0 EOF`; the device is
/// hexadecimal major:minor).
#[cfg(target_os = "linux")]
pub fn flock_holder(locks: &str, dev: u64, ino: u64) -> Option<u32> {
    let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    locks.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // A blocked waiter's line has "->" after the number; it holds nothing.
        if f.get(1) != Some(&"FLOCK") || f.get(3) != Some(&"WRITE") {
            return None;
        }
        let mut id = f.get(5)?.split(':');
        let (maj, min, inode) = (id.next()?, id.next()?, id.next()?);
        let same = u64::from_str_radix(maj, 16).ok()? == major
            && u64::from_str_radix(min, 16).ok()? == minor
            && inode.parse::<u64>().ok()? == ino;
        same.then(|| f.get(4)?.parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn the_holder_of_the_directorys_flock_is_found_in_proc_locks() {
        let dev = nix::sys::stat::makedev(0, 0x1f);
        let locks = "1: POSIX  ADVISORY  WRITE 11 00:1f:77 0 EOF\n\
            2: FLOCK  ADVISORY  WRITE 4242 00:1f:77 0 EOF\n\
            3: FLOCK  ADVISORY  READ 99 00:1f:78 0 EOF\n";
        assert_eq!(flock_holder(locks, dev, 77), Some(4242));
        assert_eq!(
            flock_holder(locks, dev, 78),
            None,
            "a shared lock is no daemon"
        );
        assert_eq!(flock_holder(locks, dev, 79), None);
        let other_dev = nix::sys::stat::makedev(8, 1);
        assert_eq!(flock_holder(locks, other_dev, 77), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_real_flock_is_found_and_an_empty_directory_has_no_pins() {
        let dir = std::env::temp_dir().join(format!("tftpd-stats-pins-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        assert_eq!(holder(&dir), None, "nobody holds it yet");
        crate::filter::pin_dir::claim(&dir).expect("claiming it as a daemon would");
        assert_eq!(holder(&dir), Some(std::process::id()));
        assert!(matches!(read(&dir), Err(PinnedError::Absent { .. })));
        let _ = std::fs::remove_dir(&dir);
    }
}
