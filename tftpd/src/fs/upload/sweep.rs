//! The start-up sweep: removes the named temporary files (`.<name>.tftpd-<8 hex digits>`)
//! that a daemon killed mid-upload left in a served root. With `O_TMPFILE` there are none,
//! but a filesystem without it, another platform, or a version before it leaves them, each
//! up to `uploads.max_size`.
//!
//! Only regular files whose name matches exactly are touched; symlinks are never followed
//! and symlinked directories never entered (`O_NOFOLLOW` on every open), each directory is
//! walked once (by device and inode), and the walk stops at [`MAX_DEPTH`] levels and
//! [`MAX_ENTRIES`] entries. A file another live process still has open for its upload holds
//! that upload's `flock` and is left alone, so a second daemon starting on the same root never
//! removes a running upload's file; where the filesystem has no locks, only files unchanged
//! for [`MIN_AGE_UNLOCKED`] are removed. What cannot be read is skipped with a warning.

use std::collections::HashSet;
use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsFd, AsRawFd as _, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};
use nix::unistd::{UnlinkatFlags, unlinkat};

use super::temp::is_temp_name;
use crate::fs::Root;

/// Directory levels below a root that are walked.
pub const MAX_DEPTH: usize = 32;
/// Directory entries looked at in one sweep, over all roots.
pub const MAX_ENTRIES: usize = 250_000;
/// Without file locks, a temporary file this long unchanged belongs to no live upload (a
/// running upload writes a block at least every few seconds, or times out).
pub const MIN_AGE_UNLOCKED: Duration = Duration::from_secs(60);

/// What a sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// Debris removed, by path.
    pub removed: Vec<PathBuf>,
    /// Temporary files left because a live upload holds them.
    pub in_use: usize,
    /// Directories or files that could not be read or removed.
    pub skipped: usize,
    /// True when [`MAX_DEPTH`] or [`MAX_ENTRIES`] cut the walk short.
    pub truncated: bool,
}

/// Sweeps each of `roots` (a root listed twice, or nested in another, is walked once), logging
/// each removed file and a summary.
pub fn sweep<'a>(roots: impl IntoIterator<Item = &'a Root>) -> SweepReport {
    let mut walk = Walk {
        report: SweepReport::default(),
        seen: HashSet::new(),
        entries: 0,
    };
    for root in roots {
        match root.open_beneath(".", OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty()) {
            Ok(dir) => walk.dir(dir, root.path(), 0),
            Err(e) => walk.skip(root.path(), e),
        }
    }
    let r = &walk.report;
    if !r.removed.is_empty() || r.in_use > 0 || r.skipped > 0 || r.truncated {
        tracing::info!(
            removed = r.removed.len(),
            in_use = r.in_use,
            skipped = r.skipped,
            truncated = r.truncated,
            "swept the roots for temporary files of interrupted uploads"
        );
    }
    if r.truncated {
        tracing::warn!(
            max_depth = MAX_DEPTH,
            max_entries = MAX_ENTRIES,
            "the upload debris sweep stopped early: files deeper or further on were not looked at"
        );
    }
    walk.report
}

/// Subdirectories, entries of unknown type, temporary files.
type Listing = (Vec<CString>, Vec<CString>, Vec<CString>);

struct Walk {
    report: SweepReport,
    seen: HashSet<(u64, u64)>,
    entries: usize,
}

