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
    /// `[performance.cpu]`.
    #[serde(default)]
    pub cpu: CpuConfig,
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
    /// Listening sockets per `listen` address, in one `SO_REUSEPORT` group, each with its own
    /// receive task (0: one per CPU; 1: one plain socket). Off (1) by default: no gain
    /// measured on 2 cores (docs/adr/0017).
    #[serde(default = "default_reuseport_workers")]
    pub reuseport_workers: u16,
}

impl Default for SocketConfig {
    fn default() -> Self {
        Self {
            recv_buffer: default_buffer(),
            send_buffer: default_buffer(),
            reuseport_workers: default_reuseport_workers(),
        }
    }
}

fn default_reuseport_workers() -> u16 {
    1
}

/// The largest `reuseport_workers`: far more than any host has queues, small enough that a
/// typo does not open thousands of sockets.
pub const MAX_REUSEPORT_WORKERS: u16 = 256;

impl SocketConfig {
    /// The number of listening sockets per address: `reuseport_workers`, with 0 meaning one
    /// per CPU this process may run on.
    pub fn listeners_per_address(&self) -> usize {
        match self.reuseport_workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => usize::from(n),
        }
    }
}

/// `[performance.cpu]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuConfig {
    /// Pin the daemon's threads to these CPUs (Linux); empty: leave it to the scheduler.
    #[serde(default)]
    pub affinity: Vec<usize>,
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
    /// Read requests from the listening sockets with `recvmmsg`, up to `recv_batch` per call
    /// (Linux). Off by default: no gain measured (docs/adr/0017).
    #[serde(default)]
    pub recvmmsg: bool,
    /// The most datagrams one `recvmmsg` call takes.
    #[serde(default = "default_recv_batch")]
    pub recv_batch: usize,
}

impl Default for BatchingConfig {
    fn default() -> Self {
        Self {
            gso: default_gso(),
            recvmmsg: false,
            recv_batch: default_recv_batch(),
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

impl PerformanceConfig {
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
        #[cfg(not(target_os = "linux"))]
        if n != 1 {
            return Err(Unavailable {
                key: "performance.socket.reuseport_workers",
                value: n.to_string(),
                allowed: "1 (SO_REUSEPORT worker groups are implemented on Linux only)".into(),
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
