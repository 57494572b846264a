//! Fuzzes the upload state machine (`WriteTransfer`) with a fuzz-chosen client: DATA of the
//! next block (full or short), of nearby and arbitrary block numbers, oversized DATA,
//! ERRORs, junk, time passing, timeouts, and the shell's own calls. Invariants:
//! - the payloads handed to the shell are exactly the DATA the client sent for blocks
//!   1, 2, 3, ... in order, all of blksize bytes but the last, which is short and is
//!   followed by `poll_upload_complete` once, then by nothing more;
//! - the machine never acknowledges a block it has not handed out, and its ACKs never go
//!   backwards; an OACK is only sent before DATA 1 arrived;
//! - the byte count is what was handed out, and a completed upload has its final block;
//! - once finished nothing more is sent or handed out, and the outcome never changes;
//!   ended unanswered or evicted, no ERROR was sent;
//! - a client that falls silent ends the upload within its retries (and an adaptive timer's
//!   quick expiries) or the dally.
#![no_main]

#[path = "../common/machine.rs"]
mod machine;

use std::time::{Duration, Instant};

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use tftpd::proto::packet::{OP_ACK, OP_DATA, OP_ERROR, OP_OACK, data_header};
use tftpd::proto::write::WriteTransfer;
use tftpd::proto::{ErrorCode, Outcome, TransferConfig, WireError};

#[derive(Debug, Arbitrary)]
enum Event {
    /// DATA of the next block, full (or short: the final one) of this byte value.
    Next {
        short: Option<u8>,
        fill: u8,
    },
    /// DATA of the next block plus this many (wrapping), blksize + `extra` bytes.
    Data {
        ahead: i8,
        extra: u8,
    },
    /// DATA of any block number.
    DataAt(u16, Vec<u8>),
    Error(u16),
    Datagram(Vec<u8>),
    Wait(u16),
    Timeout,
    Discard,
    Abort,
    Evict,
    /// The shell's commit of the finished upload fails.
    CommitFails,
}

#[derive(Debug, Arbitrary)]
struct Input {
    knobs: machine::Knobs,
    events: Vec<Event>,
}

#[derive(Default)]
struct Shell {
    /// The bytes handed out, and how many blocks.
    written: Vec<u8>,
    blocks: u64,
    /// What the client sent for each block it sent, by index (1-based, before wrapping).
    sent_by_client: Vec<Vec<u8>>,
    complete: bool,
    highest_ack: u64,
    sent_total: u64,
    sent_error: bool,
    fail_commit: bool,
}

fuzz_target!(|input: Input| {
    let cfg = input.knobs.config(false, b"\x00\x06blksize\x0032\x00");
    let bs = usize::from(cfg.blksize);
    let mut now = Instant::now();
    let mut t = WriteTransfer::new(cfg.clone(), now);
    let mut s = Shell::default();
    let mut outcome = None;
    step(&mut t, &mut s, &cfg, &mut outcome);
    for event in input.events.iter().take(256) {
        let was_finished = t.is_finished();
        let before = (s.sent_total, s.blocks);
        let next = s.blocks + 1;
        let data = |index: u64, payload: &[u8]| {
            let mut d = data_header(cfg.rollover.wire_block(index)).to_vec();
            d.extend_from_slice(payload);
            d
        };
        match event {
            Event::Next { short, fill } => {
                let len = short.map_or(bs, |n| usize::from(n) % bs);
                let d = data(next, &vec![*fill; len]);
                deliver(&mut t, &mut s, now, &d);
            }
            Event::Data { ahead, extra } => {
                let index = next.saturating_add_signed(i64::from(*ahead)).max(1);
                let d = data(index, &vec![0x5a; bs + usize::from(*extra)]);
                deliver(&mut t, &mut s, now, &d);
            }
            Event::DataAt(block, payload) => {
                let mut d = data_header(*block).to_vec();
                d.extend_from_slice(payload);
                deliver(&mut t, &mut s, now, &d);
            }
            Event::Error(code) => {
                let mut d = OP_ERROR.to_be_bytes().to_vec();
                d.extend_from_slice(&code.to_be_bytes());
                d.extend_from_slice(b"disk on fire\0");
                deliver(&mut t, &mut s, now, &d);
            }
            Event::Datagram(d) => deliver(&mut t, &mut s, now, d),
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
                let expect = !t.is_confirmed() && t.outcome().is_none();
                assert_eq!(t.evict(), expect, "evict only a half-open upload");
            }
            Event::CommitFails => s.fail_commit = true,
        }
        step(&mut t, &mut s, &cfg, &mut outcome);
        if was_finished {
            assert_eq!(
                (s.sent_total, s.blocks),
                before,
                "a finished upload does nothing"
            );
        }
    }
    let quick = cfg.retransmit.quick_expiries(cfg.timeout);
    for _ in 0..cfg.max_retries.max(cfg.half_open.retries) + quick + 3 {
        if t.is_finished() {
            break;
        }
        let at = t
            .poll_timeout()
            .expect("an unfinished upload has a timeout");
        now = now.max(at);
        t.handle_timeout(now);
        step(&mut t, &mut s, &cfg, &mut outcome);
    }
    assert!(t.is_finished(), "a silent client ends the upload");
    assert!(t.poll_timeout().is_none(), "a finished upload has no timer");
});