impl Walk {
    fn dir(&mut self, dir: OwnedFd, path: &Path, depth: usize) {
        let st = match fstat(dir.as_fd()) {
            Ok(st) => st,
            Err(e) => return self.skip(path, e),
        };
        #[cfg_attr(
            linux,
            expect(
                clippy::useless_conversion,
                reason = "st_dev and st_ino widths differ between platforms"
            )
        )]
        let id = (u64::from(st.st_dev), u64::from(st.st_ino));
        if !self.seen.insert(id) {
            return;
        }
        // The listing takes one descriptor; lookups go through a duplicate (the *at calls
        // ignore the shared offset).
        let handle = match dir.try_clone() {
            Ok(h) => h,
            Err(e) => return self.skip(path, Errno::from_raw(e.raw_os_error().unwrap_or(0))),
        };
        let (subdirs, unknown, temps) = match self.list(dir) {
            Ok(l) => l,
            Err(e) => return self.skip(path, e),
        };
        let mut subdirs = subdirs;
        let mut temps = temps;
        // The filesystem did not say what these are (d_type unknown): ask without following.
        for name in unknown {
            match fstatat(
                handle.as_fd(),
                name.as_c_str(),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            ) {
                Ok(st) if kind(&st) == SFlag::S_IFDIR => subdirs.push(name),
                Ok(st) if kind(&st) == SFlag::S_IFREG && is_temp_name(name.to_bytes()) => {
                    temps.push(name);
                }
                Ok(_) | Err(Errno::ENOENT) => {}
                Err(e) => self.skip(&path.join(os(&name)), e),
            }
        }
        for name in temps {
            self.candidate(handle.as_fd(), path, &name);
        }
        if subdirs.is_empty() || self.report.truncated {
            return;
        }
        if depth >= MAX_DEPTH {
            self.report.truncated = true;
            return;
        }
        for name in subdirs {
            let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let sub = path.join(os(&name));
            match nix::fcntl::openat(handle.as_fd(), name.as_c_str(), flags, Mode::empty()) {
                Ok(fd) => self.dir(fd, &sub, depth + 1),
                // Replaced by a symlink since the listing: not ours to enter.
                Err(Errno::ELOOP | Errno::ENOTDIR | Errno::ENOENT) => {}
                Err(e) => self.skip(&sub, e),
            }
            if self.report.truncated {
                return;
            }
        }
    }

    /// The directory's entries: subdirectories, entries of unknown type, and regular files
    /// with a temporary name. Everything is listed before anything is removed.
    fn list(&mut self, dir: OwnedFd) -> Result<Listing, Errno> {
        use nix::dir::Type;
        let mut listing = nix::dir::Dir::from_fd(dir)?;
        let (mut subdirs, mut unknown, mut temps) = (Vec::new(), Vec::new(), Vec::new());
        for entry in listing.iter() {
            let entry = entry?;
            let name = entry.file_name();
            if matches!(name.to_bytes(), b"." | b"..") {
                continue;
            }
            self.entries += 1;
            if self.entries > MAX_ENTRIES {
                self.report.truncated = true;
                break;
            }
            match entry.file_type() {
                Some(Type::Directory) => subdirs.push(name.to_owned()),
                Some(Type::File) if is_temp_name(name.to_bytes()) => temps.push(name.to_owned()),
                Some(_) => {}
                None => unknown.push(name.to_owned()),
            }
        }
        Ok((subdirs, unknown, temps))
    }

    /// A regular file with a temporary name: removed unless a live upload holds it.
    fn candidate(&mut self, dir: BorrowedFd<'_>, path: &Path, name: &CStr) {
        let file_path = path.join(os(name));
        match debris(dir, name) {
            Ok(true) => match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
                Ok(()) => {
                    tracing::info!(path = %file_path.display(), "removed the temporary file of an interrupted upload");
                    self.report.removed.push(file_path);
                }
                Err(e) => self.skip(&file_path, e),
            },
            Ok(false) => self.report.in_use += 1,
            Err(Errno::ENOENT) => {}
            Err(e) => self.skip(&file_path, e),
        }
    }

    fn skip(&mut self, path: &Path, e: Errno) {
        self.report.skipped += 1;
        tracing::warn!(path = %path.display(), error = %e, "upload debris sweep: skipped");
    }
}

/// Whether the regular file `name` in `dir` is debris: nobody holds its lock (or, without
/// locks, it is old enough). Opened without following a symlink and without blocking; the
/// name must still lead to the inode that was opened.
fn debris(dir: BorrowedFd<'_>, name: &CStr) -> Result<bool, Errno> {
    let flags = OFlag::O_RDONLY
        | OFlag::O_NOFOLLOW
        | OFlag::O_NONBLOCK
        | OFlag::O_NOCTTY
        | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::openat(dir, name, flags, Mode::empty())?;
    let st = fstat(fd.as_fd())?;
    if kind(&st) != SFlag::S_IFREG {
        return Ok(false);
    }
    #[expect(
        deprecated,
        reason = "nix's Flock wrapper panics on a failed unlock in Drop; closing the descriptor \
                  is the only unlock we need"
    )]
    let locked = nix::fcntl::flock(fd.as_raw_fd(), nix::fcntl::FlockArg::LockExclusiveNonblock);
    let free = match locked {
        Ok(()) => true,
        Err(Errno::EWOULDBLOCK) => false,
        // No locks on this filesystem: go by age.
        Err(_) => older_than(&st, MIN_AGE_UNLOCKED),
    };
    if !free {
        return Ok(false);
    }
    let again = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    Ok((again.st_dev, again.st_ino) == (st.st_dev, st.st_ino))
}

fn older_than(st: &FileStat, age: Duration) -> bool {
    let mtime = UNIX_EPOCH + Duration::from_secs(u64::try_from(st.st_mtime).unwrap_or(0));
    SystemTime::now()
        .duration_since(mtime)
        .is_ok_and(|d| d >= age)
}

fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

fn os(name: &CStr) -> &OsStr {
    OsStr::from_bytes(name.to_bytes())
}
