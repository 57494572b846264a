//! Uploads that land atomically or not at all, and leave no debris: the data goes to a
//! temporary file beneath the root ([`temp`]: nameless with `O_TMPFILE` on Linux, else a
//! hidden `.<name>.tftpd-<8 hex>`), which is fsynced and linked or renamed into place only
//! when complete. Dropping an uncommitted [`Upload`] discards it, so an aborted or failed
//! upload leaves the previous file intact; a killed daemon's named files are removed by the
//! start-up [`sweep`]. Two caps keep uploads from filling the disk: the bytes all running
//! uploads hold ([`budget`], `uploads.max_in_flight`) and the free space they must leave
//! ([`space`], `uploads.min_free_bytes`).
//!
//! # Layout
//!
//! `write_mode.rs` is the `write` key, `temp.rs` the two temporary-file strategies and
//! their names, `sweep.rs` the start-up sweep, `budget.rs` the in-flight count, `space.rs`
//! the free-space reserve, `error.rs` why an upload failed and what the client is told;
//! this file holds the policy and the [`Upload`] that uses them.

mod budget;
mod error;
mod space;
pub mod sweep;
mod temp;
mod write_mode;

use std::io::Write as _;
use std::os::fd::{AsFd, OwnedFd};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag, fchmod, fstatat};
use nix::unistd::fsync;

pub use self::budget::{InFlight, PROCESS_IN_FLIGHT};
pub use self::error::UploadError;
use self::space::Reserve;
pub use self::sweep::{SweepReport, sweep};
use self::temp::Temp;
pub use self::write_mode::WriteMode;
use super::resolve::{RequestPath, ResolveError, Root};

/// Who may upload what, and how much room uploads may take.
#[derive(Debug, Clone)]
pub struct UploadPolicy {
    /// Whether uploads are allowed at all.
    pub mode: WriteMode,
    allow: GlobSet,
    /// The largest upload in bytes.
    pub max_size: u64,
    /// Permission bits of uploaded files.
    pub file_mode: u32,
    /// The most bytes all running uploads may hold at once (`uploads.max_in_flight`).
    pub max_in_flight: u64,
    /// Free bytes uploads must leave on their filesystem; 0: no reserve
    /// (`uploads.min_free_bytes`).
    pub min_free_bytes: u64,
    /// Where the bytes in flight are counted: the process's count, but for tests.
    in_flight: &'static InFlight,
    /// Try `O_TMPFILE` first (off only in tests of the named fallback).
    anonymous_temp: bool,
}

impl UploadPolicy {
    /// Builds a policy with no cap on the bytes in flight and no free-space reserve (set
    /// [`max_in_flight`](Self::max_in_flight) and [`min_free_bytes`](Self::min_free_bytes)
    /// for those). `allow` globs match the whole normalised request path; `*` does not cross
    /// `/` (use `**` for that); an empty list allows nothing.
    pub fn new(
        mode: WriteMode,
        allow: &[String],
        max_size: u64,
        file_mode: u32,
    ) -> Result<Self, UploadError> {
        let mut set = GlobSetBuilder::new();
        for pattern in allow {
            let glob = GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .map_err(|source| UploadError::InvalidGlob {
                    pattern: pattern.clone(),
                    source,
                })?;
            set.add(glob);
        }
        let allow = set.build().map_err(|source| UploadError::InvalidGlob {
            pattern: allow.join(", "),
            source,
        })?;
        Ok(Self {
            mode,
            allow,
            max_size,
            file_mode,
            max_in_flight: u64::MAX,
            min_free_bytes: 0,
            in_flight: &PROCESS_IN_FLIGHT,
            anonymous_temp: true,
        })
    }

    /// True when `path` matches an allow glob.
    pub fn allows(&self, path: &RequestPath) -> bool {
        self.allow.is_match(path.as_str())
    }

    /// The same policy counting its bytes in flight in `count`, not the process's.
    #[cfg(test)]
    pub(crate) fn counting_in(mut self, count: &'static InFlight) -> Self {
        self.in_flight = count;
        self
    }

    /// The same policy with named temporary files only, as where `O_TMPFILE` is refused.
    #[cfg(test)]
    pub(crate) fn with_named_temp(mut self) -> Self {
        self.anonymous_temp = false;
        self
    }
}

impl Root {
    /// Starts an upload of `path` under `policy`. Written here, beside [`Upload`], so the
    /// resolver (which uploads build on) knows nothing of uploads.
    pub fn create_upload(
        &self,
        path: &RequestPath,
        policy: &UploadPolicy,
    ) -> Result<Upload, ResolveError> {
        Upload::create(self, path, policy)
    }
}

/// An upload in progress.
#[derive(Debug)]
pub struct Upload {
    dir: OwnedFd,
    temp: Temp,
    target: String,
    path: String,
    written: u64,
    max_size: u64,
    mode: WriteMode,
    file_mode: u32,
    in_flight: &'static InFlight,
    max_in_flight: u64,
    /// Bytes this upload holds in `in_flight`, given back on drop.
    reserved: u64,
    reserve: Reserve,
    committed: bool,
}

impl Upload {
    /// Lowers the size limit for this upload (e.g. to what fits without block rollover).
    pub fn cap_size(&mut self, limit: u64) {
        self.max_size = self.max_size.min(limit);
    }

