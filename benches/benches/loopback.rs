//! End to end: the real server (`tftpd::server::run`, the code the daemon runs, in-process
//! on 127.0.0.1 port 0 as in `benches/tests/harness`) and tftp-load's client
//! (`tftpd_benches::run_async`). One iteration is one round of N concurrent downloads of one
//! file, every byte checked against the file; the throughput is the round's payload bytes
//! (`BytesDecimal`: criterion prints MB/s of verified data, 10^6 bytes as everywhere in our
//! docs, where plain `Bytes` would print MiB/s). Sizes 512 B, 64 KiB, 1 MiB, 10 MiB; 1, 10
//! and 100 clients. A round with any failed or unverified transfer panics: a figure for a
//! broken run is worth nothing.
//!
//! In criterion's test mode (`cargo test --benches`, as `cargo xtask test` runs it, or
//! `cargo bench -- --test`) each case runs one round, 100 × 10 MiB included: 9 s for this
//! whole file in a debug build on the 2-vCPU machine at load 5, 34 s at load 9, so nothing
//! needs skipping.
//!
//! Run: `cargo bench -p tftpd-benches --bench loopback`, or one size with a filter, e.g.
//! `-- 'loopback/1MiB'`.

#[path = "../tests/harness/mod.rs"]
mod harness;

use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use harness::{Server, download, pattern};
use tftpd_benches::{LoadSpec, RequestOptions, run_async};

/// What every client asks for: 1468-byte blocks (the largest that fits a 1500-byte
/// Ethernet MTU unfragmented, what PXE firmware asks for), a window of 8 (RFC 7440) and
/// tsize. The window is what keeps the largest case bounded: 100 × 10 MiB in lock-step at
/// 512 bytes is 4.1 million DATA/ACK round trips per iteration, several times the datagrams
/// and wall time of this setting, and criterion needs at least ten iterations.
const OPTIONS: RequestOptions = RequestOptions {
    blksize: Some(1468),
    windowsize: Some(8),
    tsize: true,
    timeout: None,
};

const SIZES: [(&str, usize); 4] = [
    ("512B", 512),
    ("64KiB", 64 << 10),
    ("1MiB", 1 << 20),
    ("10MiB", 10 << 20),
];
const CLIENTS: [u32; 3] = [1, 10, 100];

fn loopback(c: &mut Criterion) {
    let server = Server::start("127.0.0.1:0", "");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("tftp-load")
        .build()
        .expect("the client runtime");
    for (name, size) in SIZES {
        let content = pattern(size, size as u64);
        server.put_file(name, &content);
        let mut g = c.benchmark_group(format!("loopback/{name}"));
        if size >= 1 << 20 {
            // A 1 MiB round takes tens of ms and a 10 MiB one up to seconds: ten samples of
            // equal iteration counts (flat sampling; the default linear ramp would need at
            // least 55 iterations) bound each case to about a minute on this machine.
            g.sample_size(10)
                .sampling_mode(SamplingMode::Flat)
                .measurement_time(Duration::from_secs(if size >= 10 << 20 { 30 } else { 10 }));
        }
        for clients in CLIENTS {
            let round = size * clients as usize;
            let spec = Arc::new(LoadSpec {
                options: OPTIONS,
                clients,
                ..download(server.addr(), name, &content)
            });
            g.throughput(Throughput::BytesDecimal(round as u64));
            g.bench_with_input(BenchmarkId::from_parameter(clients), &spec, |b, spec| {
                b.iter(|| {
                    let report = rt
                        .block_on(run_async(spec.clone()))
                        .expect("a load round runs");
                    assert!(
                        report.failed() == 0
                            && report.ok == u64::from(clients)
                            && report.bytes == round as u64,
                        "loopback/{name}/{clients}: every transfer must verify; report:\n{report}"
                    );
                    report.bytes
                });
            });
        }
        g.finish();
    }
}

criterion::criterion_group!(benches, loopback);
criterion::criterion_main!(benches);
