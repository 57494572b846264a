//! The root jail: request names are checked as text, then every file is opened relative to a
//! handle on the served root so that nothing outside it can be reached.
//!
//! On Linux, `openat2(2)` with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS` makes the kernel refuse
//! any resolution that leaves the root — `..`, an absolute symlink, a symlink to `../x` — and
//! any `/proc` magic link, while symlinks that stay inside the root work. Elsewhere the path is
//! walked one component at a time with `O_NOFOLLOW`, so no symlink is followed at all.

use std::fmt;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{FileStat, Mode, SFlag, fstat};

use super::upload::{Upload, UploadPolicy, is_out_of_space};
use crate::proto::{ErrorCode, WireError};

/// Longest request path accepted, in bytes.
pub const MAX_PATH_LEN: usize = 1024;
/// Longest single path component accepted, in bytes (NAME_MAX on Linux and the BSDs).
pub const MAX_COMPONENT_LEN: usize = 255;

/// A request name that passed the text checks: UTF-8, relative, made of plain components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPath {
    path: String,
}

impl RequestPath {
    /// Checks a raw request name. Leading `/` characters are dropped (clients often send
    /// `/pxelinux.0` meaning the root's file) and repeated `/` collapse; then the name must be
    /// non-empty, with no `.` or `..` component, no backslash and no control character. NUL and
    /// the C0 controls and DEL are refused, and so are the C1 controls (U+0080..=U+009F): none
    /// belongs in a boot file name, and all of them can garble a terminal reading the log.
    pub fn parse(raw: &[u8]) -> Result<Self, ResolveError> {
        let bad = |reason| ResolveError::BadName {
            name: String::from_utf8_lossy(raw).into_owned(),
            reason,
        };
        if raw.len() > MAX_PATH_LEN {
            return Err(bad("longer than 1024 bytes"));
        }
        let text = std::str::from_utf8(raw).map_err(|_| bad("not UTF-8"))?;
        if text.contains('\\') {
            // Windows clients send `\Boot\BCD`; a remap rule can translate it. Taken as is,
            // a backslash is a legal Unix name byte that would only confuse the operator.
            return Err(bad("contains a backslash"));
        }
        if text.chars().any(|c| c.is_control()) {
            return Err(bad("contains a control character"));
        }
        let mut parts = Vec::new();
        for part in text.split('/').filter(|p| !p.is_empty()) {
            if part == "." || part == ".." {
                return Err(bad("contains a . or .. component"));
            }
            if part.len() > MAX_COMPONENT_LEN {
                return Err(bad("has a component longer than 255 bytes"));
            }
            parts.push(part);
        }
        if parts.is_empty() {
            return Err(bad("names no file"));
        }
        Ok(Self {
            path: parts.join("/"),
        })
    }

    /// The normalised relative path.
    pub fn as_str(&self) -> &str {
        &self.path
    }

    /// The last component.
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    /// Everything before the last component, if there is anything.
    pub fn parent(&self) -> Option<&str> {
        self.path.rsplit_once('/').map(|(dir, _)| dir)
    }
}

impl fmt::Display for RequestPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)
    }
}

