//! The root jail: request names are checked as text, then every file is opened relative to a
//! handle on the served root so that nothing outside it can be reached.
//!
//! On Linux, `openat2(2)` with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS` makes the kernel refuse
//! any resolution that leaves the root — `..`, an absolute symlink, a symlink to `../x` — and
//! any `/proc` magic link, while symlinks that stay inside the root work ([`openat2`]).
//! Elsewhere, and on a Linux without `openat2` (before 5.6, or a seccomp profile that hides
//! it), the path is walked one component at a time with `O_NOFOLLOW`, so no symlink is
//! followed at all ([`walk`]). Which one runs is probed once ([`choice`]).
//!
//! # Layout
//!
//! `path.rs` checks a request name as text, `error.rs` says why a path was refused,
//! `openat2.rs` and `walk.rs` are the two resolvers, `choice.rs` picks one; this file holds
//! the [`Root`] and the files found beneath it.

mod choice;
mod error;
#[cfg(linux)]
mod openat2;
mod path;
mod walk;

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{FileStat, Mode, SFlag, fstat};

pub use self::choice::Resolver;
use self::choice::ResolverChoice;
pub use self::error::ResolveError;
pub(in crate::fs) use self::error::is_out_of_space;
pub use self::path::{MAX_COMPONENT_LEN, MAX_PATH_LEN, RequestPath};

/// A file opened for a download, with its size.
#[derive(Debug)]
pub struct ReadFile {
    /// The open file.
    pub file: File,
    /// Its size in bytes when opened.
    pub size: u64,
    /// Its `fstat` when opened (what the hot-file cache and multicast groups key on).
    pub stat: FileStat,
}

/// A regular file found for a download and maybe not opened for reading yet: on Linux an
/// `O_PATH` descriptor, which opened nothing; without /proc, and elsewhere, the file open
/// already. Its `fstat` identifies the contents, so a download the hot-file cache holds is
/// served without ever opening the file: the reopen through `/proc/self/fd` and its checks
/// were about 8 µs of a small download's ~100 µs here.
#[derive(Debug)]
pub struct FoundFile {
    fd: OwnedFd,
    stat: FileStat,
    /// `fd` is open for reading already (no `O_PATH` handle to reopen).
    readable: bool,
    /// The request path, for the errors of [`open`](Self::open).
    path: String,
}

impl FoundFile {
    /// The file's `fstat`, taken when it was found.
    pub fn stat(&self) -> &FileStat {
        &self.stat
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        u64::try_from(self.stat.st_size).unwrap_or(0)
    }

    /// Opens the file for reading: the very inode that was found (an `O_PATH` handle is
    /// reopened through `/proc/self/fd`, and refused if that gives another inode).
    pub fn open(self) -> Result<ReadFile, ResolveError> {
        let (fd, stat) = if self.readable {
            (self.fd, self.stat)
        } else {
            reopen_for_reading(&self.fd, &self.stat)
                .map_err(|e| ResolveError::from_errno(&self.path, e))?
        };
        Ok(ReadFile {
            file: File::from(fd),
            size: u64::try_from(stat.st_size).unwrap_or(0),
            stat,
        })
    }
}

/// `found` (an `O_PATH` handle) reopened for reading through `/proc/self/fd`, with its
/// `fstat`: the same inode as `was`, or ESTALE.
fn reopen_for_reading(found: &OwnedFd, was: &FileStat) -> Result<(OwnedFd, FileStat), Errno> {
    let proc_path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(found));
    let fd = nix::fcntl::open(
        proc_path.as_str(),
        OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY,
        Mode::empty(),
    )?;
    let again = fstat(fd.as_fd())?;
    // The same inode, or someone is playing games: refuse.
    if (again.st_dev, again.st_ino) != (was.st_dev, was.st_ino) {
        return Err(Errno::ESTALE);
    }
    Ok((fd, again))
}

/// The served root, held open as the anchor of every lookup.
#[derive(Debug)]
pub struct Root {
    dir: OwnedFd,
    path: PathBuf,
    /// The resolver choice every lookup goes through: the process's, but for tests.
    resolver: &'static ResolverChoice,
}

impl Root {
    /// Opens the root directory. The first root opened also probes for `openat2` and logs
    /// which resolver runs.
    pub fn open(path: &Path) -> Result<Self, ResolveError> {
        Self::open_with(path, &choice::PROCESS)
    }

    fn open_with(path: &Path, resolver: &'static ResolverChoice) -> Result<Self, ResolveError> {
        #[cfg(linux)]
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        #[cfg(not(linux))]
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let dir = nix::fcntl::open(path, flags, Mode::empty()).map_err(|e| ResolveError::Root {
            path: path.to_path_buf(),
            source: e.into(),
        })?;
        resolver.probe(dir.as_fd());
        Ok(Self {
            dir,
            path: path.to_path_buf(),
            resolver,
        })
    }

