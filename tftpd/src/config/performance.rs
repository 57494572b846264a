//! `[performance]`: the fast-path switches. Each fast path is probed once at start and falls
//! back to the portable path when the kernel lacks it (one log line says so).

use serde::Deserialize;

/// `[performance]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerformanceConfig {
    /// `[performance.batching]`.
    #[serde(default)]
    pub batching: BatchingConfig,
    /// `[performance.socket]`.
    #[serde(default)]
    pub socket: SocketConfig,
    /// `[performance.file_io]`.
    #[serde(default)]
    pub file_io: FileIoConfig,
    /// `[performance.zerocopy]`.
    #[serde(default)]
    pub zerocopy: ZeroCopyConfig,
}

/// `[performance.zerocopy]`: DATA by `MSG_ZEROCOPY` (Linux). Off by default: on loopback and
/// veth the kernel always copies and it costs more (docs/adr/0021).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZeroCopyConfig {
    /// Send DATA datagrams of at least `threshold` bytes with `MSG_ZEROCOPY`.
    #[serde(default)]
    pub enabled: bool,
    /// The smallest datagram (header included) sent without a copy.
    #[serde(default = "default_zerocopy_threshold")]
    pub threshold: usize,
}

impl Default for ZeroCopyConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            threshold: default_zerocopy_threshold(),
        }
    }
}

fn default_zerocopy_threshold() -> usize {
    8192
}

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
    /// Octet DATA by `send(header, MSG_MORE)` + `sendfile` (Linux) on the transfer's own socket.
    #[serde(default)]
    pub sendfile: bool,
    /// Files above this many bytes use `sendfile`.
    #[serde(default = "default_sendfile_threshold")]
    pub sendfile_threshold: u64,
}

impl Default for FileIoConfig {
    fn default() -> Self {
        Self {
            fadvise: false,
            fadvise_threshold: default_fadvise_threshold(),
            cache_size: default_cache_size(),
            cache_max_file: default_cache_max_file(),
            sendfile: false,
            sendfile_threshold: default_sendfile_threshold(),
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

fn default_sendfile_threshold() -> u64 {
    64 * 1024
}

/// `[performance.socket]`: buffer sizes in bytes (0: the kernel's default).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocketConfig {
    /// SO_RCVBUF of listening and transfer sockets.
    #[serde(default = "default_buffer")]
    pub recv_buffer: usize,
    /// SO_SNDBUF of listening and transfer sockets.
    #[serde(default = "default_buffer")]
    pub send_buffer: usize,
}

impl Default for SocketConfig {
    fn default() -> Self {
        Self {
            recv_buffer: default_buffer(),
            send_buffer: default_buffer(),
        }
    }
}

fn default_buffer() -> usize {
    2 * 1024 * 1024
}

/// `[performance.batching]`: how a window of datagrams reaches the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchingConfig {
    /// Send each window of equal-size DATA with one UDP GSO call (Linux).
    #[serde(default = "default_gso")]
    pub gso: bool,
}

impl Default for BatchingConfig {
    fn default() -> Self {
        Self { gso: default_gso() }
    }
}

fn default_gso() -> bool {
    true
}
