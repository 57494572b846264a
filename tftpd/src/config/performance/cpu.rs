//! `[performance.cpu]`: which CPUs the daemon runs on, and which work gets a thread of its
//! own.

use serde::Deserialize;

/// `[performance.cpu]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuConfig {
    /// Pin the daemon's threads to these CPUs (Linux); empty: leave it to the scheduler.
    #[serde(default)]
    pub affinity: Vec<usize>,
    /// While no more than this many transfers are running, each new one runs on a thread of
    /// its own with blocking socket calls (2 syscalls per lock-step block); beyond that, on
    /// the async runtime, which serves many at once more cheaply. 0: none.
    #[serde(default = "default_transfer_threads")]
    pub transfer_threads: u16,
    /// Each listening socket takes its requests on a thread of its own (with `affinity`,
    /// pinned to one of its CPUs and, on Linux, handed the requests that CPU receives), so a
    /// burst of requests is not queued behind running transfers. Off: listeners are tasks on
    /// the async runtime. Never in single-port mode (the listening socket carries the
    /// transfers). Restart only.
    #[serde(default = "default_intake_threads")]
    pub intake_threads: bool,
}

impl Default for CpuConfig {
    fn default() -> Self {
        Self {
            affinity: Vec::new(),
            transfer_threads: default_transfer_threads(),
            intake_threads: default_intake_threads(),
        }
    }
}

fn default_intake_threads() -> bool {
    true
}

fn default_transfer_threads() -> u16 {
    4
}

/// The most transfer threads: tokio's blocking pool holds 512 threads, and the pool also
/// serves upload commits.
pub(super) const MAX_TRANSFER_THREADS: u16 = 256;
