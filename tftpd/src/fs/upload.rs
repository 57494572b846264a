//! Uploads that land atomically or not at all: the data goes to a hidden temporary file
//! (created with `O_EXCL` next to the target, beneath the root), which is fsynced and renamed
//! into place only when complete. Dropping an uncommitted [`Upload`] removes the temporary
//! file, so an aborted or failed upload leaves the previous file intact and no debris.

use std::fs::File;
use std::io::Write as _;
use std::os::fd::{AsFd, OwnedFd};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag, fchmod, fstatat};
use nix::unistd::{UnlinkatFlags, fsync, unlinkat};

use super::resolve::{RequestPath, ResolveError, Root};
use crate::proto::{ErrorCode, WireError};

/// Whether uploads are allowed, and whether they may replace files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteMode {
    /// No uploads (the default).
    #[default]
    Off,
    /// Uploads may create new files but never replace one.
    Create,
    /// Uploads may create files and replace existing ones.
    Overwrite,
}

impl WriteMode {
    /// The config and CLI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Create => "create",
            Self::Overwrite => "overwrite",
        }
    }
}

impl std::str::FromStr for WriteMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" => Ok(Self::Off),
            "create" => Ok(Self::Create),
            "overwrite" => Ok(Self::Overwrite),
            other => Err(format!(
                "invalid write mode {other:?} (allowed: off, create, overwrite)"
            )),
        }
    }
}

/// Who may upload what.
#[derive(Debug, Clone)]
pub struct UploadPolicy {
    /// Whether uploads are allowed at all.
    pub mode: WriteMode,
    allow: GlobSet,
    /// The largest upload in bytes.
    pub max_size: u64,
    /// Permission bits of uploaded files.
    pub file_mode: u32,
}

impl UploadPolicy {
    /// Builds a policy. `allow` globs match the whole normalised request path; `*` does not
    /// cross `/` (use `**` for that); an empty list allows nothing.
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
        })
    }

    /// True when `path` matches an allow glob.
    pub fn allows(&self, path: &RequestPath) -> bool {
        self.allow.is_match(path.as_str())
    }
}

/// Why an upload failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The upload grew past `uploads.max_size`.
    #[error("{path}: upload exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The request path.
        path: String,
        /// The limit.
        limit: u64,
    },
    /// Create mode, and the file appeared while the upload ran.
    #[error("{path}: already exists and write = \"create\"")]
    Exists {
        /// The request path.
        path: String,
    },
    /// Writing, syncing or renaming failed.
    #[error("{path}: {source}")]
    Io {
        /// The request path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An `uploads.allow` pattern is not a valid glob.
    #[error("uploads.allow: invalid glob {pattern:?}")]
    InvalidGlob {
        /// The pattern.
        pattern: String,
        /// The cause.
        #[source]
        source: globset::Error,
    },
}

impl UploadError {
    /// What the client is told.
    pub fn wire_error(&self) -> WireError {
        match self {
            Self::TooLarge { .. } => WireError::new(ErrorCode::DiskFull, "file too large"),
            Self::Exists { .. } => WireError::new(ErrorCode::FileExists, "file already exists"),
            Self::Io { source, .. } if is_out_of_space(source) => {
                WireError::new(ErrorCode::DiskFull, "disk full")
            }
            Self::Io { .. } | Self::InvalidGlob { .. } => {
                WireError::new(ErrorCode::NotDefined, "write failed")
            }
        }
    }
}

/// True for a full filesystem or an exhausted quota: RFC 1350's "disk full" (code 3).
pub(super) fn is_out_of_space(e: &std::io::Error) -> bool {
    e.raw_os_error()
        .is_some_and(|c| c == Errno::ENOSPC as i32 || c == Errno::EDQUOT as i32)
}

/// Attempts at a free temporary name before giving up.
const TEMP_TRIES: usize = 8;
/// Bytes of the target's name kept in the temporary name (NAME_MAX is 255).
const TEMP_NAME_KEEP: usize = 200;

