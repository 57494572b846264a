//! `[performance.batching]`: UDP GSO and `recvmmsg`, and the allowed `recv_batch`.

use serde::Deserialize;

/// `[performance.batching]`: how a window of datagrams reaches the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchingConfig {
    /// Send each window of equal-size DATA with one UDP GSO call (Linux).
    #[serde(default = "default_gso")]
    pub gso: bool,
    /// Read requests from the listening sockets with `recvmmsg`, up to `recv_batch` per call
    /// (Linux). Off by default: no gain measured (docs/adr/0017).
    #[serde(default)]
    pub recvmmsg: bool,
    /// The most datagrams one `recvmmsg` call takes.
    #[serde(default = "default_recv_batch")]
    pub recv_batch: usize,
    /// Transfers on the async runtime receive with `recvmmsg` (two datagrams a call, so a
    /// lock-step block needs no second call to find the queue empty) on a socket registered
    /// for reading only (no readiness event per DATA sent). Off: tokio's socket, the
    /// portable path. Linux; elsewhere off (docs/adr/0026).
    #[serde(default = "default_transfer_recvmmsg")]
    pub transfer_recvmmsg: bool,
}

impl Default for BatchingConfig {
    fn default() -> Self {
        Self {
            gso: default_gso(),
            recvmmsg: false,
            recv_batch: default_recv_batch(),
            transfer_recvmmsg: default_transfer_recvmmsg(),
        }
    }
}

fn default_recv_batch() -> usize {
    32
}

/// The allowed `recv_batch` values. Linux caps one `recvmmsg` at `UIO_MAXIOV` (1024).
pub const RECV_BATCH: std::ops::RangeInclusive<usize> = 1..=1024;

fn default_gso() -> bool {
    true
}

fn default_transfer_recvmmsg() -> bool {
    true
}
