//! Read state machine tests: direct packet-level cases, then whole downloads over the
//! simulated link, by topic. The helpers here build payloads and configurations and drain
//! what a transfer gives out.

mod ending;
mod half_open;
mod lockstep;
mod lossy;
mod transmits;
mod window;

use std::time::{Duration, Instant};

use super::*;
use crate::proto::Rollover;
use crate::proto::TransmitKind;
use crate::proto::error::ErrorCode;
use crate::proto::packet::ack;
use crate::proto::sim::{Impairment, config, run_download};

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn block(payload: &[u8]) -> Vec<u8> {
    let mut d = vec![0; 4];
    d.extend_from_slice(payload);
    d
}

fn drain(t: &mut ReadTransfer) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| t.poll_transmit().map(|x| x.datagram.to_vec())).collect()
}

/// `protocol.default_windowsize`: the client was not told of the window and ACKs every block.
fn sliding(blksize: u16, windowsize: u16) -> TransferConfig {
    TransferConfig {
        sliding: true,
        ..config(blksize, windowsize, false)
    }
}
