//! What the admission defences do, for `/metrics`: half-open transfers and requests held
//! now, and datagrams the reflection budget kept from being sent. Evictions and unanswered
//! requests are outcomes of `tftpd_requests_total`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// Half-open transfers now (gauge).
pub const HALF_OPEN_TRANSFERS: &str = "tftpd_half_open_transfers";
/// Requests held while every place is taken (gauge).
pub const DEFERRED_REQUESTS: &str = "tftpd_deferred_requests";
/// Datagrams to half-open peers not sent because their prefix's budget was spent.
pub const BUDGET_DROPS_TOTAL: &str = "tftpd_reflection_budget_drops_total";

/// The admission counters.
#[derive(Debug, Default)]
pub struct AdmissionMetrics {
    half_open: AtomicI64,
    deferred: AtomicI64,
    budget_drops: AtomicU64,
}

impl AdmissionMetrics {
    /// A transfer became half-open (+1) or stopped being (-1).
    pub fn half_open(&self, delta: i64) {
        self.half_open.fetch_add(delta, Relaxed);
    }

    /// Requests were queued (+n) or left the queue (-n).
    pub fn deferred(&self, delta: i64) {
        self.deferred.fetch_add(delta, Relaxed);
    }

    /// Datagrams the budget kept back.
    pub fn budget_dropped(&self, n: u64) {
        self.budget_drops.fetch_add(n, Relaxed);
    }

    /// Datagrams the budget kept back so far.
    pub fn budget_drops(&self) -> u64 {
        self.budget_drops.load(Relaxed)
    }

    /// Appends the three series.
    pub fn render(&self, out: &mut String) {
        for (name, kind, help, v) in [
            (
                HALF_OPEN_TRANSFERS,
                "gauge",
                "Transfers whose client has not answered yet.",
                self.half_open.load(Relaxed).max(0) as u64,
            ),
            (
                DEFERRED_REQUESTS,
                "gauge",
                "Requests held until a transfer place comes free.",
                self.deferred.load(Relaxed).max(0) as u64,
            ),
            (
                BUDGET_DROPS_TOTAL,
                "counter",
                "Datagrams to clients that had not answered yet, not sent because the reflection budget of their prefix was spent.",
                self.budget_drops.load(Relaxed),
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        }
    }
}
