//! A transfer's send-path state: whether windows go by UDP GSO, and the `MSG_ZEROCOPY`
//! lender with the buffers the kernel still reads. Chosen at the transfer's start from its
//! config snapshot (so SIGHUP applies to new transfers); a kernel refusal turns a path off for
//! the rest of the transfer with one warning. DATA a download sends from its file goes
//! through [`send_from_file`].

use std::net::SocketAddr;

use tracing::warn;

use crate::config::Config;
use crate::io::batch::Batch;
use crate::io::file_send::FileBlock;
use crate::io::transfer_socket::{SendReport, TransferSocket};
use crate::metrics::Metrics;

/// How long a finished transfer waits for the kernel to release its zerocopy buffers.
#[cfg(target_os = "linux")]
const COMPLETION_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The send paths of one transfer.
#[derive(Debug)]
pub(super) struct SendPaths {
    /// Windows of equal-size DATA in one GSO call.
    pub gso: bool,
    #[cfg(target_os = "linux")]
    zerocopy: Option<ZeroCopy>,
}

#[cfg(target_os = "linux")]
#[derive(Debug)]
struct ZeroCopy {
    threshold: usize,
    /// False once the kernel refused; the tracker stays until its buffers come back.
    on: bool,
    tracker: crate::fastpath::zerocopy::Tracker,
}

impl SendPaths {
    /// The paths for a transfer on `socket` under `config`; `download` transfers may use
    /// zerocopy for DATA of `blksize` (uploads only send ACKs).
    pub(super) fn new(config: &Config, socket: &TransferSocket, download: Option<u16>) -> Self {
        let gso = config.performance.batching.gso && crate::fastpath::support().gso;
        #[cfg(target_os = "linux")]
        let zerocopy = zerocopy_for(config, socket, download);
        #[cfg(not(target_os = "linux"))]
        let _ = (socket, download);
        Self {
            gso,
            #[cfg(target_os = "linux")]
            zerocopy,
        }
    }

    /// The zerocopy threshold to pass to `send_batch`, while zerocopy is on.
    pub(super) fn zerocopy_threshold(&self) -> Option<usize> {
        #[cfg(target_os = "linux")]
        return self.zerocopy.as_ref().filter(|z| z.on).map(|z| z.threshold);
        #[cfg(not(target_os = "linux"))]
        None
    }

    /// After a batch went out: lends its buffer to the kernel if zerocopy sends were made
    /// from it, reads completions, and turns off a path the kernel refused.
    pub(super) fn after_send(
        &mut self,
        report: &SendReport,
        batch: &mut Batch,
        socket: &TransferSocket,
    ) {
        if let Some(e) = &report.gso_refused {
            warn!(error = %e, "the kernel refused a UDP GSO send; this transfer sends one datagram per call");
            self.gso = false;
        }
        #[cfg(target_os = "linux")]
        if let Some(z) = &mut self.zerocopy {
            if report.zerocopy_sends > 0 {
                let lent = batch.swap_buffer(z.tracker.spare());
                z.tracker.lend(
                    lent,
                    u32::try_from(report.zerocopy_sends).unwrap_or(u32::MAX),
                );
            }
            if let Some(e) = &report.zerocopy_refused {
                warn!(error = %e, "the kernel refused MSG_ZEROCOPY; this transfer sends by copy");
                z.on = false;
            }
            if let Some(fd) = socket.own_fd()
                && let Err(e) = crate::fastpath::zerocopy::drain(&fd, &mut z.tracker)
            {
                tracing::debug!(error = %e, "reading zerocopy completions failed");
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (batch, socket);
    }

    /// At the end of the transfer: waits (bounded) for the kernel to release every lent
    /// buffer, then counts the completions. A buffer never released is leaked, not freed.
    pub(super) async fn finish(&mut self, socket: &TransferSocket, metrics: &Metrics) {
        #[cfg(target_os = "linux")]
        if let Some(z) = &mut self.zerocopy {
            let deadline = tokio::time::Instant::now() + COMPLETION_WAIT;
            while z.tracker.outstanding() > 0 && tokio::time::Instant::now() < deadline {
                if let Some(fd) = socket.own_fd()
                    && crate::fastpath::zerocopy::drain(&fd, &mut z.tracker).is_err()
                {
                    break;
                }
                if z.tracker.outstanding() > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            }
            let abandoned = z.tracker.abandon();
            if abandoned > 0 {
                warn!(
                    abandoned,
                    "zerocopy completions did not arrive; those buffers are leaked, not reused"
                );
            }
            let r = z.tracker.reported();
            metrics.zerocopy(r.completed, r.copied);
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (socket, metrics);
    }
}

#[cfg(target_os = "linux")]
fn zerocopy_for(
    config: &Config,
    socket: &TransferSocket,
    blksize: Option<u16>,
) -> Option<ZeroCopy> {
    let z = &config.performance.zerocopy;
    let blksize = blksize?;
    if !z.enabled || !crate::fastpath::support().zerocopy {
        return None;
    }
    let why_not = match socket.own_fd() {
        None => "single-port mode: completions of the shared socket are not this transfer's",
        Some(_) if usize::from(blksize) + 4 < z.threshold => {
            "blocks below performance.zerocopy.threshold"
        }
        Some(fd) => match crate::fastpath::zerocopy::enable(&fd) {
            Ok(()) => {
                tracing::debug!(fastpath = "zerocopy", "DATA by MSG_ZEROCOPY");
                return Some(ZeroCopy {
                    threshold: z.threshold,
                    on: true,
                    tracker: crate::fastpath::zerocopy::Tracker::default(),
                });
            }
            Err(e) => {
                tracing::debug!(error = %e, "SO_ZEROCOPY refused");
                "SO_ZEROCOPY refused"
            }
        },
    };
    tracing::debug!(fastpath = "zerocopy", reason = why_not, "zerocopy not used");
    None
}

/// Sends DATA from a download's file (by `sendfile` while `sendfile` is set). Returns true when the file turned out shorter than
/// at open, which ends the transfer.
pub(super) async fn send_from_file(
    file: &std::fs::File,
    sendfile: &mut bool,
    socket: &TransferSocket,
    peer: SocketAddr,
    blocks: &[FileBlock],
    metrics: &Metrics,
) -> bool {
    let mut report = SendReport::default();
    let mut shrunk = false;
    for b in blocks {
        match socket
            .send_file_block(b, file, peer, *sendfile, &mut report)
            .await
        {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                warn!("the file shrank during the transfer");
                shrunk = true;
                break;
            }
            // Like a lost datagram: the retransmit timer covers it.
            Err(e) => tracing::debug!(error = %e, "send failed"),
        }
        if let Some(e) = report.sendfile_refused.take() {
            warn!(error = %e, "the kernel refused sendfile; this transfer reads blocks with pread");
            *sendfile = false;
        }
    }
    metrics.sends(&report);
    shrunk
}
