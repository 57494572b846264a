//! How a transfer's end, as the protocol core reports it, is counted.

use crate::metrics::RequestOutcome;
use crate::proto::Outcome;

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
