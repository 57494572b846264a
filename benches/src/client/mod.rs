//! One TFTP transfer against the server, as a client: [`download`] (RRQ) and [`upload`]
//! (WRQ), each over its own [`Link`](crate::link::Link). Each returns a [`TransferRecord`];
//! nothing here panics on what the network delivers.

mod download;
mod negotiate;
mod upload;

use std::net::SocketAddr;
use std::time::Duration;

pub use download::download;
pub use negotiate::{Agreed, OackError, encode_request, read_oack};
pub use upload::upload;

use tftpd::proto::packet::OptionList;
use tftpd::proto::{ErrorCode, Packet};

use crate::content::Mismatch;
use crate::link::{ImpairCounts, Link};
use crate::spec::LoadSpec;

/// Why a transfer failed. The set is closed: these are the report's failure kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Failure {
    /// The server stopped answering for `max_retries` timeouts in a row.
    Timeout,
    /// The server sent ERROR with this code.
    Error(u16),
    /// A wrong byte (or digest, or too many bytes, or a `tsize` that is not the file's size).
    Corrupt,
    /// The transfer ended before the expected size.
    Short,
    /// The server broke the protocol (an undecodable datagram, an opcode out of place, an
    /// OACK we cannot accept, a block larger than agreed).
    Protocol,
    /// A socket call failed.
    Io,
}

impl Failure {
    /// The report's key: `timeout`, `error_N`, `corrupt`, `short`, `protocol` or `io`.
    pub fn label(self) -> String {
        match self {
            Self::Timeout => "timeout".into(),
            Self::Error(code) => format!("error_{code}"),
            Self::Corrupt => "corrupt".into(),
            Self::Short => "short".into(),
            Self::Protocol => "protocol".into(),
            Self::Io => "io".into(),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(_: std::io::Error) -> Self {
        Self::Io
    }
}

impl From<Mismatch> for Failure {
    fn from(m: Mismatch) -> Self {
        match m {
            Mismatch::Corrupt => Self::Corrupt,
            Mismatch::Short => Self::Short,
        }
    }
}

/// What one transfer did.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferRecord {
    /// `Ok` when every byte arrived and verified.
    pub outcome: Result<(), Failure>,
    /// Payload bytes moved (verified ones when `outcome` is `Ok`).
    pub bytes: u64,
    /// From the first request to the first DATA/OACK (download) or ACK/OACK (upload).
    pub init_latency: Option<Duration>,
    /// What was negotiated (or assumed, when the server ignored the options), once the
    /// server answered.
    pub agreed: Option<Agreed>,
    /// From the first request to the last ACK sent (download) or received (upload).
    pub duration: Duration,
    /// Datagrams the client sent again: requests and ACKs after a timeout, DATA after a
    /// timeout or a partial-window ACK.
    pub retransmits: u64,
    /// DATA received again although the client's ACK of that block had got through the
    /// impairment: the server's timer fired before the answer could reach it (downloads;
    /// 0 for uploads). With `--dup`, copies the impairment made count too.
    pub spurious: u64,
    /// Data blocks received in order (downloads; 0 for uploads).
    pub blocks: u64,
    /// What the impairment did to this transfer's datagrams.
    pub impaired: ImpairCounts,
    /// The remote name, for an upload.
    pub remote: Option<String>,
}

/// Who runs a transfer: the spec, and the client's and repetition's index (for the
/// impairment's seed and the upload's name).
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// The run.
    pub spec: &'a LoadSpec,
    /// Where a finished impaired download's dally runs, so the run can wait for it: it holds
    /// the delayed final ACK, which must still leave when the last transfer is done.
    pub dallies: &'a tokio_util::task::TaskTracker,
    /// The client's index, from 0.
    pub client: u32,
    /// The repetition's index within the client, from 0.
    pub repeat: u64,
}