/// An upload in progress.
#[derive(Debug)]
pub struct Upload {
    dir: OwnedFd,
    temp: String,
    target: String,
    path: String,
    file: File,
    written: u64,
    max_size: u64,
    mode: WriteMode,
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
        let dir = root
            .open_beneath(
                path.parent().unwrap_or("."),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY,
                Mode::empty(),
            )
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
        let (temp, fd) = create_temp(&dir, &target).map_err(err)?;
        fchmod(fd.as_fd(), file_mode(policy.file_mode)).map_err(err)?;
        Ok(Self {
            dir,
            temp,
            target,
            path: path.to_string(),
            file: File::from(fd),
            written: 0,
            max_size: policy.max_size,
            mode: policy.mode,
            committed: false,
        })
    }

    /// Appends bytes; refuses, before writing, anything past the size limit.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), UploadError> {
        // Saturating: a limit near u64::MAX must not wrap into a small total.
        let total = self.written.saturating_add(bytes.len() as u64);
        if total > self.max_size {
            return Err(UploadError::TooLarge {
                path: self.path.clone(),
                limit: self.max_size,
            });
        }
        self.file
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

    /// Makes the upload durable and visible: fsync the data, rename it over the target (never
    /// replacing an existing file in create mode), fsync the directory.
    pub fn commit(mut self) -> Result<(), UploadError> {
        self.file.sync_all().map_err(|e| self.io(e))?;
        self.rename_into_place()?;
        self.committed = true;
        fsync(self.dir.as_fd()).map_err(|e| self.io(e.into()))
    }

    #[cfg(target_os = "linux")]
    fn rename_into_place(&self) -> Result<(), UploadError> {
        use nix::fcntl::{RenameFlags, renameat2};
        let flags = match self.mode {
            WriteMode::Create => RenameFlags::RENAME_NOREPLACE,
            _ => RenameFlags::empty(),
        };
        let (d, t, n) = (self.dir.as_fd(), self.temp.as_str(), self.target.as_str());
        renameat2(d, t, d, n, flags).map_err(|e| self.rename_error(e))
    }

    #[cfg(not(target_os = "linux"))]
    fn rename_into_place(&self) -> Result<(), UploadError> {
        use nix::unistd::linkat;
        let (d, t, n) = (self.dir.as_fd(), self.temp.as_str(), self.target.as_str());
        match self.mode {
            // link(2) fails with EEXIST instead of replacing: the portable no-replace rename.
            WriteMode::Create => {
                linkat(d, t, d, n, AtFlags::empty()).map_err(|e| self.rename_error(e))?;
                let _ = unlinkat(d, t, UnlinkatFlags::NoRemoveDir);
                Ok(())
            }
            _ => nix::fcntl::renameat(d, t, d, n).map_err(|e| self.rename_error(e)),
        }
    }

    fn rename_error(&self, e: Errno) -> UploadError {
        if e == Errno::EEXIST {
            UploadError::Exists {
                path: self.path.clone(),
            }
        } else {
            self.io(e.into())
        }
    }

    /// Gives up: the temporary file is removed and the target is untouched.
    pub fn abort(self) {}
}

impl Drop for Upload {
    fn drop(&mut self) {
        if !self.committed {
            let _ = unlinkat(
                self.dir.as_fd(),
                self.temp.as_str(),
                UnlinkatFlags::NoRemoveDir,
            );
        }
    }
}

/// Permission bits as nix's `Mode` (whose width differs between Linux and the BSDs).
fn file_mode(bits: u32) -> Mode {
    Mode::from_bits_truncate((bits & 0o777) as _)
}

