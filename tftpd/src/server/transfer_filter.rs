//! The kernel filter on a transfer's own socket: attached when the transfer starts, and what
//! it counted collected when the transfer ends, however it ends.

use tracing::warn;

use crate::filter::{FilterCounters, KernelFilter};
use std::os::fd::BorrowedFd;

use crate::io::datagram::DatagramIo;
use crate::logging::error_chain;

use super::Shared;

/// Attaches the kernel transfer filter to `socket`, so junk dies before it wakes the task;
/// returns the counters of the rule still to apply in userspace (`None`: nothing to apply).
/// If the attach fails the userspace rule applies. In single-port mode the listener has
/// screened the datagrams already.
pub(super) fn attach_filter<'a>(
    socket: &impl DatagramIo,
    shared: &'a Shared,
) -> Option<&'a FilterCounters> {
    let metrics = &shared.metrics;
    match (&shared.kernel_filter, socket.own_fd()) {
        (_, None) => None,
        (Some(f), Some(fd)) => match f.attach_transfer(fd) {
            Ok(()) => f.daemon_counters(),
            Err(e) => {
                warn!(error = %error_chain(&e), "attaching the kernel transfer filter failed; userspace rules apply");
                Some(&metrics.filter_userspace)
            }
        },
        (None, Some(_)) => Some(&metrics.filter_userspace),
    }
}

/// Collects what the kernel filter knows about a transfer socket when the transfer ends,
/// however it ends.
pub(super) struct ClosedTransfer<'a> {
    pub(super) filter: Option<&'a KernelFilter>,
    /// The transfer's own socket (none in single-port mode).
    pub(super) fd: Option<BorrowedFd<'a>>,
}

impl Drop for ClosedTransfer<'_> {
    fn drop(&mut self) {
        if let (Some(f), Some(fd)) = (self.filter, self.fd) {
            f.transfer_closed(fd);
        }
    }
}
