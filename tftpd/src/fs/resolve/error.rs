//! Why a path could not be served or written, and what the client is told about it.

use std::path::PathBuf;

use nix::errno::Errno;

use crate::proto::{ErrorCode, WireError};

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
    pub(in crate::fs) fn from_errno(path: &str, e: Errno) -> Self {
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

/// True for a full filesystem or an exhausted quota: RFC 1350's "disk full" (code 3).
pub(in crate::fs) fn is_out_of_space(e: &std::io::Error) -> bool {
    e.raw_os_error()
        .is_some_and(|c| c == Errno::ENOSPC as i32 || c == Errno::EDQUOT as i32)
}