/// Creates `.<target>.tftpd-<8 hex digits>` with `O_EXCL`, retrying on a name clash.
fn create_temp(dir: &OwnedFd, target: &str) -> Result<(String, OwnedFd), Errno> {
    let mut keep = target.len().min(TEMP_NAME_KEEP);
    while !target.is_char_boundary(keep) {
        keep -= 1;
    }
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut last = Errno::EEXIST;
    for _ in 0..TEMP_TRIES {
        let name = format!(".{}.tftpd-{:08x}", &target[..keep], fastrand::u32(..));
        match nix::fcntl::openat(
            dir.as_fd(),
            name.as_str(),
            flags,
            Mode::from_bits_truncate(0o600),
        ) {
            Ok(fd) => return Ok((name, fd)),
            Err(Errno::EEXIST) => last = Errno::EEXIST,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{PermissionsExt as _, symlink};
    use std::path::Path;

    use super::*;
    use crate::fs::testdir::TestDir;

    fn setup(mode: WriteMode, allow: &[&str], max: u64) -> (TestDir, Root, UploadPolicy) {
        let t = TestDir::new();
        std::fs::create_dir_all(t.path().join("root/sub")).expect("root");
        std::fs::write(t.path().join("root/existing.bin"), b"old content").expect("existing");
        let root = Root::open(&t.path().join("root")).expect("open root");
        let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
        let policy = UploadPolicy::new(mode, &allow, max, 0o640).expect("policy");
        (t, root, policy)
    }

    fn path(s: &str) -> RequestPath {
        RequestPath::parse(s.as_bytes()).expect("valid test path")
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn create_mode_stores_a_new_file_with_the_configured_mode() {
        let (t, root, policy) = setup(WriteMode::Create, &["**"], 1 << 20);
        let mut up = root
            .create_upload(&path("sub/new.bin"), &policy)
            .expect("create");
        up.write(b"hello ").expect("write");
        up.write(b"world").expect("write");
        assert_eq!(up.written(), 11, "written() counts both writes");
        up.commit().expect("commit");
        let p = t.path().join("root/sub/new.bin");
        assert_eq!(
            std::fs::read(&p).expect("read back"),
            b"hello world",
            "the committed file holds what was written, in order"
        );
        let mode = std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o640, "file_mode applied regardless of umask");
        assert_eq!(
            entries(&t.path().join("root/sub")),
            vec!["new.bin"],
            "no temp debris"
        );
    }

    #[test]
    fn create_mode_refuses_an_existing_file_and_leaves_it_alone() {
        let (t, root, policy) = setup(WriteMode::Create, &["*"], 1 << 20);
        let err = root
            .create_upload(&path("existing.bin"), &policy)
            .expect_err("exists");
        assert!(matches!(err, ResolveError::Exists { .. }), "{err}");
        assert_eq!(
            err.wire_error().code,
            ErrorCode::FileExists,
            "the client is told the file exists"
        );
        assert_eq!(
            std::fs::read(t.path().join("root/existing.bin")).expect("read"),
            b"old content",
            "the existing file is untouched"
        );
        assert_eq!(
            entries(&t.path().join("root")),
            vec!["existing.bin", "sub"],
            "no temp file was made"
        );
    }

    #[test]
    fn file_appearing_during_a_create_upload_is_not_clobbered() {
        let (t, root, policy) = setup(WriteMode::Create, &["*"], 1 << 20);
        let mut up = root
            .create_upload(&path("race.bin"), &policy)
            .expect("create");
        up.write(b"mine").expect("write");
        std::fs::write(t.path().join("root/race.bin"), b"theirs").expect("racing writer");
        let err = up.commit().expect_err("must not replace");
        assert!(matches!(err, UploadError::Exists { .. }), "{err}");
        assert_eq!(
            std::fs::read(t.path().join("root/race.bin")).expect("read"),
            b"theirs",
            "the file that appeared first wins"
        );
        assert_eq!(
            entries(&t.path().join("root")),
            vec!["existing.bin", "race.bin", "sub"],
            "the failed commit removed its temp file"
        );
    }

    #[test]
    fn overwrite_replaces_atomically() {
        let (t, root, policy) = setup(WriteMode::Overwrite, &["*"], 1 << 20);
        let mut up = root
            .create_upload(&path("existing.bin"), &policy)
            .expect("create");
        up.write(b"new").expect("write");
        assert_eq!(
            std::fs::read(t.path().join("root/existing.bin")).expect("read"),
            b"old content",
            "the old file stays until commit"
        );
        up.commit().expect("commit");
        assert_eq!(
            std::fs::read(t.path().join("root/existing.bin")).expect("read"),
            b"new",
            "the commit replaced the content"
        );
        assert_eq!(
            entries(&t.path().join("root")),
            vec!["existing.bin", "sub"],
            "the temp file became the target"
        );
    }

    #[test]
    fn aborted_or_dropped_upload_leaves_the_old_file_and_no_debris() {
        let (t, root, policy) = setup(WriteMode::Overwrite, &["*"], 1 << 20);
        let mut up = root
            .create_upload(&path("existing.bin"), &policy)
            .expect("create");
        up.write(b"partial").expect("write");
        drop(up);
        let mut up = root
            .create_upload(&path("other.bin"), &policy)
            .expect("create");
        up.write(b"partial").expect("write");
        up.abort();
        assert_eq!(
            std::fs::read(t.path().join("root/existing.bin")).expect("read"),
            b"old content",
            "the dropped overwrite left the old content"
        );
        assert_eq!(
            entries(&t.path().join("root")),
            vec!["existing.bin", "sub"],
            "no temp files"
        );
    }

    #[test]
    fn too_large_upload_is_refused_before_writing() {
        let (t, root, policy) = setup(WriteMode::Create, &["*"], 10);
        let mut up = root
            .create_upload(&path("big.bin"), &policy)
            .expect("create");
        up.write(b"0123456789").expect("exactly the limit");
        let err = up.write(b"x").expect_err("over the limit");
        assert!(
            matches!(err, UploadError::TooLarge { limit: 10, .. }),
            "{err}"
        );
        assert_eq!(
            err.wire_error().code,
            ErrorCode::DiskFull,
            "too large is disk full on the wire"
        );
        assert_eq!(up.written(), 10, "the refused block was not counted");
        drop(up);
        assert_eq!(
            entries(&t.path().join("root")),
            vec!["existing.bin", "sub"],
            "the refused upload left nothing behind"
        );
    }

    #[test]
    fn file_mode_is_applied_whatever_the_umask() {
        // 0o666 has the group and other write bits a usual umask (022) would clear if the
        // mode were only passed to open(2).
        let t = TestDir::new();
        std::fs::create_dir(t.path().join("root")).expect("root");
        let root = Root::open(&t.path().join("root")).expect("open root");
        for (name, bits) in [
            ("rw.bin", 0o666),
            ("private.bin", 0o600),
            ("odd.bin", 0o4755),
        ] {
            let policy =
                UploadPolicy::new(WriteMode::Create, &["*".to_string()], 10, bits).expect("policy");
            let mut up = root.create_upload(&path(name), &policy).expect("create");
            up.write(b"x").expect("write");
            up.commit().expect("commit");
            let mode = std::fs::metadata(t.path().join("root").join(name))
                .expect("meta")
                .permissions()
                .mode()
                & 0o7777;
            assert_eq!(
                mode,
                bits & 0o777,
                "{name}: file_mode {bits:o} applied, set-id and sticky bits dropped"
            );
        }
    }

    #[test]
    fn policy_refusals_come_before_any_file_is_made() {
        let (t, root, policy) = setup(WriteMode::Off, &["*"], 100);
        let err = root
            .create_upload(&path("a.bin"), &policy)
            .expect_err("off");
        assert!(matches!(err, ResolveError::WriteDisabled), "{err}");
        let (_t2, root, policy) = setup(WriteMode::Create, &["*.bin"], 100);
        assert!(
            root.create_upload(&path("a.bin"), &policy).is_ok(),
            "*.bin allows a.bin"
        );
        for name in ["a.txt", "sub/a.bin"] {
            let err = root
                .create_upload(&path(name), &policy)
                .expect_err("not allowed");
            assert!(
                matches!(err, ResolveError::NotAllowed { .. }),
                "{name}: {err}"
            );
            assert!(err.is_security_refusal(), "an audit event");
        }
        let (_t3, root, policy) = setup(WriteMode::Create, &[], 100);
        let err = root
            .create_upload(&path("a.bin"), &policy)
            .expect_err("an empty allow-list allows nothing");
        assert!(matches!(err, ResolveError::NotAllowed { .. }), "{err}");
        assert_eq!(
            entries(&t.path().join("root")),
            vec!["existing.bin", "sub"],
            "a refused upload makes no file"
        );
    }

    #[test]
    fn uploads_never_leave_the_root_or_create_directories() {
        let (t, root, policy) = setup(WriteMode::Overwrite, &["**"], 100);
        symlink(t.path(), t.path().join("root/out")).expect("symlink");
        symlink("..", t.path().join("root/up")).expect("symlink");
        symlink("../..", t.path().join("root/sub/upup")).expect("symlink");
        symlink(t.path().join("victim"), t.path().join("root/link.bin")).expect("symlink");
        for name in ["out/evil", "up/evil", "sub/upup/evil"] {
            let err = root
                .create_upload(&path(name), &policy)
                .expect_err("escape");
            assert!(matches!(err, ResolveError::Escapes { .. }), "{name}: {err}");
            assert!(err.is_security_refusal(), "{name}: an escape is audited");
        }
        let err = root
            .create_upload(&path("nodir/x.bin"), &policy)
            .expect_err("no dir");
        assert!(matches!(err, ResolveError::NotFound { .. }), "{err}");
        let err = root
            .create_upload(&path("link.bin"), &policy)
            .expect_err("symlink target");
        assert!(matches!(err, ResolveError::NotRegularFile { .. }), "{err}");
        assert_eq!(
            entries(t.path()),
            vec!["root"],
            "nothing was written outside the root"
        );
        assert!(
            !t.path().join("root/nodir").exists(),
            "no directory created"
        );
    }

    #[test]
    fn overwrite_refuses_targets_that_are_not_regular_files() {
        let (t, root, policy) = setup(WriteMode::Overwrite, &["**"], 100);
        nix::unistd::mkfifo(&t.path().join("root/fifo"), Mode::from_bits_truncate(0o644))
            .expect("mkfifo");
        for name in ["sub", "fifo"] {
            let err = root
                .create_upload(&path(name), &policy)
                .expect_err("not a regular file");
            assert!(
                matches!(err, ResolveError::NotRegularFile { .. }),
                "{name}: {err}"
            );
        }
        assert!(
            t.path().join("root/sub").is_dir(),
            "the directory is still there"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn uploads_through_a_symlinked_directory_inside_the_root_work_on_linux() {
        let (t, root, policy) = setup(WriteMode::Create, &["**"], 100);
        symlink("sub", t.path().join("root/alias")).expect("symlink");
        let mut up = root
            .create_upload(&path("alias/via-link.bin"), &policy)
            .expect("a link inside the root");
        up.write(b"linked").expect("write");
        up.commit().expect("commit");
        assert_eq!(
            std::fs::read(t.path().join("root/sub/via-link.bin")).expect("read"),
            b"linked",
            "the upload landed in the link's target directory"
        );
    }

    #[test]
    fn invalid_glob_is_an_error_naming_it() {
        let err = UploadPolicy::new(WriteMode::Create, &["a[".to_string()], 1, 0o644)
            .expect_err("bad glob");
        assert!(err.to_string().contains("a["), "{err}");
    }

    #[test]
    fn write_mode_parses_and_lists_allowed_values() {
        for mode in [WriteMode::Off, WriteMode::Create, WriteMode::Overwrite] {
            assert_eq!(
                mode.as_str().parse::<WriteMode>(),
                Ok(mode),
                "{} round-trips",
                mode.as_str()
            );
        }
        let err = "yes".parse::<WriteMode>().expect_err("invalid");
        assert!(err.contains("off, create, overwrite"), "{err}");
    }
}
