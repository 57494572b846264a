//! Where an upload's bytes wait until it commits, and how they get their name.
//!
//! On Linux the file is made with `O_TMPFILE`: it has no name at all while the upload runs,
//! so a daemon killed mid-upload (SIGKILL, the OOM killer, a power cut) leaves nothing in the
//! directory; the kernel frees the inode when the descriptor goes. At commit it is linked in
//! with `linkat`. Where `O_TMPFILE` is refused (a filesystem without it: some FUSE, overlay
//! and NFS mounts, kernels before 3.11) and on every other platform, the file is a hidden
//! `.<name>.tftpd-<8 hex digits>` made with `O_EXCL` and renamed into place, which the
//! start-up sweep ([`super::sweep`]) removes if a killed daemon left it behind.
//!
//! Every temporary file holds an exclusive `flock` while open, so the sweep of a second
//! daemon on the same root can tell a live upload's file (locked) from debris (not locked:
//! a killed process's locks go with it).

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd as _, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{UnlinkatFlags, unlinkat};

use super::WriteMode;

/// Attempts at a free temporary name before giving up.
const TEMP_TRIES: usize = 8;
/// Bytes of the target's name kept in the temporary name (NAME_MAX is 255).
const TEMP_NAME_KEEP: usize = 200;
/// What every temporary name ends with, before its 8 hex digits.
const TEMP_MARK: &[u8] = b".tftpd-";

/// An upload's file before it commits.
#[derive(Debug)]
pub(super) struct Temp {
    file: File,
    /// Its name in the directory; `None` while it has none (`O_TMPFILE`) and once the name
    /// has become the target's.
    name: Option<String>,
}

impl Temp {
    /// Creates the temporary file for `target` in `dir` (shown as `dir_path` in the one log
    /// line a fallback gets): anonymous when `anonymous` is set and the filesystem allows it,
    /// else named.
    pub(super) fn create(
        dir: &OwnedFd,
        dir_path: &Path,
        target: &str,
        anonymous: bool,
    ) -> Result<Self, Errno> {
        #[cfg(linux)]
        if anonymous {
            match create_anonymous(dir) {
                Ok(file) => return Ok(lock(Self { file, name: None })),
                // EISDIR: a kernel without O_TMPFILE reads it as O_DIRECTORY; EOPNOTSUPP and
                // EINVAL: a filesystem that does not implement it.
                Err(e @ (Errno::EISDIR | Errno::EOPNOTSUPP | Errno::EINVAL)) => {
                    log_fallback_once(dir_path, e);
                }
                Err(e) => return Err(e),
            }
        }
        #[cfg(not(linux))]
        let _ = (anonymous, dir_path);
        let (name, file) = create_named(dir, target)?;
        Ok(lock(Self {
            file,
            name: Some(name),
        }))
    }

    /// The file, for writing.
    pub(super) fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// True while the file has no name in the directory (`O_TMPFILE`).
    #[cfg(test)]
    pub(super) fn is_anonymous(&self) -> bool {
        self.name.is_none()
    }

    /// Gives the (synced) file the name `target` in `dir`: in create mode never replacing a
    /// file that is there (EEXIST), in overwrite mode replacing it atomically.
    pub(super) fn link_into_place(
        &mut self,
        dir: &OwnedFd,
        target: &str,
        mode: WriteMode,
    ) -> Result<(), Errno> {
        match self.name.take() {
            #[cfg(linux)]
            None => self.link_anonymous(dir, target, mode),
            #[cfg(not(linux))]
            None => Err(Errno::ENOENT),
            Some(name) => {
                let r = rename_named(dir, &name, target, mode);
                if r.is_err() {
                    // Still there under its own name: Drop (discard) removes it.
                    self.name = Some(name);
                }
                r
            }
        }
    }

    /// Create mode: `linkat` straight to the target, which fails with EEXIST rather than
    /// replace a file that appeared meanwhile. Overwrite mode: `linkat` to a fresh temporary
    /// name, then `renameat` over the target (there is no link-and-replace call), removing
    /// that name again if the rename fails.
    #[cfg(linux)]
    fn link_anonymous(
        &mut self,
        dir: &OwnedFd,
        target: &str,
        mode: WriteMode,
    ) -> Result<(), Errno> {
        if mode != WriteMode::Overwrite {
            return link_fd(&self.file, dir, target);
        }
        for _ in 0..TEMP_TRIES {
            let name = temp_name(target);
            match link_fd(&self.file, dir, &name) {
                Ok(()) => {}
                Err(Errno::EEXIST) => continue,
                Err(e) => return Err(e),
            }
            let renamed = nix::fcntl::renameat(dir.as_fd(), name.as_str(), dir.as_fd(), target);
            if renamed.is_err() {
                let _ = unlinkat(dir.as_fd(), name.as_str(), UnlinkatFlags::NoRemoveDir);
            }
            return renamed;
        }
        Err(Errno::EEXIST)
    }

    /// Removes the file's name, if it has one; the data goes with the descriptor.
    pub(super) fn discard(&mut self, dir: &OwnedFd) {
        if let Some(name) = self.name.take() {
            let _ = unlinkat(dir.as_fd(), name.as_str(), UnlinkatFlags::NoRemoveDir);
        }
    }
}

