//! Why an upload failed ([`UploadError`], naming the request path and the limit it hit),
//! and what the client is told for each reason.

use crate::fs::resolve::is_out_of_space;
use crate::proto::{ErrorCode, WireError};

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
    /// The running uploads together would hold more than `uploads.max_in_flight`.
    #[error(
        "{path}: the uploads running would hold more than uploads.max_in_flight ({limit} bytes)"
    )]
    InFlightFull {
        /// The request path.
        path: String,
        /// The limit.
        limit: u64,
    },
    /// The filesystem would have less than `uploads.min_free_bytes` available.
    #[error(
        "{path}: the filesystem would have less than uploads.min_free_bytes ({reserve} bytes) free"
    )]
    LowSpace {
        /// The request path.
        path: String,
        /// The reserve.
        reserve: u64,
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
            Self::InFlightFull { .. } => {
                WireError::new(ErrorCode::DiskFull, "upload space in flight exhausted")
            }
            Self::LowSpace { .. } => {
                WireError::new(ErrorCode::DiskFull, "disk free-space reserve reached")
            }
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
