//! `[performance]`: the fast-path switches. Each fast path is probed once at start and falls
//! back to the portable path when the kernel lacks it (one log line says so).
//!
//! # Layout
//!
//! One file per subsection, each holding its keys and their defaults: `batching.rs`,
//! `socket.rs`, `cpu.rs`, `file_io.rs`, `realtime.rs`, `memory.rs`. This file holds the
//! section itself, the removed keys it still reads, and the range and host checks of all of
//! them (one of which, `memory.huge_pages`, depends on `batching.recv_batch`).

mod batching;
mod cpu;
mod file_io;
mod memory;
mod realtime;
mod socket;

use serde::Deserialize;

pub use self::batching::{BatchingConfig, RECV_BATCH};
pub use self::cpu::CpuConfig;
use self::cpu::MAX_TRANSFER_THREADS;
pub use self::file_io::FileIoConfig;
use self::file_io::MAX_READ_AHEAD;
pub use self::memory::MemoryConfig;
pub use self::realtime::RealtimeConfig;
pub use self::socket::{MAX_REUSEPORT_WORKERS, SocketConfig};

/// `[performance]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerformanceConfig {
    /// A preset of the keys below; keys the file sets override it (applied while parsing).
    #[serde(default)]
    pub profile: super::profile::Profile,
    /// `"auto"`: each fast path as its key says; `"portable"`: none (see `io_choice.rs`).
    #[serde(default)]
    pub io: super::io_choice::IoChoice,
    /// `[performance.batching]`.
    #[serde(default)]
    pub batching: BatchingConfig,
    /// `[performance.socket]`.
    #[serde(default)]
    pub socket: SocketConfig,
    /// `[performance.cpu]`.
    #[serde(default)]
    pub cpu: CpuConfig,
    /// `[performance.file_io]`.
    #[serde(default)]
    pub file_io: FileIoConfig,
    /// `[performance.zerocopy]`: removed (docs/adr/0021); read so an old file still starts.
    #[serde(default)]
    pub zerocopy: Option<super::removed::Removed>,
    /// `[performance.realtime]`.
    #[serde(default)]
    pub realtime: RealtimeConfig,
    /// `[performance.io_uring]`: removed (docs/adr/0024); read so an old file still starts.
    #[serde(default)]
    pub io_uring: Option<super::removed::Removed>,
    /// `[performance.memory]`.
    #[serde(default)]
    pub memory: MemoryConfig,
}

impl PerformanceConfig {
    /// Keys a file may still set that no longer do anything, or whose choice another key
    /// makes now, each with what to do: said at start, by `--check-config` and on reload, so
    /// an upgrade neither fails nor changes silently.
    pub fn old_keys(&self) -> Vec<String> {
        use super::removed::{IO_URING, SENDFILE, SENDFILE_THRESHOLD, ZEROCOPY, warning};
        let f = &self.file_io;
        [
            warning(&ZEROCOPY, self.zerocopy.as_ref()),
            warning(&IO_URING, self.io_uring.as_ref()),
            warning(&SENDFILE, f.sendfile.as_ref()),
            warning(&SENDFILE_THRESHOLD, f.sendfile_threshold.as_ref()),
            super::deprecated::recvmmsg(self.batching.deprecated_recvmmsg),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Checks the ranges, and that this host can do what is asked (the CPUs exist and are
    /// online; the feature exists on this platform).
    pub fn validate(&self) -> Result<(), super::ConfigError> {
        use super::ConfigError::{Invalid, Unavailable};
        let b = &self.batching;
        if !RECV_BATCH.contains(&b.recv_batch) {
            return Err(Invalid {
                key: "performance.batching.recv_batch",
                value: b.recv_batch.to_string(),
                allowed: "1..=1024",
            });
        }
        let n = self.socket.reuseport_workers;
        if n > MAX_REUSEPORT_WORKERS {
            return Err(Invalid {
                key: "performance.socket.reuseport_workers",
                value: n.to_string(),
                allowed: "0..=256 (0: one per CPU, 1: a single socket)",
            });
        }
        // SO_REUSEPORT balances UDP across a group only on Linux (FreeBSD needs
        // SO_REUSEPORT_LB, not implemented): elsewhere a group would starve all but one socket.
        #[cfg(not(linux))]
        if n != 1 {
            return Err(Unavailable {
                key: "performance.socket.reuseport_workers",
                value: n.to_string(),
                allowed: "1 (SO_REUSEPORT worker groups are implemented on Linux only)".into(),
            });
        }
        if self.file_io.read_ahead > MAX_READ_AHEAD {
            return Err(Invalid {
                key: "performance.file_io.read_ahead",
                value: self.file_io.read_ahead.to_string(),
                allowed: "0..=4194304 bytes (0: one pread per block)",
            });
        }
        let rt = &self.realtime;
        if rt.priority > 99 {
            return Err(Invalid {
                key: "performance.realtime.priority",
                value: rt.priority.to_string(),
                allowed: "0 (off) or 1..=99 (SCHED_FIFO priority)",
            });
        }
        #[cfg(not(linux))]
        if rt.priority > 0 || rt.lock_memory {
            return Err(Unavailable {
                key: "performance.realtime",
                value: format!(
                    "priority = {}, lock_memory = {}",
                    rt.priority, rt.lock_memory
                ),
                allowed: "priority = 0, lock_memory = false (implemented on Linux only)".into(),
            });
        }
        if self.memory.huge_pages && !self.batching.listener_recvmmsg() {
            return Err(Invalid {
                key: "performance.memory.huge_pages",
                value: "true".into(),
                allowed: "false, or true with performance.batching.recv_batch >= 2 (the huge \
                          pages hold recvmmsg's receive slots; recv_batch = 1, or the \
                          deprecated recvmmsg = false, reads without them)",
            });
        }
        #[cfg(not(linux))]
        if self.memory.huge_pages {
            return Err(Unavailable {
                key: "performance.memory.huge_pages",
                value: "true".into(),
                allowed: "false (implemented on Linux only)".into(),
            });
        }
        let t = self.cpu.transfer_threads;
        if t > MAX_TRANSFER_THREADS {
            return Err(Invalid {
                key: "performance.cpu.transfer_threads",
                value: t.to_string(),
                allowed: "0..=256 (0: every transfer on the async runtime)",
            });
        }
        let affinity = &self.cpu.affinity;
        if !affinity.is_empty() {
            let value = format!("{affinity:?}");
            let allowed = crate::daemon::affinity::usable_cpus().map_err(|why| Unavailable {
                key: "performance.cpu.affinity",
                value: value.clone(),
                allowed: why,
            })?;
            if let Some(cpu) = affinity.iter().find(|c| !allowed.contains(c)) {
                return Err(Unavailable {
                    key: "performance.cpu.affinity",
                    value: format!("{value} (CPU {cpu} does not exist or is offline)"),
                    allowed: format!("CPUs from {}", crate::daemon::affinity::list(&allowed)),
                });
            }
        }
        Ok(())
    }
}
