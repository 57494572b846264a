//! Fuzzes the download state machine (`ReadTransfer`) with a fuzz-chosen client: ACKs near
//! the window (and anywhere), ERRORs, junk datagrams, time passing, timeouts, and the
//! shell's own calls (discard, abort, evict), with a shell that hands in file blocks as
//! asked. Invariants:
//! - blocks are asked for once each, in order, and every DATA sent carries the file's bytes
//!   for its block under the block's wire number;
//! - every DATA lies in the window: after the last acknowledged block, at most `windowsize`
//!   ahead (one block while a server-default window is unconfirmed);
//! - nothing before the OACK is acknowledged, no OACK after DATA, and until the client has
//!   answered at most `1 + half_open.retries` datagrams go out, none of them an ERROR when it
//!   ends unanswered or evicted (a forged request gains little);
//! - `pending_transmits`/`pending_len` bound what `poll_transmit` gives out;
//! - once finished nothing more is sent, the outcome never changes, and a completed
//!   download delivered every byte;
//! - a client that falls silent ends the transfer within its retries (and an adaptive
//!   timer's quick expiries).
#![no_main]

#[path = "../common/machine.rs"]
mod machine;

use std::time::{Duration, Instant};

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use tftpd::proto::packet::{OP_DATA, OP_ERROR, OP_OACK, ack};
use tftpd::proto::read::ReadTransfer;
use tftpd::proto::{ErrorCode, Outcome, TransferConfig, TransmitKind, WireError};

#[derive(Debug, Arbitrary)]
enum Event {
    /// ACK of the highest wire block sent, minus this many.
    AckBehind(u8),
    /// ACK of any block number.
    Ack(u16),
    Error(u16),
    Datagram(Vec<u8>),
    /// Milliseconds pass.
    Wait(u16),
    /// Time jumps to the machine's next timeout.
    Timeout,
    Discard,
    Abort,
    Evict,
}

#[derive(Debug, Arbitrary)]
struct Input {
    knobs: machine::Knobs,
    sliding: bool,
    file_len: u16,
    events: Vec<Event>,
}

struct Client {
    file: Vec<u8>,
    blksize: usize,
    windowsize: u64,
    /// Last block index asked for by the machine.
    asked: u64,
    /// Highest block index seen on the wire, and its wire number.
    highest: u64,
    sent_total: u64,
    sent_error: bool,
    sent_data: bool,
    acked_oack: bool,
}

fuzz_target!(|input: Input| {
    let cfg = input
        .knobs
        .config(input.sliding, b"\x00\x06blksize\x0064\x00");
    let (blksize, windowsize, half_open) = (cfg.blksize, cfg.windowsize, cfg.half_open);
    let rollover = cfg.rollover;
    let max_retries = cfg.max_retries;
    let mut now = Instant::now();
    let mut t = ReadTransfer::new(cfg.clone(), now);
    let mut c = Client {
        file: (0..usize::from(input.file_len % 2048))
            .map(|i| (i * 31 + i / 7) as u8)
            .collect(),
        blksize: usize::from(blksize),
        windowsize: u64::from(windowsize),
        asked: 0,
        highest: 0,
        sent_total: 0,
        sent_error: false,
        sent_data: false,
        acked_oack: false,
    };
    let mut outcome: Option<Outcome> = None;
    step(&mut t, &mut c, now, &cfg, &mut outcome);
    for event in input.events.iter().take(256) {
        let was_finished = t.is_finished();
        match event {
            Event::AckBehind(k) => {
                let index = c.highest.saturating_sub(u64::from(*k));
                if index == 0 {
                    c.acked_oack = true;
                }
                t.handle_datagram(now, &ack(rollover.wire_block(index)));
            }
            Event::Ack(b) => {
                if *b == 0 {
                    c.acked_oack = true;
                }
                t.handle_datagram(now, &ack(*b));
            }
            Event::Error(code) => {
                let mut d = OP_ERROR.to_be_bytes().to_vec();
                d.extend_from_slice(&code.to_be_bytes());
                d.extend_from_slice(b"client gave up\0");
                t.handle_datagram(now, &d);
            }
            Event::Datagram(d) => {
                if d[..] == ack(0) {
                    c.acked_oack = true;
                }
                t.handle_datagram(now, d);
            }
            Event::Wait(ms) => {
                now += Duration::from_millis(u64::from(*ms));
                t.handle_timeout(now);
            }
            Event::Timeout => {
                if let Some(at) = t.poll_timeout() {
                    now = now.max(at);
                }
                t.handle_timeout(now);
            }
            Event::Discard => t.discard_transmits(),
            Event::Abort => t.abort(WireError::new(ErrorCode::NotDefined, "shell gave up")),
            Event::Evict => {
                let confirmed = t.is_confirmed();
                let finished = t.outcome().is_some();
                assert_eq!(
                    t.evict(),
                    !confirmed && !finished,
                    "evict only a half-open one"
                );
            }
        }
        let before = c.sent_total;
        step(&mut t, &mut c, now, &cfg, &mut outcome);
        if was_finished {
            assert_eq!(c.sent_total, before, "a finished download sends nothing");
        }
    }
    // The client falls silent: the transfer must end within its retries, plus the quick
    // expiries of an adaptive timer before it backs off to the full timeout.
    let quick = cfg.retransmit.quick_expiries(cfg.timeout);
    for _ in 0..max_retries.max(half_open.retries) + quick + 3 {
        if t.is_finished() {
            break;
        }
        let at = t
            .poll_timeout()
            .expect("an unfinished download with nothing to send has a timeout");
        now = now.max(at);
        t.handle_timeout(now);
        step(&mut t, &mut c, now, &cfg, &mut outcome);
    }
    assert!(t.is_finished(), "a silent client ends the download");
    assert!(
        t.poll_timeout().is_none(),
        "a finished download has no timer"
    );
    assert!(
        t.poll_block_request().is_none(),
        "a finished download reads nothing"
    );
});

