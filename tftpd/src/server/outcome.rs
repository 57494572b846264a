//! How a transfer's end, as the protocol core reports it, is counted and logged.

use std::time::Duration;

use tracing::{debug, info, warn};

use crate::metrics::{DropReason, Kind, Metrics, RequestOutcome};
use crate::proto::{Outcome, TransferStats};

/// The `outcome` label of a transfer that ended as `o`.
pub(super) fn request_outcome(o: &Outcome) -> RequestOutcome {
    match o {
        Outcome::Completed => RequestOutcome::Completed,
        Outcome::PeerError { .. } => RequestOutcome::PeerError,
        Outcome::TimedOut => RequestOutcome::TimedOut,
        Outcome::Aborted(_) => RequestOutcome::Aborted,
        Outcome::Unanswered => RequestOutcome::Unanswered,
        Outcome::Evicted => RequestOutcome::Evicted,
        Outcome::SizeProbe => RequestOutcome::SizeProbe,
    }
}

/// Counts a finished transfer and logs its one "transfer finished" line, at a level that
/// matches how it ended.
pub(super) fn record_end(
    metrics: &Metrics,
    kind: Kind,
    stats: TransferStats,
    outcome: &Outcome,
    duration: Duration,
) {
    // The bytes were counted as they were delivered (server/drive.rs).
    metrics.retransmits(stats.retransmits);
    metrics.transfer_duration(kind, duration);
    metrics.dropped(DropReason::Ignored, stats.ignored);
    metrics.request(kind, request_outcome(outcome));
    let duration_ms = duration.as_secs_f64() * 1e3;
    match outcome {
        Outcome::Completed | Outcome::SizeProbe => info!(
            bytes = stats.bytes,
            retransmits = stats.retransmits,
            duration_ms,
            outcome = outcome.label(),
            "transfer finished"
        ),
        Outcome::PeerError { code, message } => info!(
            bytes = stats.bytes,
            duration_ms,
            outcome = outcome.label(),
            peer_code = code.as_u16(),
            peer_message = %message,
            "transfer finished"
        ),
        Outcome::TimedOut | Outcome::Aborted(_) => warn!(
            bytes = stats.bytes,
            retransmits = stats.retransmits,
            duration_ms,
            outcome = outcome.label(),
            "transfer finished"
        ),
        // Not a warning: under a flood of forged requests there is one per request.
        Outcome::Unanswered | Outcome::Evicted => {
            debug!(duration_ms, outcome = outcome.label(), "transfer finished")
        }
    }
}