    /// A root on the walk resolver whatever the kernel has, for the tests of the walk.
    #[cfg(test)]
    pub(crate) fn open_walking(path: &Path) -> Result<Self, ResolveError> {
        static WALK: ResolverChoice = ResolverChoice::fixed(Resolver::Walk);
        Self::open_with(path, &WALK)
    }

    /// The resolver its lookups use now (the process's, which a failing `openat2` demotes).
    pub fn resolver(&self) -> Resolver {
        self.resolver.current()
    }

    /// The configured root path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory `name` (one plain component) beneath this root, as a root of its own;
    /// `None` when there is no such directory. Resolved as request paths are, so nothing
    /// outside the root is reached, and a symlink that stays inside it works with `openat2`.
    pub fn subdir(&self, name: &str) -> Result<Option<Self>, ResolveError> {
        let path = RequestPath::parse(name.as_bytes())?;
        if path.parent().is_some() {
            return Err(ResolveError::BadName {
                name: name.to_string(),
                reason: "a directory name, not a path",
            });
        }
        #[cfg(linux)]
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
        #[cfg(not(linux))]
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
        match self.open_beneath(path.as_str(), flags, Mode::empty()) {
            Ok(dir) => Ok(Some(Self {
                dir,
                path: self.path.join(path.as_str()),
                resolver: self.resolver,
            })),
            Err(Errno::ENOENT | Errno::ENOTDIR) => Ok(None),
            Err(e) => Err(ResolveError::from_errno(path.as_str(), e)),
        }
    }

    /// Opens `rel` (a relative path, or "." for the root) beneath the root.
    pub(super) fn open_beneath(
        &self,
        rel: &str,
        flags: OFlag,
        mode: Mode,
    ) -> Result<OwnedFd, Errno> {
        self.resolver
            .open_beneath(self.dir.as_fd(), rel, flags | OFlag::O_CLOEXEC, mode)
    }

    /// Opens a regular file for reading.
    pub fn open_read(&self, path: &RequestPath) -> Result<ReadFile, ResolveError> {
        self.find_read(path)?.open()
    }

    /// Finds a regular file to read: resolved beneath the root and `fstat`ed, but (on
    /// Linux) not opened for reading until [`FoundFile::open`].
    ///
    /// Linux: the name is resolved once, as an `O_PATH` descriptor, which opens nothing (a
    /// device node's driver never sees an open, a FIFO never blocks); only after `fstat` says
    /// "regular file" may that very inode be reopened for reading through `/proc/self/fd`, so
    /// no rename in between can swap the file. Without /proc, and elsewhere, the file is
    /// opened `O_NONBLOCK | O_NOCTTY` here and checked after (a device node's open then does
    /// happen).
    pub fn find_read(&self, path: &RequestPath) -> Result<FoundFile, ResolveError> {
        let err = |e| ResolveError::from_errno(path.as_str(), e);
        let (fd, stat, readable) = self.find_regular(path).map_err(err)?;
        let Some(stat) = stat else {
            return Err(ResolveError::NotRegularFile {
                path: path.to_string(),
            });
        };
        Ok(FoundFile {
            fd,
            stat,
            readable,
            path: path.to_string(),
        })
    }

    /// `path`'s descriptor, its `fstat` when it is a regular file (`None` when not), and
    /// whether the descriptor is open for reading (else an `O_PATH` handle).
    fn find_regular(&self, path: &RequestPath) -> Result<(OwnedFd, Option<FileStat>, bool), Errno> {
        let is_regular = |st: &FileStat| {
            SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFREG
        };
        #[cfg(linux)]
        if proc_fd_available() {
            let handle = self.open_beneath(path.as_str(), OFlag::O_PATH, Mode::empty())?;
            let st = fstat(handle.as_fd())?;
            return Ok((handle, is_regular(&st).then_some(st), false));
        }
        // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below anyway.
        let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
        let fd = self.open_beneath(path.as_str(), flags, Mode::empty())?;
        let st = fstat(fd.as_fd())?;
        if !is_regular(&st) {
            return Ok((fd, None, true));
        }
        nix::fcntl::fcntl(fd.as_fd(), nix::fcntl::FcntlArg::F_SETFL(OFlag::O_RDONLY))?;
        Ok((fd, Some(st), true))
    }
}

/// Whether `/proc/self/fd` is there to reopen an `O_PATH` handle (not in a chroot without
/// /proc). Looked at once, on the first download: after any chroot at start.
#[cfg(linux)]
pub(in crate::fs) fn proc_fd_available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| Path::new("/proc/self/fd").is_dir())
}

#[cfg(test)]
mod tests;
