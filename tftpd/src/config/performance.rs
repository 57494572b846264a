//! `[performance]`: the fast-path switches. Each fast path is probed once at start and falls
//! back to the portable path when the kernel lacks it (one log line says so).

use serde::Deserialize;

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

/// `[performance.memory]` (Linux): where packet buffers live.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryConfig {
    /// The listeners' `recvmmsg` slots on a huge page: reserved (`MAP_HUGETLB`) when
    /// `vm.nr_hugepages` has one free, else transparent (`MADV_HUGEPAGE`), else ordinary.
    #[serde(default)]
    pub huge_pages: bool,
    /// On a host with several NUMA nodes, a listener thread pinned to a CPU places its
    /// memory on that CPU's node (Linux); with one node, nothing to do (a start-up line).
    #[serde(default = "default_numa")]
    pub numa: bool,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            huge_pages: false,
            numa: default_numa(),
        }
    }
}

fn default_numa() -> bool {
    true
}

/// `[performance.realtime]` (Linux): real-time scheduling and locked memory, applied once at
/// start while still privileged. Off by default: both take from the rest of the machine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealtimeConfig {
    /// `SCHED_FIFO` at this priority (1..=99) for every thread; 0: the normal scheduler.
    #[serde(default)]
    pub priority: u8,
    /// `mlockall`: the daemon's memory is never paged out.
    #[serde(default)]
    pub lock_memory: bool,
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
    /// Removed (docs/adr/0019); read so an old file still starts.
    #[serde(default)]
    pub sendfile: Option<super::removed::Removed>,
    /// Removed with `sendfile`.
    #[serde(default)]
    pub sendfile_threshold: Option<super::removed::Removed>,
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
const MAX_READ_AHEAD: usize = 4 * 1024 * 1024;

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
const MAX_TRANSFER_THREADS: u16 = 256;

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

impl PerformanceConfig {
    /// Keys a file may still set that no longer do anything, each with what to do: said at
    /// start and by `--check-config`, so an upgrade neither fails nor changes silently.
    pub fn removed_keys(&self) -> Vec<String> {
        use super::removed::{IO_URING, SENDFILE, SENDFILE_THRESHOLD, ZEROCOPY, warning};
        let f = &self.file_io;
        [
            warning(&ZEROCOPY, self.zerocopy.as_ref()),
            warning(&IO_URING, self.io_uring.as_ref()),
            warning(&SENDFILE, f.sendfile.as_ref()),
            warning(&SENDFILE_THRESHOLD, f.sendfile_threshold.as_ref()),
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
        if self.memory.huge_pages && !self.batching.recvmmsg {
            return Err(Invalid {
                key: "performance.memory.huge_pages",
                value: "true".into(),
                allowed: "false, or true with performance.batching.recvmmsg = true (the huge \
                          pages hold recvmmsg's receive slots)",
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
