//! A download (RRQ): lock-step (RFC 1350) or windowed (RFC 7440), verified block by block.
//!
//! The receiver's rules: ACK every `windowsize`-th block and the last one; on a gap, ACK the
//! last block received in order once, so the server goes back to the block after it
//! (RFC 7440 §4); on a duplicate of the block last ACKed, ACK it again (its ACK was lost);
//! on a timeout, ACK the last block received in order again (or resend the RRQ).

use std::net::SocketAddr;

use tftpd::proto::packet::ack;
use tftpd::proto::{ErrorCode, Packet};
use tokio::time::Instant;

use super::{
    Agreed, Ctx, Failure, Retries, TransferRecord, accept_oack, dally, decode, encode_request,
    recv_from_server, send_error,
};
use crate::blocks::{Position, behind_index, position, wire};
use crate::content::Verifier;
use crate::link::{ImpairCounts, Link};
use crate::spec::Expected;

/// Downloads `file` and checks it against `expect`.
pub async fn download(ctx: Ctx<'_>, file: &str, expect: &Expected) -> TransferRecord {
    let mut state = Download {
        ctx,
        verifier: Verifier::new(expect),
        init_latency: None,
        agreed: None,
        retransmits: 0,
        spurious: 0,
        blocks: 0,
        acked_through: 0,
        started: Instant::now(),
        impaired_at_end: ImpairCounts::default(),
    };
    let mut link = None;
    let outcome = state.run(file, expect, &mut link).await;
    TransferRecord {
        outcome: outcome.map(|_| ()),
        bytes: state.verifier.offset(),
        init_latency: state.init_latency,
        agreed: state.agreed,
        duration: state.started.elapsed(),
        retransmits: state.retransmits,
        spurious: state.spurious,
        blocks: state.blocks,
        // A finished download hands its link to the dally, leaving the counts behind.
        impaired: link.as_ref().map_or(state.impaired_at_end, Link::counts),
        remote: None,
    }
}

struct Download<'a> {
    ctx: Ctx<'a>,
    verifier: Verifier<'a>,
    init_latency: Option<std::time::Duration>,
    agreed: Option<Agreed>,
    retransmits: u64,
    /// See [`TransferRecord::spurious`].
    spurious: u64,
    /// Data blocks received in order.
    blocks: u64,
    /// The highest block index an ACK that got through the impairment stands for.
    acked_through: u64,
    started: Instant,
    impaired_at_end: ImpairCounts,
}

impl Download<'_> {
    /// Sends the ACK of block `index` to `to`, noting how far the server has been told.
    async fn ack(&mut self, link: &mut Link, index: u64, to: SocketAddr) -> Result<(), Failure> {
        if link.send_to(&ack(wire(index)), to).await? {
            self.acked_through = self.acked_through.max(index);
        }
        Ok(())
    }

    async fn run(
        &mut self,
        file: &str,
        expect: &Expected,
        link_out: &mut Option<Link>,
    ) -> Result<(), Failure> {
        let spec = self.ctx.spec;
        let server = spec.server;
        let (link, buf_len) = self.ctx.bind().await?;
        let link = link_out.insert(link);
        let mut request = Vec::with_capacity(128);
        encode_request(false, file, &spec.options, 0, &mut request);
        let mut rx = vec![0u8; buf_len];

        self.started = Instant::now();
        link.send_to(&request, server).await?;
        let mut agreed = Agreed::defaults(spec.timeout());
        let mut peer: Option<SocketAddr> = None;
        // Index of the next block wanted; blocks before it are verified.
        let mut next: u64 = 1;
        let mut in_window: u16 = 0;
        let mut gap_acked = false;
        let mut last_acked: u64 = 0;
        let mut retries = Retries::new(spec.max_retries);
        let mut deadline = self.started + agreed.timeout;
        loop {
            let Some((n, from)) = recv_from_server(link, &mut rx, deadline, peer, server).await?
            else {
                retries.timed_out()?;
                self.retransmits += 1;
                match peer {
                    None => {
                        link.send_to(&request, server).await?;
                    }
                    Some(p) => {
                        self.ack(link, next - 1, p).await?;
                        last_acked = next - 1;
                    }
                }
                in_window = 0;
                deadline = Instant::now() + agreed.timeout;
                continue;
            };
            let packet = decode(link, &rx[..n], from).await?;
            let block_done = match packet {
                Packet::Error { code, .. } => return Err(Failure::Error(code.as_u16())),
                Packet::Oack { options } if next == 1 => {
                    if peer.is_none() {
                        self.init_latency = Some(self.started.elapsed());
                        peer = Some(from);
                        agreed = accept_oack(link, from, &options, spec).await?;
                        self.agreed = Some(agreed);
                        if let (Some(told), Some(size)) = (agreed.tsize, expect.size())
                            && told != size
                        {
                            send_error(link, from, ErrorCode::NotDefined, "tsize").await;
                            return Err(Failure::Corrupt);
                        }
                    }
                    // ACK 0 accepts the OACK; a repeated OACK means that ACK was lost.
                    link.send_to(&ack(0), from).await?;
                    retries.reset();
                    deadline = Instant::now() + agreed.timeout;
                    continue;
                }
                Packet::Data { block, data } => {
                    if peer.is_none() {
                        // DATA straight away: the server ignored our options (RFC 2347).
                        self.init_latency = Some(self.started.elapsed());
                        self.agreed = Some(agreed);
                        peer = Some(from);
                    }
                    if data.len() > usize::from(agreed.blksize) {
                        send_error(link, from, ErrorCode::IllegalOperation, "block too big").await;
                        return Err(Failure::Protocol);
                    }
                    match position(block, next) {
                        Position::Expected => {
                            self.verifier.feed(data);
                            Some(data.len() < usize::from(agreed.blksize))
                        }
                        Position::Ahead => {
                            if !gap_acked {
                                self.ack(link, next - 1, from).await?;
                                last_acked = next - 1;
                                gap_acked = true;
                                in_window = 0;
                            }
                            None
                        }
                        Position::Behind => {
                            if behind_index(block, next) <= self.acked_through {
                                self.spurious += 1;
                            }
                            if next > 1 && block == wire(last_acked) {
                                self.ack(link, last_acked, from).await?;
                            }
                            None
                        }
                    }
                }
                // A late copy of the OACK (the server resent it while our ACK 0 was on its
                // way, or the network duplicated it): DATA has already begun.
                Packet::Oack { .. } => None,
                _ => {
                    send_error(link, from, ErrorCode::IllegalOperation, "unexpected").await;
                    return Err(Failure::Protocol);
                }
            };
            let Some(last) = block_done else { continue };
            let block = wire(next);
            next += 1;
            in_window += 1;
            gap_acked = false;
            retries.reset();
            deadline = Instant::now() + agreed.timeout;
            self.blocks += 1;
            if last || in_window >= agreed.windowsize {
                self.ack(link, next - 1, from).await?;
                last_acked = next - 1;
                in_window = 0;
            }
            if last {
                if spec.impairment.is_active()
                    && let Some(l) = link_out.take()
                {
                    self.impaired_at_end = l.counts();
                    self.ctx
                        .dallies
                        .spawn(dally(l, rx, from, ack(block), agreed.timeout));
                }
                return self.verifier.finish().map_err(Failure::from);
            }
        }
    }
}