/// Why a path could not be served or written.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The name failed the text checks.
    #[error("refused name {name:?}: {reason}")]
    BadName {
        /// The name as sent (lossy).
        name: String,
        /// Which check failed.
        reason: &'static str,
    },
    /// No such file.
    #[error("{path}: not found")]
    NotFound {
        /// The request path.
        path: String,
    },
    /// The filesystem refused access.
    #[error("{path}: permission denied")]
    PermissionDenied {
        /// The request path.
        path: String,
    },
    /// Resolution would leave the root (or follow a symlink where none may be followed).
    #[error("{path}: resolves outside the root or through a refused symlink")]
    Escapes {
        /// The request path.
        path: String,
    },
    /// Not a regular file (a directory, FIFO, device or socket).
    #[error("{path}: not a regular file")]
    NotRegularFile {
        /// The request path.
        path: String,
    },
    /// Create mode and the file exists.
    #[error("{path}: already exists and write = \"create\"")]
    Exists {
        /// The request path.
        path: String,
    },
    /// Uploads are off.
    #[error("uploads are disabled (write = \"off\")")]
    WriteDisabled,
    /// The name matches no `uploads.allow` glob.
    #[error("{path}: not matched by uploads.allow")]
    NotAllowed {
        /// The request path.
        path: String,
    },
    /// Another I/O error.
    #[error("{path}: {source}")]
    Io {
        /// The request path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The root itself cannot be opened.
    #[error("cannot open the root directory {}", path.display())]
    Root {
        /// The configured root.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl ResolveError {
    /// What the client is told: a fixed text, never a path or an OS message.
    pub fn wire_error(&self) -> WireError {
        match self {
            Self::NotFound { .. } | Self::NotRegularFile { .. } => {
                WireError::new(ErrorCode::FileNotFound, "file not found")
            }
            Self::Exists { .. } => WireError::new(ErrorCode::FileExists, "file already exists"),
            // Creating an upload's temporary file can hit a full disk or quota before any data
            // is written; the client is told the same as when a write hits it.
            Self::Io { source, .. } if is_out_of_space(source) => {
                WireError::new(ErrorCode::DiskFull, "disk full")
            }
            Self::Io { .. } | Self::Root { .. } => {
                WireError::new(ErrorCode::NotDefined, "server error")
            }
            Self::BadName { .. }
            | Self::PermissionDenied { .. }
            | Self::Escapes { .. }
            | Self::WriteDisabled
            | Self::NotAllowed { .. } => {
                WireError::new(ErrorCode::AccessViolation, "access violation")
            }
        }
    }

    /// True for refusals worth an audit event.
    pub fn is_security_refusal(&self) -> bool {
        matches!(
            self,
            Self::BadName { .. }
                | Self::Escapes { .. }
                | Self::NotAllowed { .. }
                | Self::WriteDisabled
                | Self::PermissionDenied { .. }
        )
    }

    /// Maps an errno from a lookup of `path`.
    pub(super) fn from_errno(path: &str, e: Errno) -> Self {
        let path = path.to_string();
        match e {
            Errno::ENOENT | Errno::ENOTDIR => Self::NotFound { path },
            Errno::EACCES | Errno::EPERM => Self::PermissionDenied { path },
            // EXDEV: RESOLVE_BENEATH refused; ELOOP: a refused (magic) link or O_NOFOLLOW.
            Errno::EXDEV | Errno::ELOOP => Self::Escapes { path },
            // The walk's O_NOFOLLOW meeting a symlink: POSIX says ELOOP, but FreeBSD and
            // DragonFly answer EMLINK and NetBSD EFTYPE.
            #[cfg(any(target_os = "freebsd", target_os = "dragonfly"))]
            Errno::EMLINK => Self::Escapes { path },
            #[cfg(target_os = "netbsd")]
            Errno::EFTYPE => Self::Escapes { path },
            Errno::ENAMETOOLONG => Self::BadName {
                name: path,
                reason: "too long for the filesystem",
            },
            Errno::ENXIO | Errno::EISDIR => Self::NotRegularFile { path },
            other => Self::Io {
                path,
                source: std::io::Error::from(other),
            },
        }
    }
}

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
}

impl Root {
    /// Opens the root directory.
    pub fn open(path: &Path) -> Result<Self, ResolveError> {
        #[cfg(target_os = "linux")]
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        #[cfg(not(target_os = "linux"))]
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let dir = nix::fcntl::open(path, flags, Mode::empty()).map_err(|e| ResolveError::Root {
            path: path.to_path_buf(),
            source: e.into(),
        })?;
        Ok(Self {
            dir,
            path: path.to_path_buf(),
        })
    }

