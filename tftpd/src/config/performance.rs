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
