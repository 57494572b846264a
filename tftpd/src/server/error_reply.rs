//! The ERRORs the server sends on its own account (not the protocol core's), and how one is
//! sent and counted from a transfer's socket or from a listening socket.

use std::net::SocketAddr;

use tracing::debug;

use crate::io::datagram::DatagramIo;
use crate::io::listen::ListenSocket;
use crate::metrics::Metrics;
use crate::proto::transfer::error_datagram;
use crate::proto::{ErrorCode, WireError};

use super::Shared;

/// Sent to clients still transferring when the drain deadline passes.
pub(super) const SHUTTING_DOWN: WireError =
    WireError::new(ErrorCode::NotDefined, "server shutting down");
/// Sent to a source that is not this transfer's client (RFC 1350 §4).
pub(super) const UNKNOWN_TID: WireError =
    WireError::new(ErrorCode::UnknownTransferId, "unknown transfer ID");
/// Sent when reading the served file fails mid-transfer.
pub(super) const READ_FAILED: WireError = WireError::new(ErrorCode::NotDefined, "read error");

/// Sends an ERROR and counts it.
pub(super) async fn send_error(
    socket: &impl DatagramIo,
    to: SocketAddr,
    err: &WireError,
    metrics: &Metrics,
) {
    metrics.error_sent(err.code);
    if let Err(e) = socket.send_to(&error_datagram(err), to).await {
        debug!(error = %e, %to, "sending an ERROR failed");
    }
}

/// Sends an ERROR from a listening socket and counts it.
pub(super) async fn reply(socket: &ListenSocket, to: SocketAddr, err: &WireError, shared: &Shared) {
    shared.metrics.error_sent(err.code);
    if let Err(e) = socket.send_to(&error_datagram(err), to).await {
        debug!(error = %e, %to, "sending an ERROR failed");
    }
}
