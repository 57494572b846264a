//! Netascii both ways, as the transfers use it: local text encoded into 512-byte DATA
//! payloads (read side), and wire text decoded block by block (write side). Throughput is
//! the local text's size.

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use tftpd::proto::netascii::{Decoder, Encoder, encoded_len};

/// Local text size: a typical boot menu or kickstart file is well under this.
const TEXT_LEN: usize = 64 << 10;
/// The RFC 1350 block size, the one netascii clients use.
const BLOCK: usize = 512;

/// Unix text with lines of varying length and a bare CR now and then (encoded as CR NUL).
fn text() -> Vec<u8> {
    let mut t = Vec::with_capacity(TEXT_LEN);
    let mut line = 0usize;
    while t.len() < TEXT_LEN {
        let len = 20 + line * 7 % 60;
        t.extend((0..len).map(|i| b'a' + (i % 26) as u8));
        if line.is_multiple_of(17) {
            t.push(b'\r');
        }
        t.push(b'\n');
        line += 1;
    }
    t.truncate(TEXT_LEN);
    t
}

/// Encodes `text` into `BLOCK`-byte payloads, as the read side fills DATA blocks; returns
/// the wire bytes.
fn encode_blocks(text: &[u8], wire: &mut Vec<u8>) {
    let mut enc = Encoder::new();
    let mut block = [0u8; BLOCK];
    let mut used = 0;
    while used < text.len() || enc.has_pending() {
        let (u, w) = enc.encode(&text[used..], &mut block);
        used += u;
        wire.extend_from_slice(&block[..w]);
    }
}

/// Decodes `wire` fed in `BLOCK`-byte payloads, as the write side receives it.
fn decode_blocks(wire: &[u8], out: &mut Vec<u8>) {
    let mut dec = Decoder::new();
    for chunk in wire.chunks(BLOCK) {
        dec.decode(chunk, out);
    }
    dec.finish(out);
}

pub(crate) fn bench(c: &mut Criterion) {
    let text = text();
    let mut wire = Vec::new();
    encode_blocks(&text, &mut wire);
    assert_eq!(wire.len() as u64, encoded_len(&text), "encoded size");
    let mut back = Vec::new();
    decode_blocks(&wire, &mut back);
    assert!(back == text, "netascii round trip gives the text back");

    let mut g = c.benchmark_group("netascii");
    g.throughput(Throughput::BytesDecimal(text.len() as u64));
    g.bench_function("encode_64KiB", |b| {
        let mut out = Vec::with_capacity(wire.len());
        b.iter(|| {
            out.clear();
            encode_blocks(black_box(&text), &mut out);
            out.len()
        });
    });
    g.bench_function("decode_64KiB", |b| {
        let mut out = Vec::with_capacity(text.len());
        b.iter(|| {
            out.clear();
            decode_blocks(black_box(&wire), &mut out);
            out.len()
        });
    });
    g.finish();
}
