//! The read and write state machines (`ReadTransfer`, `WriteTransfer`) driven through a
//! whole 1 MiB transfer in memory: a lossless, in-order link and a minimal peer, one fixed
//! `Instant` (nothing times out, so the clock never needs to move). What is timed is the
//! core's bookkeeping plus the decoding and copying any shell and peer must do; no socket.
//! (`tftpd/src/proto/sim.rs` drives the same machines over a lossy link for the tests.)

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use tftpd::proto::options::{Direction, OptionLimits, negotiate};
use tftpd::proto::packet::{DATA_HEADER_LEN, Packet, ack, data_header};
use tftpd::proto::read::ReadTransfer;
use tftpd::proto::write::WriteTransfer;
use tftpd::proto::{HalfOpen, Outcome, Rollover, TransferConfig};

/// Bytes moved per transfer: 2048 lock-step round trips at 512 bytes, enough to swamp
/// the start-up cost and still cross no rollover.
const FILE_LEN: usize = 1 << 20;

/// The transfer settings for a blksize and windowsize, with the OACK that negotiating them
/// produces (none for the RFC 1350 defaults, as without options).
fn config(blksize: u16, windowsize: u16, direction: Direction) -> TransferConfig {
    let limits = OptionLimits {
        max_blksize: u16::MAX,
        max_windowsize: u16::MAX,
        default_timeout: Duration::from_secs(1),
        max_timeout: Duration::from_secs(255),
        max_upload_size: u64::MAX,
        refuse: Vec::new(),
    };
    let (b, w) = (blksize.to_string(), windowsize.to_string());
    let options: Vec<(&[u8], &[u8])> = if (blksize, windowsize) == (512, 1) {
        Vec::new()
    } else {
        vec![(b"blksize", b.as_bytes()), (b"windowsize", w.as_bytes())]
    };
    let n = negotiate(&options, direction, &limits).expect("the bench's options negotiate");
    TransferConfig {
        blksize: n.blksize,
        windowsize: n.windowsize,
        timeout: n.timeout,
        retransmit: tftpd::proto::Retransmit::Fixed,
        max_retries: 5,
        half_open: HalfOpen {
            timeout: Duration::from_secs(1),
            retries: 5,
        },
        max_duration: None,
        rollover: Rollover::WrapToZero,
        oack: n.oack(),
        sliding: false,
    }
}

/// A download of `file`: the shell's part (reading blocks into datagrams) and a client that
/// ACKs each full window and the final block. `sink` gets each payload in order.
fn download(cfg: &TransferConfig, file: &[u8], now: Instant, mut sink: impl FnMut(&[u8])) {
    let mut server = ReadTransfer::new(cfg.clone(), now);
    let blksize = usize::from(cfg.blksize);
    let mut expected = 1u64;
    let mut in_window = 0u16;
    loop {
        while let Some(req) = server.poll_block_request() {
            let start = ((req.index - 1) as usize * req.max_len).min(file.len());
            let end = (start + req.max_len).min(file.len());
            let mut d = Vec::with_capacity(DATA_HEADER_LEN + end - start);
            d.extend_from_slice(&[0; DATA_HEADER_LEN]);
            d.extend_from_slice(&file[start..end]);
            server.handle_block(now, d);
        }
        let mut reply = None;
        while let Some(d) = server.poll_transmit() {
            match Packet::decode(d.datagram) {
                Ok(Packet::Oack { .. }) => reply = Some(ack(0)),
                Ok(Packet::Data { block, data }) => {
                    assert_eq!(block, cfg.rollover.wire_block(expected), "DATA in order");
                    sink(data);
                    expected += 1;
                    in_window += 1;
                    if data.len() < blksize || in_window == cfg.windowsize {
                        in_window = 0;
                        reply = Some(ack(block));
                    }
                }
                other => panic!("unexpected datagram from the read machine: {other:?}"),
            }
        }
        match reply {
            Some(a) => server.handle_datagram(now, &a),
            None => break,
        }
    }
    assert_eq!(
        server.outcome(),
        Some(&Outcome::Completed),
        "the download completed"
    );
}

/// An upload of `file`: a client that sends a window of DATA after each ACK (or the OACK),
/// and the shell's part (taking each payload the machine hands out, into `sink`).
fn upload(cfg: &TransferConfig, file: &[u8], now: Instant, mut sink: impl FnMut(&[u8])) {
    let mut server = WriteTransfer::new(cfg.clone(), now);
    let blksize = usize::from(cfg.blksize);
    let blocks = (file.len() / blksize) as u64 + 1;
    let mut next = 1u64;
    let mut d = Vec::with_capacity(DATA_HEADER_LEN + blksize);
    while !server.is_complete() {
        let mut acked = None;
        while let Some(a) = server.poll_transmit() {
            match Packet::decode(a.datagram) {
                Ok(Packet::Oack { .. }) => acked = Some(0),
                Ok(Packet::Ack { block }) => acked = Some(block),
                other => panic!("unexpected datagram from the write machine: {other:?}"),
            }
        }
        let wanted = cfg.rollover.wire_block(next - 1);
        assert_eq!(acked, Some(wanted), "the machine ACKs the window just sent");
        let window = next..(next + u64::from(cfg.windowsize)).min(blocks + 1);
        next = window.end;
        for i in window {
            let start = (i - 1) as usize * blksize;
            let end = (start + blksize).min(file.len());
            d.clear();
            d.extend_from_slice(&data_header(cfg.rollover.wire_block(i)));
            d.extend_from_slice(&file[start..end]);
            if let Some(payload) = server.handle_datagram(now, &d) {
                sink(payload);
            }
        }
    }
    assert!(
        server.poll_upload_complete(),
        "the final block completes the upload"
    );
    while server.poll_transmit().is_some() {}
    // The dally ends two timeouts after the final block; nothing is resent meanwhile on a
    // lossless link.
    server.handle_timeout(now + 2 * cfg.timeout);
    assert_eq!(
        server.outcome(),
        Some(&Outcome::Completed),
        "the upload completed"
    );
}

pub(crate) fn bench(c: &mut Criterion) {
    let file: Vec<u8> = (0..FILE_LEN as u32).map(|i| (i % 251) as u8).collect();
    let now = Instant::now();
    let settings = [(512, 1), (1468, 1), (1468, 8), (8192, 16)];
    for (name, direction) in [
        (
            "read",
            Direction::Read {
                size: Some(FILE_LEN as u64),
            },
        ),
        ("write", Direction::Write),
    ] {
        let run = |cfg: &TransferConfig, sink: &mut dyn FnMut(&[u8])| match direction {
            Direction::Read { .. } => download(cfg, &file, now, sink),
            Direction::Write => upload(cfg, &file, now, sink),
        };
        let mut g = c.benchmark_group(format!("transfer/{name}_1MiB"));
        g.throughput(Throughput::BytesDecimal(FILE_LEN as u64));
        for (blksize, windowsize) in settings {
            let cfg = config(blksize, windowsize, direction);
            let mut got = Vec::with_capacity(FILE_LEN);
            run(&cfg, &mut |p| got.extend_from_slice(p));
            assert!(
                got == file,
                "{name} {blksize}/{windowsize}: every byte, in order"
            );
            let id = BenchmarkId::new(format!("blksize_{blksize}"), format!("window_{windowsize}"));
            g.bench_with_input(id, &cfg, |b, cfg| {
                b.iter(|| {
                    let mut bytes = 0usize;
                    run(black_box(cfg), &mut |p| bytes += black_box(p).len());
                    bytes
                });
            });
        }
        g.finish();
    }
}
