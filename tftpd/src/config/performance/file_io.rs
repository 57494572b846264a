//! `[performance.file_io]`: how downloads read their files (hot-file cache, read-ahead,
//! fadvise), and the largest read-ahead.

use serde::Deserialize;

use crate::config::removed::Removed;

/// `[performance.file_io]`: how downloads read their files. The hot-file cache measured as a
/// gain and is on by default (docs/adr/0018); fadvise and sendfile did not (0019, 0020).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileIoConfig {
    /// `posix_fadvise` (Linux): SEQUENTIAL on open, WILLNEED ahead of the reads, DONTNEED
    /// behind them, for files larger than `fadvise_threshold`.
    #[serde(default)]
    pub fadvise: bool,
    /// Files above this many bytes get the advice.
    #[serde(default = "default_fadvise_threshold")]
    pub fadvise_threshold: u64,
    /// Bytes of file contents kept in memory across transfers (0: no cache).
    #[serde(default = "default_cache_size")]
    pub cache_size: u64,
    /// The largest file the cache takes, in bytes.
    #[serde(default = "default_cache_max_file")]
    pub cache_max_file: u64,
    /// Removed (docs/adr/0019); read so an old file still starts.
    #[serde(default)]
    pub sendfile: Option<Removed>,
    /// Removed with `sendfile`.
    #[serde(default)]
    pub sendfile_threshold: Option<Removed>,
    /// An octet download read from its file (not cached) reads this many bytes at a time
    /// and sends its blocks from them: one `pread` per chunk, not per block. It costs this
    /// much memory per such transfer. 0: one `pread` per block.
    #[serde(default = "default_read_ahead")]
    pub read_ahead: usize,
}

impl Default for FileIoConfig {
    fn default() -> Self {
        Self {
            fadvise: false,
            fadvise_threshold: default_fadvise_threshold(),
            cache_size: default_cache_size(),
            cache_max_file: default_cache_max_file(),
            sendfile: None,
            sendfile_threshold: None,
            read_ahead: default_read_ahead(),
        }
    }
}

fn default_fadvise_threshold() -> u64 {
    64 * 1024 * 1024
}

fn default_cache_size() -> u64 {
    64 * 1024 * 1024
}

fn default_cache_max_file() -> u64 {
    16 * 1024 * 1024
}

fn default_read_ahead() -> usize {
    64 * 1024
}

/// The largest `read_ahead`: more buys nothing (a window of 64 blocks of 65464 bytes is
/// 4 MiB) and costs that much per transfer.
pub(super) const MAX_READ_AHEAD: usize = 4 * 1024 * 1024;