/// Takes the exclusive lock the sweep looks for. Where the filesystem has no locks (ENOLCK
/// on an NFS mount without lockd) the upload goes on unlocked; the sweep then goes by age.
fn lock(temp: Temp) -> Temp {
    #[expect(
        deprecated,
        reason = "nix's Flock wrapper panics on a failed unlock in Drop; closing the descriptor \
                  is the only unlock we need"
    )]
    let _ = nix::fcntl::flock(
        temp.file.as_raw_fd(),
        nix::fcntl::FlockArg::LockExclusiveNonblock,
    );
    temp
}

/// `openat(dir, ".", O_TMPFILE | O_WRONLY)`: a file with no name. Without `O_EXCL`, so that
/// `linkat` may give it one.
#[cfg(linux)]
fn create_anonymous(dir: &OwnedFd) -> Result<File, Errno> {
    let flags = OFlag::O_TMPFILE | OFlag::O_WRONLY | OFlag::O_CLOEXEC;
    nix::fcntl::openat(dir.as_fd(), ".", flags, Mode::from_bits_truncate(0o600)).map(File::from)
}

/// Logs, once per process, that a directory's filesystem refused `O_TMPFILE`. Every upload
/// still tries it first: each root and directory may be on another filesystem, and a failed
/// `openat` costs one system call.
#[cfg(linux)]
fn log_fallback_once(dir: &Path, e: Errno) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static LOGGED: AtomicBool = AtomicBool::new(false);
    if !LOGGED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            dir = %dir.display(),
            error = %e,
            "O_TMPFILE refused here: uploads use named temporary files, which a killed daemon \
             leaves behind until the next start's sweep (logged once)"
        );
    }
}

/// Names the anonymous `file` `name` in `dir`. Through `/proc/self/fd/N` with
/// `AT_SYMLINK_FOLLOW`, which any process may do with its own descriptor; `AT_EMPTY_PATH` on
/// the descriptor itself needs CAP_DAC_READ_SEARCH, which the daemon has dropped, so it is
/// only the way when /proc is missing (a chroot) and the daemon still runs as root.
#[cfg(linux)]
fn link_fd(file: &File, dir: &OwnedFd, name: &str) -> Result<(), Errno> {
    use nix::unistd::linkat;
    if crate::fs::resolve::proc_fd_available() {
        let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
        match linkat(
            nix::fcntl::AT_FDCWD,
            proc_path.as_str(),
            dir.as_fd(),
            name,
            AtFlags::AT_SYMLINK_FOLLOW,
        ) {
            // /proc went away after all: try the other way.
            Err(Errno::ENOENT) => {}
            other => return other,
        }
    }
    linkat(file.as_fd(), "", dir.as_fd(), name, AtFlags::AT_EMPTY_PATH)
}

/// Creates `.<target>.tftpd-<8 hex digits>` with `O_EXCL`, retrying on a name clash.
fn create_named(dir: &OwnedFd, target: &str) -> Result<(String, File), Errno> {
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut last = Errno::EEXIST;
    for _ in 0..TEMP_TRIES {
        let name = temp_name(target);
        match nix::fcntl::openat(
            dir.as_fd(),
            name.as_str(),
            flags,
            Mode::from_bits_truncate(0o600),
        ) {
            Ok(fd) => return Ok((name, File::from(fd))),
            Err(Errno::EEXIST) => last = Errno::EEXIST,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// Renames the named temporary file over `target`; in create mode never replacing a file.
#[cfg(linux)]
fn rename_named(dir: &OwnedFd, temp: &str, target: &str, mode: WriteMode) -> Result<(), Errno> {
    use nix::fcntl::{RenameFlags, renameat2};
    let flags = match mode {
        WriteMode::Create => RenameFlags::RENAME_NOREPLACE,
        _ => RenameFlags::empty(),
    };
    renameat2(dir.as_fd(), temp, dir.as_fd(), target, flags)
}

/// Renames the named temporary file over `target`; in create mode never replacing a file.
#[cfg(not(linux))]
fn rename_named(dir: &OwnedFd, temp: &str, target: &str, mode: WriteMode) -> Result<(), Errno> {
    use nix::unistd::linkat;
    let d = dir.as_fd();
    match mode {
        // link(2) fails with EEXIST instead of replacing: the portable no-replace rename.
        WriteMode::Create => {
            linkat(d, temp, d, target, AtFlags::empty())?;
            let _ = unlinkat(d, temp, UnlinkatFlags::NoRemoveDir);
            Ok(())
        }
        _ => nix::fcntl::renameat(d, temp, d, target),
    }
}

/// A fresh temporary name for `target`: `.<target>.tftpd-<8 hex digits>`, the target's name
/// cut to [`TEMP_NAME_KEEP`] bytes so the whole fits in NAME_MAX.
pub(super) fn temp_name(target: &str) -> String {
    let mut keep = target.len().min(TEMP_NAME_KEEP);
    while !target.is_char_boundary(keep) {
        keep -= 1;
    }
    format!(".{}.tftpd-{:08x}", &target[..keep], fastrand::u32(..))
}

/// True when `name` is exactly what [`temp_name`] makes: a dot, at least one byte, then
/// `.tftpd-` and 8 lowercase hex digits.
pub(super) fn is_temp_name(name: &[u8]) -> bool {
    let Some(rest) = name.strip_prefix(b".") else {
        return false;
    };
    let Some(split) = rest.len().checked_sub(TEMP_MARK.len() + 8) else {
        return false;
    };
    let (stem, tail) = rest.split_at(split);
    let (mark, hex) = tail.split_at(TEMP_MARK.len());
    !stem.is_empty()
        && mark == TEMP_MARK
        && hex
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}
