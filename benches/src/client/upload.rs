//! An upload (WRQ) of deterministic content: lock-step or windowed, go-back-N.
//!
//! The sender's rules: after each ACK that acknowledges something new, send the blocks after
//! it up to a window's worth (so a partial-window ACK, the receiver's sign of a gap, resends
//! from the gap: RFC 7440 §4); ignore an ACK that acknowledges nothing new (RFC 1123
//! §4.2.3.1, the Sorcerer's Apprentice); on a timeout, resend the window (or the WRQ).
//! Blocks are generated from their offset (`content::fill`), never stored.

use std::net::SocketAddr;

use tftpd::proto::packet::{DATA_HEADER_LEN, data_header};
use tftpd::proto::{ErrorCode, Packet};
use tokio::time::Instant;

use super::{
    Agreed, Ctx, Failure, Retries, TransferRecord, accept_oack, decode, encode_request,
    recv_from_server, send_error,
};
use crate::blocks::{acked_index, wire};
use crate::content::fill;
use crate::link::Link;

/// Uploads `size` bytes of the content for `seed` as `remote`.
pub async fn upload(ctx: Ctx<'_>, remote: &str, size: u64, seed: u64) -> TransferRecord {
    let mut up = Upload {
        ctx,
        size,
        seed,
        init_latency: None,
        agreed: None,
        retransmits: 0,
        bytes: 0,
        started: Instant::now(),
    };
    let mut link = None;
    let outcome = up.run(remote, &mut link).await;
    TransferRecord {
        outcome,
        bytes: up.bytes,
        init_latency: up.init_latency,
        agreed: up.agreed,
        duration: up.started.elapsed(),
        retransmits: up.retransmits,
        spurious: 0,
        blocks: 0,
        impaired: link.as_ref().map(Link::counts).unwrap_or_default(),
        remote: Some(remote.to_string()),
    }
}

struct Upload<'a> {
    ctx: Ctx<'a>,
    size: u64,
    seed: u64,
    init_latency: Option<std::time::Duration>,
    agreed: Option<Agreed>,
    retransmits: u64,
    bytes: u64,
    /// When the WRQ went out (reset after the socket is bound, as for a download).
    started: Instant,
}

impl Upload<'_> {
    async fn run(&mut self, remote: &str, link_out: &mut Option<Link>) -> Result<(), Failure> {
        let spec = self.ctx.spec;
        let server = spec.server;
        let (link, buf_len) = self.ctx.bind().await?;
        let link = link_out.insert(link);
        let mut request = Vec::with_capacity(128);
        encode_request(true, remote, &spec.options, self.size, &mut request);
        let mut rx = vec![0u8; buf_len];
        let mut tx = Vec::with_capacity(buf_len);

        self.started = Instant::now();
        let started = self.started;
        link.send_to(&request, server).await?;
        let mut agreed = Agreed::defaults(spec.timeout());
        let mut peer: Option<SocketAddr> = None;
        // The last block (index) acknowledged and the last one sent.
        let mut acked: u64 = 0;
        let mut sent: u64 = 0;
        // Every upload ends with a block shorter than blksize, empty if need be (RFC 1350).
        let mut total: u64 = 0;
        let mut retries = Retries::new(spec.max_retries);
        let mut deadline = started + agreed.timeout;
        loop {
            let Some((n, from)) = recv_from_server(link, &mut rx, deadline, peer, server).await?
            else {
                retries.timed_out()?;
                match peer {
                    None => {
                        self.retransmits += 1;
                        link.send_to(&request, server).await?;
                    }
                    Some(p) => {
                        let upto = self
                            .send_window(link, &mut tx, p, &agreed, acked, total)
                            .await?;
                        self.retransmits += sent.min(upto) - acked;
                        sent = sent.max(upto);
                    }
                }
                deadline = Instant::now() + agreed.timeout;
                continue;
            };
            let packet = decode(link, &rx[..n], from).await?;
            let new_ack = match packet {
                Packet::Error { code, .. } => return Err(Failure::Error(code.as_u16())),
                Packet::Oack { options } if peer.is_none() => {
                    agreed = accept_oack(link, from, &options, spec).await?;
                    // The OACK stands for ACK 0 (RFC 2347).
                    Some(0)
                }
                Packet::Ack { block: 0 } if peer.is_none() => Some(0),
                Packet::Ack { block } if peer.is_some() => acked_index(block, acked, sent),
                // A repeated OACK: our DATA 1 was lost; the timeout resends it.
                Packet::Oack { .. } => None,
                _ => {
                    send_error(link, from, ErrorCode::IllegalOperation, "unexpected").await;
                    return Err(Failure::Protocol);
                }
            };
            let Some(index) = new_ack else { continue };
            if peer.is_none() {
                self.init_latency = Some(started.elapsed());
                self.agreed = Some(agreed);
                peer = Some(from);
                total = self.size / u64::from(agreed.blksize) + 1;
            }
            acked = index;
            self.bytes = (acked * u64::from(agreed.blksize)).min(self.size);
            retries.reset();
            deadline = Instant::now() + agreed.timeout;
            if acked == total {
                return Ok(());
            }
            // After a partial-window ACK the blocks after `acked` go again.
            let upto = self
                .send_window(link, &mut tx, from, &agreed, acked, total)
                .await?;
            self.retransmits += sent.min(upto) - acked;
            sent = sent.max(upto);
        }
    }

    /// Sends the blocks after `acked`, a window's worth, and returns the last index sent.
    async fn send_window(
        &self,
        link: &mut Link,
        tx: &mut Vec<u8>,
        peer: SocketAddr,
        agreed: &Agreed,
        acked: u64,
        total: u64,
    ) -> std::io::Result<u64> {
        let blksize = u64::from(agreed.blksize);
        let last = (acked + u64::from(agreed.windowsize)).min(total);
        for index in acked + 1..=last {
            let offset = (index - 1) * blksize;
            let len = blksize.min(self.size - offset) as usize;
            tx.clear();
            tx.extend_from_slice(&data_header(wire(index)));
            tx.resize(DATA_HEADER_LEN + len, 0);
            fill(self.seed, offset, &mut tx[DATA_HEADER_LEN..]);
            link.send_to(tx, peer).await?;
        }
        Ok(last)
    }
}
