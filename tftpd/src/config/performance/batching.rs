//! `[performance.batching]`: UDP GSO, the listeners' `recv_batch` (which also chooses
//! `recvmmsg`), and the transfers' `recvmmsg`.
//!
//! `recv_batch` used to be a slot count that mattered only while a separate `recvmmsg`
//! switch was on. The two are one choice now: `recv_batch = 1` is one datagram per receive
//! call (the portable receive), 2 and up is `recvmmsg` with that many slots. A file written
//! for the old pair still loads: its `recvmmsg` is folded into `recv_batch` here, while
//! parsing, and kept only so the deprecation warning can quote it.

use serde::Deserialize;

/// `[performance.batching]`: how a window of datagrams reaches the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "BatchingFile")]
pub struct BatchingConfig {
    /// Send each window of equal-size DATA with one UDP GSO call (Linux).
    pub gso: bool,
    /// The most datagrams one listener receive call takes: 1 reads one at a time (the
    /// portable receive, the default: `recvmmsg` measured no gain, docs/adr/0017); 2 and up
    /// reads with `recvmmsg` into that many slots (Linux; elsewhere one at a time).
    pub recv_batch: usize,
    /// Transfers on the async runtime receive with `recvmmsg` (two datagrams a call, so a
    /// lock-step block needs no second call to find the queue empty) on a socket registered
    /// for reading only (no readiness event per DATA sent). Off: tokio's socket, the
    /// portable path. Linux; elsewhere off (docs/adr/0026).
    pub transfer_recvmmsg: bool,
    /// The deprecated `recvmmsg` key as the file set it, already folded into `recv_batch`;
    /// kept for the warning that names the replacement ([`super::PerformanceConfig::old_keys`]).
    pub deprecated_recvmmsg: Option<bool>,
}

impl BatchingConfig {
    /// Whether the listeners ask for `recvmmsg` (`recv_batch` ≥ 2); the kernel may still lack it.
    pub fn listener_recvmmsg(&self) -> bool {
        self.recv_batch >= 2
    }
}

impl Default for BatchingConfig {
    fn default() -> Self {
        Self {
            gso: default_gso(),
            recv_batch: 1,
            transfer_recvmmsg: default_transfer_recvmmsg(),
            deprecated_recvmmsg: None,
        }
    }
}

/// The allowed `recv_batch` values. Linux caps one `recvmmsg` at `UIO_MAXIOV` (1024).
pub const RECV_BATCH: std::ops::RangeInclusive<usize> = 1..=1024;

/// `[performance.batching]` as the file writes it, old keys included.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchingFile {
    #[serde(default = "default_gso")]
    gso: bool,
    /// Deprecated: folded into `recv_batch`.
    #[serde(default)]
    recvmmsg: Option<bool>,
    #[serde(default)]
    recv_batch: Option<usize>,
    #[serde(default = "default_transfer_recvmmsg")]
    transfer_recvmmsg: bool,
}

impl From<BatchingFile> for BatchingConfig {
    fn from(f: BatchingFile) -> Self {
        let recv_batch = match (f.recvmmsg, f.recv_batch) {
            // recvmmsg was off: one datagram a call, whatever recv_batch said.
            (Some(false), _) => 1,
            (_, Some(n)) => n,
            (Some(true), None) => super::super::deprecated::OLD_RECVMMSG_BATCH,
            (None, None) => Self::default().recv_batch,
        };
        Self {
            gso: f.gso,
            recv_batch,
            transfer_recvmmsg: f.transfer_recvmmsg,
            deprecated_recvmmsg: f.recvmmsg,
        }
    }
}

fn default_gso() -> bool {
    true
}

fn default_transfer_recvmmsg() -> bool {
    true
}
