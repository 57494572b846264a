//! `[performance.socket]`: socket buffer sizes and the `SO_REUSEPORT` listener group.

use serde::Deserialize;

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

fn default_buffer() -> usize {
    2 * 1024 * 1024
}
