//! `[shutdown]`: how long running transfers get to finish after SIGTERM/SIGINT.

use serde::Deserialize;

/// `[shutdown]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownConfig {
    /// Seconds running transfers get to finish after SIGTERM/SIGINT.
    #[serde(default = "default_grace")]
    pub grace_period_secs: u64,
}

fn default_grace() -> u64 {
    10
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            grace_period_secs: default_grace(),
        }
    }
}
