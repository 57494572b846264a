//! Option negotiation (RFC 2347/2348/2349/7440): a request's options in, the transfer's
//! values and the encoded OACK out, as the listener does once per request.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use tftpd::proto::options::{Direction, OptionLimits, negotiate};

type Options = Vec<(&'static [u8], &'static [u8])>;

fn cases() -> [(&'static str, Options); 3] {
    [
        ("none", Vec::new()),
        (
            "pxe_4_options",
            vec![
                (b"blksize".as_slice(), b"1468".as_slice()),
                (b"tsize", b"0"),
                (b"windowsize", b"8"),
                (b"timeout", b"5"),
            ],
        ),
        // Upper-case names, an unknown option and values above the limits: the paths that
        // compare case-insensitively, skip and clamp.
        (
            "clamped_and_unknown",
            vec![
                (b"BLKSIZE".as_slice(), b"65464".as_slice()),
                (b"multicast", b""),
                (b"WindowSize", b"1000"),
                (b"tsize", b"0"),
            ],
        ),
    ]
}

pub(crate) fn bench(c: &mut Criterion) {
    let limits = OptionLimits {
        max_blksize: 1468,
        max_windowsize: 64,
        default_timeout: Duration::from_secs(1),
        max_timeout: Duration::from_secs(255),
        max_upload_size: u64::MAX,
        refuse: Vec::new(),
    };
    let direction = Direction::Read {
        size: Some(10 << 20),
    };
    let mut g = c.benchmark_group("options/negotiate");
    for (name, options) in cases() {
        let n = negotiate(&options, direction, &limits).expect("the bench's options negotiate");
        assert_eq!(
            n.oack().is_some(),
            !options.is_empty(),
            "{name}: an OACK exactly when options were sent"
        );
        assert!(n.blksize <= 1468 && n.windowsize <= 64, "{name}: clamped");
        g.bench_with_input(BenchmarkId::from_parameter(name), &options, |b, o| {
            b.iter(|| {
                negotiate(black_box(o), direction, &limits)
                    .map(|n| n.oack().map_or(0, |oack| oack.len()))
            });
        });
    }
    g.finish();
}