/// The shell's turn: hand in the blocks asked for, then send what is queued, checking it.
fn step(
    t: &mut ReadTransfer,
    c: &mut Client,
    now: Instant,
    cfg: &TransferConfig,
    outcome: &mut Option<Outcome>,
) {
    while let Some(req) = t.poll_block_request() {
        assert_eq!(
            req.index,
            c.asked + 1,
            "blocks are asked for once each, in order"
        );
        assert_eq!(req.max_len, c.blksize, "a block is blksize bytes");
        c.asked = req.index;
        let start = ((req.index - 1) as usize * c.blksize).min(c.file.len());
        let end = (start + c.blksize).min(c.file.len());
        let mut buf = t.take_buffer();
        buf.clear();
        buf.extend_from_slice(&[0; 4]);
        buf.extend_from_slice(&c.file[start..end]);
        t.handle_block(now, buf);
    }
    let acked = t.stats().bytes / c.blksize as u64;
    let window = if cfg.sliding && !t.is_confirmed() {
        1
    } else {
        c.windowsize
    };
    let max_count = t.pending_transmits();
    let max_len = t.pending_len();
    let (mut count, mut len) = (0, 0);
    while let Some(x) = t.poll_transmit() {
        let op = machine::opcode_of(&x);
        let index = match x.kind {
            TransmitKind::Data { block } => Some(block),
            _ => None,
        };
        let d = x.datagram.to_vec();
        count += 1;
        len += d.len();
        assert!(!c.sent_error, "nothing follows an ERROR");
        match op {
            OP_OACK => {
                assert_eq!(Some(&d), cfg.oack.as_ref(), "the configured OACK");
                assert!(!c.sent_data, "no OACK after DATA");
            }
            OP_DATA => {
                let i = index.expect("DATA has a block index");
                assert!(
                    cfg.oack.is_none() || c.acked_oack,
                    "DATA before the OACK's ACK"
                );
                assert!(
                    i > acked && i <= acked + window,
                    "block {i} outside the window after {acked}"
                );
                assert_eq!(
                    u16::from_be_bytes([d[2], d[3]]),
                    cfg.rollover.wire_block(i),
                    "wire number of block {i}"
                );
                let start = (i as usize - 1) * c.blksize;
                let end = (start + c.blksize).min(c.file.len());
                assert_eq!(
                    &d[4..],
                    &c.file[start..end],
                    "block {i} carries the file's bytes"
                );
                c.sent_data = true;
                c.highest = c.highest.max(i);
            }
            OP_ERROR => c.sent_error = true,
            _ => panic!("a download sent opcode {op}"),
        }
        if op != OP_DATA {
            assert_eq!(index, None, "only DATA has a block index");
        }
        c.sent_total += 1;
        if !t.is_confirmed() && op != OP_ERROR {
            assert!(
                c.sent_total <= 1 + u64::from(cfg.half_open.retries),
                "an unconfirmed download sent {} datagrams",
                c.sent_total
            );
        }
    }
    assert!(
        count <= max_count,
        "pending_transmits {max_count} < {count} sent"
    );
    assert!(len <= max_len, "pending_len {max_len} < {len} bytes sent");
    if let Some(o) = t.outcome() {
        match outcome {
            Some(prev) => assert_eq!(prev, o, "the outcome never changes"),
            None => *outcome = Some(o.clone()),
        }
        assert!(t.is_finished(), "ended and drained");
        match o {
            Outcome::Completed => {
                assert_eq!(t.stats().bytes, c.file.len() as u64, "every byte delivered");
                assert_eq!(
                    c.asked,
                    c.file.len() as u64 / c.blksize as u64 + 1,
                    "every block read"
                );
            }
            Outcome::Unanswered | Outcome::Evicted => {
                assert!(!c.sent_error, "{o:?}: ended without a word");
            }
            _ => {}
        }
    }
}
