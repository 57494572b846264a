//! The one seam between a transfer and the kernel: [`DatagramIo`]. The session's drive loop
//! and the multicast driver are generic over it, and each way of moving datagrams is a
//! backend in a file of its own, chosen once when the transfer starts:
//!
//! - [`portable`](super::portable): tokio's socket, on every platform (always built and tested);
//! - [`owned_socket`](super::owned_socket): the transfer's own socket registered for reading
//!   only, with two-datagram `recvmmsg` on Linux (`performance.batching.transfer_recvmmsg`);
//! - [`blocking`](super::blocking): a blocking socket for a transfer on a thread of its own
//!   (`performance.cpu.transfer_threads`);
//! - [`shared_port`](super::shared_port): single-port mode, the listening socket with the
//!   listener handing over what this transfer's client sends.
//!
//! Windows of equal-size DATA leave in one UDP GSO call wherever the kernel has it; that is
//! written once here, over each backend's `write_with`.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::BorrowedFd;
use std::time::Instant;

use super::alarms::{Alarms, Rang};
use super::batch::Batch;

/// What waiting on a transfer's socket ended with.
#[derive(Debug)]
pub enum Waited {
    /// A datagram of this many bytes arrived from this source.
    Datagram(usize, SocketAddr),
    /// The deadline passed first.
    Deadline,
    /// The drain's abort signal came first.
    Abort,
    /// The receive failed (e.g. an ICMP error surfaced); the retransmit timer decides.
    Failed(io::Error),
}

/// Where a transfer runs, as the metrics name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// A thread of its own, blocking socket calls.
    Thread,
    /// The shared async runtime.
    Async,
}

/// What a batch send did: how many calls of each kind, and what went wrong.
#[derive(Debug, Default)]
pub struct SendReport {
    /// GSO calls that were accepted.
    pub gso_calls: u64,
    /// One-datagram calls.
    pub single_calls: u64,
    /// Datagrams handed to the kernel.
    pub datagrams: u64,
    /// The kernel refused GSO (the datagrams went one by one instead).
    pub gso_refused: Option<io::Error>,
    /// A send failed (like a lost datagram: the retransmit timer covers it).
    pub failed: Option<io::Error>,
}

/// A transfer's datagram I/O. Every method but [`wait`](Self::wait) and the sends of
/// [`send_batch`] is one system call's worth of work.
pub trait DatagramIo: Send + Sync {
    /// Where a transfer on this backend runs.
    fn lane(&self) -> Lane;

    /// The socket's descriptor when it is the transfer's own (a kernel filter may be
    /// attached to it); `None` for the shared listening socket.
    fn own_fd(&self) -> Option<BorrowedFd<'_>>;

    /// The local address (the transfer's TID on our side).
    fn local_addr(&self) -> io::Result<SocketAddr>;

    /// Receives one datagram and its source, waiting for one.
    fn recv_from(
        &self,
        buf: &mut [u8],
    ) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + Send;

    /// Sends one datagram.
    fn send_to(
        &self,
        datagram: &[u8],
        to: SocketAddr,
    ) -> impl Future<Output = io::Result<()>> + Send;

    /// Runs the send call `f` on the socket's descriptor when it can take it (at once for a
    /// blocking socket; when writable for an async one).
    fn write_with<R: Send>(
        &self,
        f: impl FnMut(BorrowedFd<'_>) -> io::Result<R> + Send,
    ) -> impl Future<Output = io::Result<R>> + Send;

    /// Waits for a datagram until `deadline` (none: no limit), or until the drain's abort
    /// signal in `alarms`, whichever comes first. An async backend races the receive
    /// against the alarms; a blocking one overrides this to sleep in the kernel.
    fn wait(
        &self,
        buf: &mut [u8],
        deadline: Option<Instant>,
        alarms: &mut Alarms,
    ) -> impl Future<Output = Waited> + Send {
        async move {
            tokio::select! {
                received = self.recv_from(buf) => match received {
                    Ok((n, from)) => Waited::Datagram(n, from),
                    Err(e) => Waited::Failed(e),
                },
                rang = alarms.ring(deadline) => match rang {
                    Rang::Deadline => Waited::Deadline,
                    Rang::Abort => Waited::Abort,
                },
            }
        }
    }
}

/// Sends one datagram with one plain send call, and reports it as [`send_batch`] would.
pub async fn send_one(io: &impl DatagramIo, d: &[u8], to: SocketAddr) -> SendReport {
    let mut report = SendReport::default();
    send_counted(io, d, to, &mut report).await;
    report
}

async fn send_counted(io: &impl DatagramIo, d: &[u8], to: SocketAddr, report: &mut SendReport) {
    report.single_calls += 1;
    match io.send_to(d, to).await {
        Ok(()) => report.datagrams += 1,
        Err(e) => report.failed = Some(e),
    }
}

/// Sends a batch to `to`: with `gso`, each run of equal-size datagrams in one GSO call
/// (Linux), else one call per datagram. A GSO call the kernel refuses is sent again one
/// datagram at a time, and the report says so, so the caller can stop asking for GSO.
pub async fn send_batch(
    io: &impl DatagramIo,
    batch: &Batch,
    to: SocketAddr,
    gso: bool,
) -> SendReport {
    let mut report = SendReport::default();
    #[cfg(linux)]
    if gso {
        use crate::fastpath::gso;
        for run in batch.runs(gso::MAX_SEGMENTS, gso::MAX_BYTES) {
            let bytes = &batch.bytes()[run.start..run.end];
            if run.count > 1 {
                match io
                    .write_with(|fd| gso::send(&fd, bytes, run.segment, to))
                    .await
                {
                    Ok(()) => {
                        report.gso_calls += 1;
                        report.datagrams += run.count as u64;
                        continue;
                    }
                    Err(e) => report.gso_refused = Some(e),
                }
            }
            for d in bytes.chunks(run.segment) {
                send_counted(io, d, to, &mut report).await;
            }
        }
        return report;
    }
    let _ = gso;
    for d in batch.datagrams() {
        send_counted(io, d, to, &mut report).await;
    }
    report
}