    pub(super) fn create(
        root: &Root,
        path: &RequestPath,
        policy: &UploadPolicy,
    ) -> Result<Self, ResolveError> {
        if policy.mode == WriteMode::Off {
            return Err(ResolveError::WriteDisabled);
        }
        if !policy.allows(path) {
            return Err(ResolveError::NotAllowed {
                path: path.to_string(),
            });
        }
        let err = |e| ResolveError::from_errno(path.as_str(), e);
        let parent = path.parent().unwrap_or(".");
        let dir = root
            .open_beneath(parent, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty())
            .map_err(err)?;
        let target = path.file_name().to_string();
        match fstatat(dir.as_fd(), target.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => {
                if policy.mode == WriteMode::Create {
                    return Err(ResolveError::Exists {
                        path: path.to_string(),
                    });
                }
                // Replacing a symlink, FIFO or directory is never what an upload means.
                if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFREG {
                    return Err(ResolveError::NotRegularFile {
                        path: path.to_string(),
                    });
                }
            }
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(err(e)),
        }
        let dir_path = root.path().join(parent);
        let temp = Temp::create(&dir, &dir_path, &target, policy.anonymous_temp).map_err(err)?;
        Ok(Self {
            dir,
            temp,
            target,
            path: path.to_string(),
            written: 0,
            max_size: policy.max_size,
            mode: policy.mode,
            file_mode: policy.file_mode,
            in_flight: policy.in_flight,
            max_in_flight: policy.max_in_flight,
            reserved: 0,
            reserve: Reserve::new(policy.min_free_bytes),
            committed: false,
        })
    }

    /// Checks, before the first DATA, that the upload has room: the free-space reserve is
    /// there (with `announced` bytes written on top of it, the WRQ's `tsize`), and the bytes
    /// in flight leave room for `announced` more (or any at all, without a `tsize`). Nothing
    /// is reserved: bytes count as they are written.
    pub fn check_room(&mut self, announced: Option<u64>) -> Result<(), UploadError> {
        let more = announced.unwrap_or(0);
        let dir = &self.dir;
        if !self
            .reserve
            .allows(0, more, || space::available(dir))
            .map_err(|e| self.io(e.into()))?
        {
            return Err(self.low_space());
        }
        if !self.in_flight.fits(more.max(1), self.max_in_flight) {
            return Err(self.in_flight_full());
        }
        Ok(())
    }

    /// Appends bytes; refuses, before writing, anything past the size limit, the bytes in
    /// flight or the free-space reserve.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), UploadError> {
        let n = bytes.len() as u64;
        // Saturating: a limit near u64::MAX must not wrap into a small total.
        let total = self.written.saturating_add(n);
        if total > self.max_size {
            return Err(UploadError::TooLarge {
                path: self.path.clone(),
                limit: self.max_size,
            });
        }
        let dir = &self.dir;
        if !self
            .reserve
            .allows(total, 0, || space::available(dir))
            .map_err(|e| self.io(e.into()))?
        {
            return Err(self.low_space());
        }
        if !self.in_flight.try_reserve(n, self.max_in_flight) {
            return Err(self.in_flight_full());
        }
        self.reserved += n;
        self.temp
            .file()
            .write_all(bytes)
            .map_err(|source| self.io(source))?;
        self.written = total;
        Ok(())
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    fn io(&self, source: std::io::Error) -> UploadError {
        UploadError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn low_space(&self) -> UploadError {
        UploadError::LowSpace {
            path: self.path.clone(),
            reserve: self.reserve.min_free(),
        }
    }

    fn in_flight_full(&self) -> UploadError {
        UploadError::InFlightFull {
            path: self.path.clone(),
            limit: self.max_in_flight,
        }
    }

    /// Makes the upload durable and visible: set the file mode (not before: a named
    /// temporary file stays private while incomplete), fsync the data, link or rename it
    /// into place (never replacing an existing file in create mode), fsync the directory.
    pub fn commit(mut self) -> Result<(), UploadError> {
        fchmod(self.temp.file().as_fd(), file_mode(self.file_mode))
            .map_err(|e| self.io(e.into()))?;
        self.temp.file().sync_all().map_err(|e| self.io(e))?;
        self.temp
            .link_into_place(&self.dir, &self.target, self.mode)
            .map_err(|e| {
                if e == Errno::EEXIST {
                    UploadError::Exists {
                        path: self.path.clone(),
                    }
                } else {
                    self.io(e.into())
                }
            })?;
        self.committed = true;
        fsync(self.dir.as_fd()).map_err(|e| self.io(e.into()))
    }

    /// Gives up: the temporary file is removed and the target is untouched.
    pub fn abort(self) {}
}

impl Drop for Upload {
    fn drop(&mut self) {
        if !self.committed {
            self.temp.discard(&self.dir);
        }
        // Committed or not, these bytes are no longer in flight.
        self.in_flight.release(self.reserved);
    }
}

/// Permission bits as nix's `Mode` (whose width differs between Linux and the BSDs).
fn file_mode(bits: u32) -> Mode {
    Mode::from_bits_truncate((bits & 0o777) as _)
}

#[cfg(test)]
mod tests;
