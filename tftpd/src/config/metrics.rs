//! `[metrics]`: where the Prometheus endpoint listens and the limits that keep a flood of
//! connections to it from taking the file descriptors the TFTP sockets need.

use std::net::SocketAddr;

use serde::Deserialize;

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Where to serve /metrics; absent: no endpoint.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// Connections served at once; any more are accepted and closed at once (counted as
    /// `tftpd_metrics_connections_total{outcome="over_cap"}`). 1..=1024.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Milliseconds a connection gets to send its request head, and again to take the
    /// response; then it is closed. 100..=60000.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

/// Sixteen: a few Prometheus servers and an operator's curl, with room to spare; each holds
/// one descriptor for at most two timeouts.
fn default_max_connections() -> usize {
    16
}

/// Five seconds: a scraper on the same LAN sends its head in well under a millisecond;
/// Prometheus' own default scrape timeout is 10 s for the whole scrape.
fn default_timeout_ms() -> u64 {
    5000
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: None,
            max_connections: default_max_connections(),
            timeout_ms: default_timeout_ms(),
        }
    }
}

impl super::Config {
    /// The `[metrics]` ranges.
    pub(super) fn validate_metrics(&self) -> Result<(), super::ConfigError> {
        let m = &self.metrics;
        let invalid = |key, value: String, allowed| super::ConfigError::Invalid {
            key,
            value,
            allowed,
        };
        if !(1..=1024).contains(&m.max_connections) {
            return Err(invalid(
                "metrics.max_connections",
                m.max_connections.to_string(),
                "1..=1024",
            ));
        }
        if !(100..=60_000).contains(&m.timeout_ms) {
            return Err(invalid(
                "metrics.timeout_ms",
                m.timeout_ms.to_string(),
                "100..=60000",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    #[test]
    fn defaults_cap_connections_and_time() {
        let c = Config::from_toml_str("", None).expect("empty config");
        assert_eq!(
            (c.metrics.max_connections, c.metrics.timeout_ms),
            (16, 5000),
            "the documented defaults"
        );
        let c = Config::from_toml_str(
            "[metrics]\nlisten = \"127.0.0.1:9101\"\nmax_connections = 4\ntimeout_ms = 250\n",
            None,
        )
        .expect("valid [metrics]");
        assert_eq!((c.metrics.max_connections, c.metrics.timeout_ms), (4, 250));
    }

    #[test]
    fn out_of_range_values_name_the_key_and_the_range() {
        for (toml, key, allowed) in [
            ("max_connections = 0", "metrics.max_connections", "1..=1024"),
            (
                "max_connections = 1025",
                "metrics.max_connections",
                "1..=1024",
            ),
            ("timeout_ms = 99", "metrics.timeout_ms", "100..=60000"),
            ("timeout_ms = 60001", "metrics.timeout_ms", "100..=60000"),
        ] {
            let err = Config::from_toml_str(&format!("[metrics]\n{toml}\n"), None)
                .expect_err("out of range")
                .to_string();
            assert!(err.contains(key) && err.contains(allowed), "{toml}: {err}");
        }
        let err = Config::from_toml_str("[metrics]\nmax_conections = 4\n", None)
            .expect_err("a misspelt key")
            .to_string();
        assert!(err.contains("max_conections"), "{err}");
    }
}
