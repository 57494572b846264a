//! `uploads.max_in_flight`: the bytes all running uploads have written and not yet committed
//! or discarded, counted in one process-wide atomic. Bytes count as they are written, not as
//! announced: a client that announces a large `tsize` and sends little holds only what it
//! sent. An announced `tsize` is still checked against what is left, so a WRQ that cannot fit
//! is refused before its first DATA.
//!
//! The counter is the process's, not a config snapshot's: a reload builds a new policy (and
//! may change the limit), while uploads started before it keep counting in the same total.

use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes written by running uploads, not yet committed or discarded.
#[derive(Debug)]
pub struct InFlight {
    bytes: AtomicU64,
}

/// The process's count: every policy the daemon builds shares it.
pub static PROCESS_IN_FLIGHT: InFlight = InFlight::new();

impl InFlight {
    /// An empty count (tests make their own, so they do not share the process's).
    pub const fn new() -> Self {
        Self {
            bytes: AtomicU64::new(0),
        }
    }

    /// Bytes in flight now.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// True when `n` more bytes would fit under `limit` now (nothing is reserved).
    pub(super) fn fits(&self, n: u64, limit: u64) -> bool {
        self.bytes().checked_add(n).is_some_and(|t| t <= limit)
    }

    /// Adds `n` bytes if the total stays within `limit`; false (and nothing added) if not.
    pub(super) fn try_reserve(&self, n: u64, limit: u64) -> bool {
        self.bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                now.checked_add(n).filter(|t| *t <= limit)
            })
            .is_ok()
    }

    /// Gives back `n` bytes reserved before.
    pub(super) fn release(&self, n: u64) {
        // Saturating: a release never exceeds what was reserved, but an underflow here would
        // wrap the count to near u64::MAX and refuse every upload after it.
        let _ = self
            .bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                Some(now.saturating_sub(n))
            });
    }
}

impl Default for InFlight {
    fn default() -> Self {
        Self::new()
    }
}