/// Hands a datagram from the client to the machine and does the shell's part with what it
/// hands out: write it, and commit on completion.
fn deliver(t: &mut WriteTransfer, s: &mut Shell, now: Instant, d: &[u8]) {
    let Some(payload) = t.handle_datagram(now, d) else {
        return;
    };
    assert!(!s.complete, "nothing is handed out after the final block");
    assert!(
        d.len() >= 4 && u16::from_be_bytes([d[0], d[1]]) == OP_DATA,
        "only DATA carries data"
    );
    assert_eq!(payload, &d[4..], "the payload is the DATA's");
    s.blocks += 1;
    s.sent_by_client.push(payload.to_vec());
    s.written.extend_from_slice(payload);
    if t.poll_upload_complete() {
        s.complete = true;
        if s.fail_commit {
            t.abort(WireError::new(ErrorCode::DiskFull, "commit failed"));
        }
    }
    assert!(!t.poll_upload_complete(), "completion is reported once");
}

fn step(t: &mut WriteTransfer, s: &mut Shell, cfg: &TransferConfig, outcome: &mut Option<Outcome>) {
    let bs = usize::from(cfg.blksize);
    for (i, b) in s.sent_by_client.iter().enumerate() {
        let last = i + 1 == s.sent_by_client.len();
        if !(last && s.complete) {
            assert_eq!(
                b.len(),
                bs,
                "block {}: only the final block is short",
                i + 1
            );
        } else {
            assert!(b.len() < bs, "the final block is short");
        }
    }
    assert_eq!(
        t.stats().bytes,
        s.written.len() as u64,
        "bytes counted are bytes written"
    );
    let max_count = t.pending_transmits();
    let max_len = t.pending_len();
    let (mut count, mut len) = (0, 0);
    while let Some(x) = t.poll_transmit() {
        let op = machine::opcode_of(&x);
        let d = x.datagram;
        count += 1;
        len += d.len();
        assert!(!s.sent_error, "nothing follows an ERROR");
        match op {
            OP_OACK => {
                assert_eq!(Some(d), cfg.oack.as_deref(), "the configured OACK");
                assert_eq!(s.blocks, 0, "no OACK after DATA 1");
            }
            OP_ACK => {
                assert_eq!(d.len(), 4);
                let block = u16::from_be_bytes([d[2], d[3]]);
                // Blocks are few here (no rollover), so the wire number is the index.
                let index = (0..=s.blocks)
                    .rev()
                    .find(|&i| cfg.rollover.wire_block(i) == block)
                    .unwrap_or_else(|| {
                        panic!("ACK {block} of a block not handed out ({})", s.blocks)
                    });
                assert!(
                    index >= s.highest_ack,
                    "ACK {index} after ACK {}",
                    s.highest_ack
                );
                s.highest_ack = index;
            }
            OP_ERROR => s.sent_error = true,
            _ => panic!("an upload sent opcode {op}"),
        }
        s.sent_total += 1;
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
            Outcome::Completed => assert!(s.complete, "completed with its final block"),
            Outcome::Unanswered | Outcome::Evicted => {
                assert!(!s.sent_error, "{o:?}: ended without a word")
            }
            _ => {}
        }
    }
}
