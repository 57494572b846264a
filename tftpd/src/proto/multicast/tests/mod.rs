//! Multicast group tests: packet-level cases, then whole group downloads with simulated
//! members that behave like atftp's client (keep every block seen, ACK the block before the
//! first hole when master), over a seeded lossy medium with a fake clock. The helpers here
//! make a group and its file and read what it sends.

mod handover;
mod membership;
mod oack_value;
mod simulated;

use std::time::{Duration, Instant};

use super::*;
use crate::proto::error::{ErrorCode, WireError};
use crate::proto::packet::{DATA_HEADER_LEN, Packet, ack, encode_error};

const GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 0, 1);
const TIMEOUT: Duration = Duration::from_millis(100);

fn cfg(blocks: u64) -> GroupConfig {
    GroupConfig {
        addr: GROUP,
        port: 1758,
        blocks,
        blksize: 8,
        timeout: TIMEOUT,
        max_retries: 3,
        switch_on_timeout: false,
    }
}

fn file_for(blocks: u64) -> Vec<u8> {
    // `blocks` blocks of 8 bytes: the last one short (3 bytes).
    (0..(blocks - 1) * 8 + 3)
        .map(|i| (i * 13 + 5) as u8)
        .collect()
}

fn block_of(file: &[u8], index: u64, max_len: usize) -> Vec<u8> {
    let start = ((index - 1) as usize * max_len).min(file.len());
    let end = (start + max_len).min(file.len());
    let mut d = vec![0; DATA_HEADER_LEN];
    d.extend_from_slice(&file[start..end]);
    d
}

type Sent = Vec<(Destination<u32>, Vec<u8>)>;

/// Sends everything queued, reading blocks from `file` as the group asks.
fn pump(g: &mut MulticastGroup<u32>, file: &[u8]) -> Sent {
    let mut out = Vec::new();
    loop {
        if let Some(r) = g.poll_block_request() {
            g.handle_block(block_of(file, r.index, r.max_len));
        }
        let sent = g.poll_transmit().map(|t| (t.to, t.datagram.to_vec()));
        match sent {
            Some(t) => out.push(t),
            None if g.poll_block_request().is_none() => return out,
            None => {}
        }
    }
}

/// The `multicast` value of an OACK, parsed.
fn oack_mc(d: &[u8]) -> Option<(Ipv4Addr, u16, bool)> {
    match Packet::decode(d) {
        Ok(Packet::Oack { options }) => options
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(OPTION.as_bytes()))
            .and_then(|(_, v)| parse_oack_value(std::str::from_utf8(v).ok()?)),
        _ => None,
    }
}

fn data_block(d: &[u8]) -> Option<u16> {
    match Packet::decode(d) {
        Ok(Packet::Data { block, .. }) => Some(block),
        _ => None,
    }
}
