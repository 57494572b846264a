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
