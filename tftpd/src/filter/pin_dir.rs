//! The directory the counter maps are pinned in (`ebpf.pin_dir`): made ready, and held by one
//! running daemon at a time.
//!
//! Pins left by a daemon that was killed are replaced at start, which is right for a dead
//! daemon and wrong for a live one: a second instance with the same `pin_dir` used to replace
//! the first one's pins, so `bpftool` and `tftpd stats` showed the second's counters, the
//! first lost its pins when the second stopped, and two instances starting at once could fail
//! each other's start-up (one removed the pins the other was about to hand to its user). Each
//! daemon now takes an exclusive `flock` on the directory for its whole life: a second one
//! is told the directory is in use and which key to change, and the lock goes away with the
//! process however it ends, so a killed daemon leaves no stale lock behind.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Why the pin directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PinDirError {
    /// Another running daemon holds it.
    #[error(
        "{} is in use by another running tftpd (ebpf.pin_dir): give each instance its own \
         ebpf.pin_dir",
        path.display()
    )]
    InUse {
        /// The directory.
        path: PathBuf,
    },
    /// Mounting bpffs, creating or locking the directory failed.
    #[error("preparing {}", path.display())]
    Io {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The directories this process holds, with the open handle that keeps each lock. The socket
/// filters and XDP pin into the same directory: the second claim by this process is a no-op.
static HELD: Mutex<Vec<(PathBuf, File)>> = Mutex::new(Vec::new());

/// Mounts bpffs if `dir` is under /sys/fs/bpf and it is not mounted, creates `dir`, and takes
/// it for this process (until it exits).
pub fn claim(dir: &Path) -> Result<(), PinDirError> {
    let io = |source| PinDirError::Io {
        path: dir.to_path_buf(),
        source,
    };
    ensure_bpffs(dir).map_err(io)?;
    std::fs::create_dir_all(dir).map_err(io)?;
    take_back(dir).map_err(io)?;
    let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
    if held.iter().any(|(p, _)| p == dir) {
        return Ok(());
    }
    let handle = File::open(dir).map_err(io)?;
    match handle.try_lock() {
        Ok(()) => {
            held.push((dir.to_path_buf(), handle));
            Ok(())
        }
        Err(TryLockError::WouldBlock) => Err(PinDirError::InUse {
            path: dir.to_path_buf(),
        }),
        Err(TryLockError::Error(e)) => Err(io(e)),
    }
}

/// A clean stop leaves the directory owned by the service user the last run handed it to.
/// Root without CAP_DAC_OVERRIDE (the systemd unit, the container) could then neither open it
/// nor pin into it, and every restart would lose the eBPF filters; chown needs CAP_CHOWN and
/// search access to the parent only, so the directory is taken back first.
fn take_back(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
    let meta = std::fs::metadata(dir)?;
    if meta.uid() == uid.as_raw() && meta.gid() == gid.as_raw() {
        return Ok(());
    }
    nix::unistd::chown(dir, Some(uid), Some(gid)).map_err(std::io::Error::from)
}

/// Mounts bpffs on /sys/fs/bpf when `dir` lies under it and it is not mounted yet.
fn ensure_bpffs(dir: &Path) -> std::io::Result<()> {
    let base = Path::new("/sys/fs/bpf");
    if !dir.starts_with(base) {
        return Ok(());
    }
    let mounted = nix::sys::statfs::statfs(base)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::BPF_FS_MAGIC);
    if mounted {
        return Ok(());
    }
    nix::mount::mount(
        Some("bpf"),
        base,
        Some("bpf"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_held_by_another_process_is_refused_and_one_held_here_is_claimed_again() {
        let dir = std::env::temp_dir().join(format!("tftpd-pin-dir-{}", std::process::id()));
        claim(&dir).expect("first claim");
        claim(&dir).expect("this process claims its own directory again");
        // Another process: flock's owner is the open file, and `flock -n` opens its own.
        let status = std::process::Command::new("flock")
            .args(["-n", "-E", "75"])
            .arg(&dir)
            .arg("true")
            .status()
            .expect("running flock(1)");
        assert_eq!(status.code(), Some(75), "another process found it locked");
        // And a new open file in this process, as a second daemon would make.
        let other = File::open(&dir).expect("open");
        assert!(matches!(other.try_lock(), Err(TryLockError::WouldBlock)));
        let _ = std::fs::remove_dir(&dir);
    }
}
