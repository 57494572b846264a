//! A refused request: what the client is told, how it is counted and what is logged, made
//! from the file-system errors that refuse a request.

use crate::fs::{ResolveError, UploadError};
use crate::logging::error_chain;
use crate::metrics::RequestOutcome;
use crate::proto::{ErrorCode, WireError};

/// A request that will not become a transfer.
#[derive(Debug)]
pub struct Refused {
    /// What the client is told.
    pub wire: WireError,
    /// How it is counted.
    pub outcome: RequestOutcome,
    /// True for security and policy refusals, which are audit events.
    pub audit: bool,
    /// What went wrong, for the log (may name server paths; never sent).
    pub detail: String,
}

impl Refused {
    pub(super) fn bad_request(wire: WireError, detail: impl Into<String>) -> Self {
        Self {
            wire,
            outcome: RequestOutcome::BadRequest,
            audit: false,
            detail: detail.into(),
        }
    }
}

impl From<ResolveError> for Refused {
    fn from(e: ResolveError) -> Self {
        let wire = e.wire_error();
        let outcome = match wire.code {
            ErrorCode::FileNotFound => RequestOutcome::NotFound,
            ErrorCode::NotDefined => RequestOutcome::Aborted,
            _ => RequestOutcome::Denied,
        };
        Self {
            wire,
            outcome,
            audit: e.is_security_refusal(),
            detail: error_chain(&e),
        }
    }
}

impl From<UploadError> for Refused {
    fn from(e: UploadError) -> Self {
        Self {
            wire: e.wire_error(),
            outcome: RequestOutcome::Aborted,
            audit: false,
            detail: error_chain(&e),
        }
    }
}
