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
use nix::sys::stat::{Mode, SFlag, fstat};

use super::upload::{Upload, UploadPolicy};
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
    /// non-empty, with no `.` or `..` component, no backslash and no control character.
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
        // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below anyway.
        let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
        let fd = self
            .open_beneath(path.as_str(), flags, Mode::empty())
            .map_err(|e| ResolveError::from_errno(path.as_str(), e))?;
        let st = fstat(fd.as_fd()).map_err(|e| ResolveError::from_errno(path.as_str(), e))?;
        if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFREG {
            return Err(ResolveError::NotRegularFile {
                path: path.to_string(),
            });
        }
        nix::fcntl::fcntl(fd.as_fd(), nix::fcntl::FcntlArg::F_SETFL(OFlag::O_RDONLY))
            .map_err(|e| ResolveError::from_errno(path.as_str(), e))?;
        Ok(ReadFile {
            file: File::from(fd),
            size: u64::try_from(st.st_size).unwrap_or(0),
        })
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
            b"\xff\xfe",
        ] {
            let err = RequestPath::parse(bad).expect_err("must be refused");
            assert!(
                matches!(err, ResolveError::BadName { .. }),
                "{bad:?}: {err}"
            );
            assert_eq!(err.wire_error().code, ErrorCode::AccessViolation, "{bad:?}");
        }
        let long = vec![b'a'; 1025];
        assert!(RequestPath::parse(&long).is_err(), "over 1024 bytes");
        let long_part = vec![b'a'; 256];
        assert!(
            RequestPath::parse(&long_part).is_err(),
            "component over 255 bytes"
        );
        let p = RequestPath::parse(b"a/b/c").expect("valid");
        assert_eq!((p.parent(), p.file_name()), (Some("a/b"), "c"));
    }

    #[test]
    fn files_inside_the_root_are_served() {
        let (_t, root) = jail();
        assert_eq!(read(&root, b"hello.txt").expect("hello"), b"hello");
        assert_eq!(read(&root, b"/sub/inner.bin").expect("inner"), b"inner");
    }

    #[test]
    fn absolute_names_resolve_inside_the_root() {
        let (_t, root) = jail();
        let err = read(&root, b"/etc/passwd").expect_err("no etc in the root");
        assert!(matches!(err, ResolveError::NotFound { .. }), "{err}");
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
        for name in [
            &b"rel-link"[..],
            b"abs-link",
            b"dir-link/secret",
            b"etc-link/passwd",
            b"loop-a",
        ] {
            let err = read(&root, name).expect_err("must not resolve");
            assert!(
                matches!(err, ResolveError::Escapes { .. }),
                "{}: got {err}",
                String::from_utf8_lossy(name)
            );
            assert_eq!(err.wire_error().code, ErrorCode::AccessViolation);
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn symlinks_inside_the_root_work_on_linux() {
        let (t, root) = jail();
        symlink("sub/inner.bin", t.path().join("root/alias")).expect("symlink");
        assert_eq!(read(&root, b"alias").expect("alias"), b"inner");
    }

    #[test]
    fn only_regular_files_are_served() {
        let (t, root) = jail();
        nix::unistd::mkfifo(&t.path().join("root/fifo"), Mode::from_bits_truncate(0o644))
            .expect("mkfifo");
        for name in [&b"sub"[..], b"fifo"] {
            let err = read(&root, name).expect_err("not a regular file");
            assert!(matches!(err, ResolveError::NotRegularFile { .. }), "{err}");
            assert_eq!(err.wire_error().code, ErrorCode::FileNotFound);
        }
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