    /// The configured root path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory `name` (one plain component) beneath this root, as a root of its own;
    /// `None` when there is no such directory. Resolved as request paths are, so a symlink
    /// that stays inside the root works and nothing outside it is reached.
    pub fn subdir(&self, name: &str) -> Result<Option<Self>, ResolveError> {
        let path = RequestPath::parse(name.as_bytes())?;
        if path.parent().is_some() {
            return Err(ResolveError::BadName {
                name: name.to_string(),
                reason: "a directory name, not a path",
            });
        }
        #[cfg(target_os = "linux")]
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
        #[cfg(not(target_os = "linux"))]
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
        match self.open_beneath(path.as_str(), flags, Mode::empty()) {
            Ok(dir) => Ok(Some(Self {
                dir,
                path: self.path.join(path.as_str()),
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
        open_beneath(self.dir.as_fd(), rel, flags | OFlag::O_CLOEXEC, mode)
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
        #[cfg(target_os = "linux")]
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

    /// Starts an upload of `path` under `policy`.
    pub fn create_upload(
        &self,
        path: &RequestPath,
        policy: &UploadPolicy,
    ) -> Result<Upload, ResolveError> {
        Upload::create(self, path, policy)
    }
}

/// Whether `/proc/self/fd` is there to reopen an `O_PATH` handle (not in a chroot without
/// /proc). Looked at once, on the first download: after any chroot at start.
#[cfg(target_os = "linux")]
fn proc_fd_available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| Path::new("/proc/self/fd").is_dir())
}

#[cfg(target_os = "linux")]
fn open_beneath(
    root: BorrowedFd<'_>,
    rel: &str,
    flags: OFlag,
    mode: Mode,
) -> Result<OwnedFd, Errno> {
    use nix::fcntl::{OpenHow, ResolveFlag, openat2};
    let how = OpenHow::new()
        .flags(flags)
        .mode(mode)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    openat2(root, rel, how)
}

/// Without openat2: one component at a time, never following a symlink.
#[cfg(not(target_os = "linux"))]
fn open_beneath(
    root: BorrowedFd<'_>,
    rel: &str,
    flags: OFlag,
    mode: Mode,
) -> Result<OwnedFd, Errno> {
    use nix::fcntl::openat;
    let dir_flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut parts: Vec<&str> = rel
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let Some(last) = parts.pop() else {
        return openat(root, ".", flags, mode);
    };
    let mut dir: Option<OwnedFd> = None;
    for part in parts {
        let next = match &dir {
            None => openat(root, part, dir_flags, Mode::empty())?,
            Some(d) => openat(d.as_fd(), part, dir_flags, Mode::empty())?,
        };
        dir = Some(next);
    }
    let flags = flags | OFlag::O_NOFOLLOW;
    match &dir {
        None => openat(root, last, flags, mode),
        Some(d) => openat(d.as_fd(), last, flags, mode),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::fs::testdir::TestDir;

    const SECRET: &[u8] = b"the secret outside the root";

    /// tmp/secret (outside) and tmp/root (served) with a few files.
    fn jail() -> (TestDir, Root) {
        let t = TestDir::new();
        std::fs::write(t.path().join("secret"), SECRET).expect("secret");
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("sub")).expect("root/sub");
        std::fs::write(root.join("hello.txt"), b"hello").expect("hello");
        std::fs::write(root.join("sub/inner.bin"), b"inner").expect("inner");
        let r = Root::open(&root).expect("open root");
        (t, r)
    }

    fn read(root: &Root, name: &[u8]) -> Result<Vec<u8>, ResolveError> {
        use std::io::Read as _;
        let p = RequestPath::parse(name)?;
        let mut f = root.open_read(&p)?;
        let mut v = Vec::new();
        f.file.read_to_end(&mut v).expect("read");
        assert_eq!(v.len() as u64, f.size, "size matches content");
        Ok(v)
    }

    #[test]
    fn names_are_normalised_and_checked() {
        let ok = |raw: &[u8], want: &str| {
            let p = RequestPath::parse(raw).unwrap_or_else(|e| panic!("{raw:?} refused: {e}"));
            assert_eq!(p.as_str(), want, "normalising {raw:?}");
        };
        ok(b"/pxelinux.0", "pxelinux.0");
        ok(b"//a//b/", "a/b");
        ok(b"boot/grub/grub.cfg", "boot/grub/grub.cfg");
        for bad in [
            &b""[..],
            b"/",
            b".",
            b"..",
            b"../secret",
            b"a/../../secret",
            b"/../secret",
            b"a/./b",
            b"..\\secret",
            b"a\\b",
            b"a\x01b",
            b"a\x7fb",
            b"a\nb",
            b"a\0b",
            b"pxelinux.0\0../../secret",
            b"a\xc2\x85b",
            b"\xff\xfe",
            b"a\xc0\xafb",
        ] {
            let err = RequestPath::parse(bad).expect_err("must be refused");
            assert!(
                matches!(err, ResolveError::BadName { .. }),
                "{bad:?}: {err}"
            );
            assert_eq!(
                err.wire_error().code,
                ErrorCode::AccessViolation,
                "{bad:?} is an access violation on the wire"
            );
            assert!(err.is_security_refusal(), "{bad:?} is audited");
        }
        let p = RequestPath::parse(b"a/b/c").expect("valid");
        assert_eq!(
            (p.parent(), p.file_name()),
            (Some("a/b"), "c"),
            "parent and file name split at the last /"
        );
        let p = RequestPath::parse(b"/top").expect("valid");
        assert_eq!(
            (p.parent(), p.file_name()),
            (None, "top"),
            "a top-level name has no parent"
        );
    }

    #[test]
    fn names_longer_than_the_limits_are_refused() {
        let part = "a".repeat(MAX_COMPONENT_LEN);
        assert!(
            RequestPath::parse(part.as_bytes()).is_ok(),
            "a 255-byte component is allowed"
        );
        let four = [part.as_str(); 4].join("/");
        let total = format!("{four}/{}", "b".repeat(MAX_PATH_LEN - four.len() - 1));
        assert_eq!(
            total.len(),
            MAX_PATH_LEN,
            "the test name is exactly at the limit"
        );
        assert!(
            RequestPath::parse(total.as_bytes()).is_ok(),
            "a 1024-byte path is allowed"
        );
        for (name, why) in [
            ("a".repeat(MAX_COMPONENT_LEN + 1), "a 256-byte component"),
            (format!("{total}b"), "a 1025-byte path"),
            (
                format!("/{total}"),
                "1025 bytes before the leading / is dropped",
            ),
            ("é".repeat(128), "a 256-byte component of 2-byte characters"),
            ("x".repeat(70_000), "a name longer than any UDP datagram"),
        ] {
            let err = RequestPath::parse(name.as_bytes()).expect_err(why);
            assert!(matches!(err, ResolveError::BadName { .. }), "{why}: {err}");
        }
    }

    #[test]
    fn files_inside_the_root_are_served() {
        let (_t, root) = jail();
        assert_eq!(
            read(&root, b"hello.txt").expect("hello"),
            b"hello",
            "a top-level file is served"
        );
        assert_eq!(
            read(&root, b"/sub/inner.bin").expect("inner"),
            b"inner",
            "a file in a subdirectory is served, the leading / meaning the root"
        );
    }

    #[test]
    fn no_request_name_reads_the_secret_outside_the_root() {
        let (t, root) = jail();
        let r = t.path().join("root");
        symlink("../secret", r.join("rel-link")).expect("symlink");
        symlink(t.path().join("secret"), r.join("abs-link")).expect("symlink");
        symlink("..", r.join("up")).expect("symlink");
        let secret = t.path().join("secret");
        let absolute = secret.to_string_lossy().into_owned();
        let names: [&[u8]; 14] = [
            b"../secret",
            b"a/../../secret",
            b"/../secret",
            b"sub/../../secret",
            b"..\\secret",
            b"rel-link",
            b"abs-link",
            b"up/secret",
            b"/up/secret",
            b"sub/../up/secret",
            b"up/root/../secret",
            b"secret\0",
            b"./../secret",
            absolute.as_bytes(),
        ];
        for name in names {
            let shown = String::from_utf8_lossy(name);
            match read(&root, name) {
                Ok(bytes) => panic!("{shown} was served: {:?}", String::from_utf8_lossy(&bytes)),
                Err(err) => assert!(
                    !matches!(err, ResolveError::Io { .. }),
                    "{shown}: refused for the right reason, got {err}"
                ),
            }
        }
    }

    #[test]
    fn absolute_names_resolve_inside_the_root() {
        let (t, root) = jail();
        let err = read(&root, b"/etc/passwd").expect_err("no etc in the root");
        assert!(matches!(err, ResolveError::NotFound { .. }), "{err}");
        std::fs::create_dir(t.path().join("root/etc")).expect("root/etc");
        std::fs::write(t.path().join("root/etc/passwd"), b"decoy").expect("decoy");
        assert_eq!(
            read(&root, b"/etc/passwd").expect("the root's own etc/passwd"),
            b"decoy",
            "an absolute name means the file under the root"
        );
    }

    #[test]
    fn symlinks_leaving_the_root_are_refused() {
        let (t, root) = jail();
        let r = t.path().join("root");
        symlink("../secret", r.join("rel-link")).expect("symlink");
        symlink(t.path().join("secret"), r.join("abs-link")).expect("symlink");
        symlink("..", r.join("dir-link")).expect("symlink");
        symlink("/etc", r.join("etc-link")).expect("symlink");
        symlink("loop-b", r.join("loop-a")).expect("symlink");
        symlink("loop-a", r.join("loop-b")).expect("symlink");
        symlink("loop-dir/x", r.join("loop-dir")).expect("symlink");
        // /proc magic links (/proc/self/root, /proc/self/fd/N) are refused by
        // RESOLVE_NO_MAGICLINKS; a plain symlink can only reach /proc by an absolute target,
        // which RESOLVE_BENEATH refuses first.
        symlink("/proc/self/root/etc/passwd", r.join("proc-link")).expect("symlink");
        for name in [
            &b"rel-link"[..],
            b"abs-link",
            b"dir-link/secret",
            b"etc-link/passwd",
            b"loop-a",
            b"loop-a/file",
            b"loop-dir/file",
            b"proc-link",
        ] {
            let err = read(&root, name).expect_err("must not resolve");
            assert!(
                matches!(err, ResolveError::Escapes { .. }),
                "{}: got {err}",
                String::from_utf8_lossy(name)
            );
            assert_eq!(
                err.wire_error().code,
                ErrorCode::AccessViolation,
                "an escape is an access violation on the wire"
            );
            assert!(err.is_security_refusal(), "an escape is audited");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn symlinks_inside_the_root_work_on_linux() {
        let (t, root) = jail();
        symlink("sub/inner.bin", t.path().join("root/alias")).expect("symlink");
        symlink("../hello.txt", t.path().join("root/sub/up-alias")).expect("symlink");
        symlink("sub", t.path().join("root/dir-alias")).expect("symlink");
        for (name, want) in [
            (&b"alias"[..], &b"inner"[..]),
            (b"sub/up-alias", b"hello"),
            (b"dir-alias/inner.bin", b"inner"),
        ] {
            assert_eq!(
                read(&root, name).expect("a link inside the root"),
                want,
                "{} follows its link",
                String::from_utf8_lossy(name)
            );
        }
    }

    #[test]
    fn only_regular_files_are_served() {
        let (t, root) = jail();
        nix::unistd::mkfifo(&t.path().join("root/fifo"), Mode::from_bits_truncate(0o644))
            .expect("mkfifo");
        // Opened without O_NONBLOCK, the FIFO would block this test forever waiting for a
        // writer; reaching the assert at all is half of what it checks.
        for name in [&b"sub"[..], b"fifo", b"sub/"] {
            let err = read(&root, name).expect_err("not a regular file");
            assert!(matches!(err, ResolveError::NotRegularFile { .. }), "{err}");
            assert_eq!(
                err.wire_error().code,
                ErrorCode::FileNotFound,
                "the client is not told what the name is"
            );
        }
        let err = read(&root, b"hello.txt/more").expect_err("a file is not a directory");
        assert!(matches!(err, ResolveError::NotFound { .. }), "{err}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn device_nodes_are_refused_without_being_opened() {
        use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
        if !nix::unistd::geteuid().is_root() {
            println!("skipping: device_nodes_are_refused_without_being_opened (mknod needs root)");
            return;
        }
        let (t, root) = jail();
        // A /dev/null twin: opening it would succeed, so only a watch can tell whether the
        // server opened it before refusing it.
        let node = t.path().join("root/dev");
        nix::sys::stat::mknod(
            &node,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o644),
            nix::sys::stat::makedev(1, 3),
        )
        .expect("mknod");
        let watch = Inotify::init(InitFlags::IN_NONBLOCK).expect("inotify");
        watch
            .add_watch(&node, AddWatchFlags::IN_OPEN)
            .expect("watch the node");
        let err = read(&root, b"dev").expect_err("a device node is refused");
        assert!(matches!(err, ResolveError::NotRegularFile { .. }), "{err}");
        let events = watch.read_events().unwrap_or_default();
        assert!(
            events.is_empty(),
            "the device was opened before it was refused: {events:?}"
        );
        // The watch works: a real open is seen.
        drop(File::open(&node).expect("open the twin"));
        assert!(!watch.read_events().expect("an IN_OPEN event").is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_found_file_is_opened_only_when_asked_and_is_the_inode_that_was_found() {
        use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
        use std::io::Read as _;
        let (t, root) = jail();
        let path = t.path().join("root/hello.txt");
        let watch = Inotify::init(InitFlags::IN_NONBLOCK).expect("inotify");
        watch
            .add_watch(&path, AddWatchFlags::IN_OPEN)
            .expect("watch the file");
        let found = root
            .find_read(&RequestPath::parse(b"hello.txt").expect("path"))
            .expect("found");
        assert_eq!(found.size(), 5);
        assert!(
            watch.read_events().unwrap_or_default().is_empty(),
            "finding a file does not open it"
        );
        // Replaced by rename before it is opened: the download gets what was found, never a
        // mix of the name's old and new meanings.
        let tmp = t.path().join("root/hello.new");
        std::fs::write(&tmp, b"replaced").expect("new version");
        std::fs::rename(&tmp, &path).expect("rename over");
        let mut opened = found.open().expect("open");
        let mut v = Vec::new();
        opened.file.read_to_end(&mut v).expect("read");
        assert_eq!(v, b"hello", "the inode that was found");
        assert_eq!((opened.size, opened.stat.st_size), (5, 5));
        assert!(
            !watch.read_events().expect("an IN_OPEN event").is_empty(),
            "open() opens it"
        );
    }

    #[test]
    fn unreadable_files_are_permission_denied() {
        use std::os::unix::fs::PermissionsExt as _;
        if nix::unistd::geteuid().is_root() {
            println!("skipping: unreadable_files_are_permission_denied (root ignores mode bits)");
            return;
        }
        let (t, root) = jail();
        let p = t.path().join("root/locked.bin");
        std::fs::write(&p, b"locked").expect("locked");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).expect("chmod 000");
        let err = read(&root, b"locked.bin").expect_err("mode 000");
        assert!(
            matches!(err, ResolveError::PermissionDenied { .. }),
            "{err}"
        );
        assert!(err.is_security_refusal(), "a denial is audited");
    }

    #[test]
    fn wire_errors_never_carry_paths() {
        let (_t, root) = jail();
        let err = read(&root, b"missing/file").expect_err("missing");
        assert!(
            err.to_string().contains("missing/file"),
            "the log detail names the path"
        );
        assert_eq!(
            err.wire_error().message,
            "file not found",
            "the wire text is fixed"
        );
    }

    #[test]
    fn missing_root_is_an_error_naming_it() {
        let err = Root::open(Path::new("/nonexistent/tftp-root")).expect_err("no root");
        assert!(err.to_string().contains("/nonexistent/tftp-root"), "{err}");
    }
}
