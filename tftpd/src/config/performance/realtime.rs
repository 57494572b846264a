//! `[performance.realtime]` (Linux): real-time scheduling and locked memory.

use serde::Deserialize;

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
