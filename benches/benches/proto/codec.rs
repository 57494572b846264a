//! The packet codec: decoding what a server receives (requests, ACKs, DATA of an upload) and
//! encoding what it sends (DATA, OACK, ERROR). Throughput is in datagrams (criterion's elem/s):
//! decoding borrows from the buffer, so bytes per second would say nothing about the cost.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use tftpd::proto::packet::{self, Packet, Request};
use tftpd::proto::{ErrorCode, packet::OptionList};

/// An RRQ as PXE firmware sends it: a path, octet mode and the four options.
fn rrq() -> Vec<u8> {
    let options: OptionList<'_> = vec![
        (b"blksize".as_slice(), b"1468".as_slice()),
        (b"tsize", b"0"),
        (b"windowsize", b"8"),
        (b"timeout", b"5"),
    ];
    let mut out = Vec::new();
    Packet::Rrq(Request {
        filename: b"pxelinux.cfg/01-52-54-00-12-34-56",
        mode: b"octet",
        options,
    })
    .encode(&mut out);
    out
}

/// A DATA datagram with a full 1468-byte block.
fn data() -> Vec<u8> {
    let mut out = packet::data_header(4711).to_vec();
    out.extend((0..1468u32).map(|i| i as u8));
    out
}

pub(crate) fn bench(c: &mut Criterion) {
    let datagrams = [
        ("rrq_4_options", rrq()),
        ("ack", packet::ack(4711).to_vec()),
        ("data_1468", data()),
    ];
    let mut g = c.benchmark_group("codec/decode");
    for (name, d) in &datagrams {
        let decoded = Packet::decode(d).expect("the bench's own datagram decodes");
        let mut again = Vec::new();
        decoded.encode(&mut again);
        assert_eq!(
            &again, d,
            "{name}: decode then encode gives the datagram back"
        );
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(BenchmarkId::from_parameter(name), d, |b, d| {
            b.iter(|| Packet::decode(black_box(d)).map(|p| matches!(p, Packet::Ack { .. })));
        });
    }
    g.finish();

    let mut g = c.benchmark_group("codec/encode");
    g.throughput(Throughput::Elements(1));
    let rrq = rrq();
    let data = data();
    let oack = Packet::decode(&rrq).map(|p| match p {
        Packet::Rrq(r) => Packet::Oack { options: r.options },
        other => other,
    });
    let oack = oack.expect("the bench's RRQ decodes");
    for (name, packet) in [
        ("oack_4_options", oack),
        (
            "data_1468",
            Packet::decode(&data).expect("the bench's DATA decodes"),
        ),
    ] {
        let mut out = Vec::new();
        packet.encode(&mut out);
        assert_eq!(
            Packet::decode(&out).as_ref(),
            Ok(&packet),
            "{name}: encode then decode gives the packet back"
        );
        g.bench_with_input(BenchmarkId::from_parameter(name), &packet, |b, p| {
            let mut out = Vec::with_capacity(2048);
            b.iter(|| {
                out.clear();
                black_box(p).encode(&mut out);
                out.len()
            });
        });
    }
    g.bench_function("error", |b| {
        let mut out = Vec::with_capacity(64);
        b.iter(|| {
            out.clear();
            packet::encode_error(
                &mut out,
                ErrorCode::FileNotFound,
                black_box(b"file not found"),
            );
            out.len()
        });
    });
    g.finish();
}
