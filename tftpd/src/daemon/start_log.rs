//! The start-up lines that say which datagram fast paths are on, and why one asked for is
//! off (the kernel lacks it), once, before serving.

use tracing::{info, warn};

use crate::config::{Config, IoChoice, PORTABLE_TURNS_OFF};

/// Logs the fast paths `config` turns on and what this kernel gives of them.
pub fn fast_paths(config: &Config) {
    if config.performance.io == IoChoice::Portable {
        info!(
            io = "portable",
            off = %PORTABLE_TURNS_OFF.join(", "),
            "performance.io = \"portable\": no platform fast path; every transfer on the async runtime through tokio's socket"
        );
    }
    match (
        config.performance.batching.gso,
        crate::fastpath::support().gso,
    ) {
        (true, true) => info!(fastpath = "gso", "windows are sent with UDP GSO"),
        (true, false) => warn!(
            fastpath = "gso",
            "performance.batching.gso is on but this kernel has no UDP GSO: one datagram per call"
        ),
        (false, _) => info!(
            fastpath = "gso",
            "UDP GSO off (performance.batching.gso = false)"
        ),
    }
    match (
        config.performance.batching.listener_recvmmsg(),
        crate::fastpath::support().recvmmsg,
    ) {
        (true, true) => info!(
            fastpath = "recvmmsg",
            batch = config.performance.batching.recv_batch,
            "listeners read requests with recvmmsg"
        ),
        (true, false) => warn!(
            fastpath = "recvmmsg",
            batch = config.performance.batching.recv_batch,
            "performance.batching.recv_batch asks for recvmmsg but this kernel (or platform) \
             has no recvmmsg: one datagram per call"
        ),
        (false, _) => info!(
            fastpath = "recvmmsg",
            "recvmmsg off (performance.batching.recv_batch = 1: one datagram per call)"
        ),
    }
    crate::server::file_io::log_start(config);
}
