//! The metrics endpoint's own counters: how each connection to `/metrics` ended, so a flood of
//! connections (or a scraper that is too slow) shows on the page it is keeping busy.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Connections to the metrics endpoint, by outcome (counter).
pub const METRICS_CONNECTIONS_TOTAL: &str = "tftpd_metrics_connections_total";

/// How a connection to the endpoint ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The page (or its head) was sent.
    Served,
    /// A path other than /metrics: 404 sent.
    NotFound,
    /// A head the parser refused: 400, 405, 431 or 505 sent.
    BadRequest,
    /// `metrics.max_connections` were being served: closed at once.
    OverCap,
    /// No complete request head within `metrics.timeout_ms`.
    ReadTimeout,
    /// The response was not taken within `metrics.timeout_ms`.
    WriteTimeout,
    /// The peer closed or reset the connection first.
    Closed,
}

impl Outcome {
    const ALL: [Self; 7] = [
        Self::Served,
        Self::NotFound,
        Self::BadRequest,
        Self::OverCap,
        Self::ReadTimeout,
        Self::WriteTimeout,
        Self::Closed,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::Served => "served",
            Self::NotFound => "not_found",
            Self::BadRequest => "bad_request",
            Self::OverCap => "over_cap",
            Self::ReadTimeout => "read_timeout",
            Self::WriteTimeout => "write_timeout",
            Self::Closed => "closed",
        }
    }
}

/// One counter per [`Outcome`].
#[derive(Debug, Default)]
pub struct EndpointCounters {
    by_outcome: [AtomicU64; Outcome::ALL.len()],
}

impl EndpointCounters {
    /// Counts a connection that ended with `outcome`.
    pub fn count(&self, outcome: Outcome) {
        self.by_outcome[outcome as usize].fetch_add(1, Relaxed);
    }

    /// Connections that ended with `outcome` so far.
    pub fn get(&self, outcome: Outcome) -> u64 {
        self.by_outcome[outcome as usize].load(Relaxed)
    }

    /// Appends the family to a page.
    pub(super) fn render(&self, out: &mut String) {
        let name = METRICS_CONNECTIONS_TOTAL;
        let _ = writeln!(
            out,
            "# HELP {name} Connections to the metrics endpoint, by how they ended (over_cap: \
             closed at once because metrics.max_connections were open).\n# TYPE {name} counter"
        );
        for outcome in Outcome::ALL {
            let _ = writeln!(
                out,
                "{name}{{outcome=\"{}\"}} {}",
                outcome.label(),
                self.get(outcome)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_outcome_has_its_own_series() {
        let c = EndpointCounters::default();
        c.count(Outcome::OverCap);
        c.count(Outcome::OverCap);
        c.count(Outcome::WriteTimeout);
        let mut page = String::new();
        c.render(&mut page);
        for (line, why) in [
            (
                "tftpd_metrics_connections_total{outcome=\"over_cap\"} 2",
                "two over the cap",
            ),
            (
                "tftpd_metrics_connections_total{outcome=\"write_timeout\"} 1",
                "one cut off",
            ),
            (
                "tftpd_metrics_connections_total{outcome=\"served\"} 0",
                "every series is there from the start",
            ),
        ] {
            assert!(page.lines().any(|l| l == line), "{why}: {page}");
        }
        assert_eq!(page.lines().count(), 2 + Outcome::ALL.len(), "{page}");
    }
}