impl Ctx<'_> {
    /// Binds this transfer's link; returns it with the receive buffer length it is sized for.
    async fn bind(&self) -> Result<(Link, usize), Failure> {
        let len = recv_len(self.spec.options.blksize);
        let link = Link::bind(
            self.spec.server,
            &self.spec.impairment,
            len,
            self.client,
            self.repeat,
        )
        .await?;
        Ok((link, len))
    }
}

/// Waits for the next datagram of this transfer (into `rx`), or `None` at `deadline`. Ours
/// come from the server's transfer port once it is known (RFC 1350 TIDs), before that from
/// the server's address; anything else is skipped.
async fn recv_from_server(
    link: &mut Link,
    rx: &mut [u8],
    deadline: tokio::time::Instant,
    peer: Option<SocketAddr>,
    server: SocketAddr,
) -> Result<Option<(usize, SocketAddr)>, Failure> {
    while let Some((n, from)) = link.recv(rx, deadline).await? {
        let ours = match peer {
            Some(p) => p == from,
            None => from.ip() == server.ip(),
        };
        if ours {
            return Ok(Some((n, from)));
        }
    }
    Ok(None)
}

/// Decodes a datagram from the server; one that does not decode ends the transfer with
/// ERROR 4 to the server and a `protocol` failure.
async fn decode<'b>(
    link: &mut Link,
    datagram: &'b [u8],
    from: SocketAddr,
) -> Result<Packet<'b>, Failure> {
    match Packet::decode(datagram) {
        Ok(p) => Ok(p),
        Err(_) => {
            send_error(link, from, ErrorCode::IllegalOperation, "undecodable").await;
            Err(Failure::Protocol)
        }
    }
}

/// Reads an OACK in answer to this run's options; one we cannot accept ends the transfer
/// with ERROR 8 to the server (RFC 2347) and a `protocol` failure.
async fn accept_oack(
    link: &mut Link,
    from: SocketAddr,
    options: &OptionList<'_>,
    spec: &LoadSpec,
) -> Result<Agreed, Failure> {
    match read_oack(options, &spec.options, spec.timeout()) {
        Ok(a) => Ok(a),
        Err(_) => {
            send_error(link, from, ErrorCode::OptionRefused, "bad OACK").await;
            Err(Failure::Protocol)
        }
    }
}

/// Consecutive timeouts without progress, bounded by the spec's `max_retries`.
#[derive(Debug)]
struct Retries {
    count: u32,
    max: u32,
}

impl Retries {
    fn new(max: u32) -> Self {
        Self { count: 0, max }
    }

    /// Counts one more timeout; fails the transfer when there have been too many.
    fn timed_out(&mut self) -> Result<(), Failure> {
        self.count += 1;
        if self.count > self.max {
            return Err(Failure::Timeout);
        }
        Ok(())
    }

    /// The server made progress.
    fn reset(&mut self) {
        self.count = 0;
    }
}

/// How long a finished download keeps its socket to answer a retransmitted last DATA whose
/// ACK the impairment ate (RFC 1350's dally, done in the background so it does not count
/// in the transfer's duration).
async fn dally(mut link: Link, mut rx: Vec<u8>, peer: SocketAddr, last: [u8; 4], time: Duration) {
    let deadline = tokio::time::Instant::now() + time;
    while let Ok(Some((n, from))) = link.recv(&mut rx, deadline).await {
        if from == peer && n >= 4 && rx[..4] == [0, 3, last[2], last[3]] {
            let _ = link.send_to(&last, peer).await;
        }
    }
}

/// The largest datagram a transfer may receive: one more byte than a full block, so a
/// datagram larger than agreed is seen as such instead of being cut to fit.
fn recv_len(opts_blksize: Option<u16>) -> usize {
    usize::from(opts_blksize.unwrap_or(512).max(512)) + 4 + 1
}

/// Sends ERROR `code` to the peer, best effort: the transfer has already failed.
async fn send_error(link: &mut Link, peer: SocketAddr, code: ErrorCode, msg: &str) {
    let mut out = Vec::new();
    tftpd::proto::packet::encode_error(&mut out, code, msg.as_bytes());
    let _ = link.send_to(&out, peer).await;
}
