//! The classic-BPF programs against the shared rules, in a real kernel: each datagram goes
//! through a loopback socket with the program attached, and what arrives must be exactly what
//! the rule keeps. No privilege is needed to attach classic BPF, so these always run.

use std::net::UdpSocket;
use std::time::Duration;

use tftp_ebpf_common::rules::REQUEST_SCAN_LIMIT;
use tftp_ebpf_common::{Verdict, classify_request, classify_transfer};

use super::program::MAX_INSNS;
use super::*;

/// A request that passes both the rule and the program, ending each batch.
fn sentinel(n: usize) -> Vec<u8> {
    format!("\0\x01sentinel-{n}\0octet\0").into_bytes()
}

/// Sends `datagrams` through a socket filtered by `program` and returns what arrived.
fn through_kernel(program: &[SockFilter], datagrams: &[Vec<u8>], sentinel: &[u8]) -> Vec<Vec<u8>> {
    let rx = UdpSocket::bind("127.0.0.1:0").expect("bind the receiver");
    rx.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("set a read timeout");
    attach(&rx, program).expect("attach the classic BPF program");
    let tx = UdpSocket::bind("127.0.0.1:0").expect("bind the sender");
    tx.connect(rx.local_addr().expect("receiver address"))
        .expect("connect the sender");
    let mut got = Vec::new();
    let mut buf = vec![0u8; 70_000];
    // Batches small enough for the default receive buffer.
    for batch in datagrams.chunks(64) {
        for d in batch {
            tx.send(d).expect("send a datagram");
        }
        tx.send(sentinel).expect("send the sentinel");
        loop {
            let n = rx.recv(&mut buf).expect("the sentinel must arrive");
            if &buf[..n] == sentinel {
                break;
            }
            got.push(buf[..n].to_vec());
        }
    }
    assert_eq!(
        socket_drops(&rx).expect("read SO_MEMINFO"),
        u32::try_from(datagrams.len() - got.len()).expect("fits"),
        "the socket's drop counter counts every datagram the program dropped"
    );
    got
}

/// Datagrams that probe each rule's edges: every opcode, lengths around 4, NULs near the
/// end at the scan limit and beyond it, and random bytes.
fn probes(seed: u64) -> Vec<Vec<u8>> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out: Vec<Vec<u8>> = Vec::new();
    for len in 0..8 {
        for op in 0..7u8 {
            let mut d = vec![0u8; len];
            if len > 1 {
                d[1] = op;
            }
            out.push(d);
        }
    }
    for back in [
        1,
        2,
        3,
        511,
        512,
        513,
        REQUEST_SCAN_LIMIT,
        REQUEST_SCAN_LIMIT + 1,
    ] {
        for payload in [back + 1, back + 2, back + 3, 600, 1200] {
            if payload < back + 1 {
                continue;
            }
            let mut d = vec![b'a'; payload];
            d[0] = 0;
            d[1] = 1 + u8::from(payload % 2 == 0);
            d[payload - 1] = 0;
            d[payload - back] = 0;
            out.push(d);
        }
    }
    for _ in 0..3000 {
        let len = rng.usize(0..1300);
        let mut d: Vec<u8> = (0..len)
            .map(|_| if rng.u8(0..4) == 0 { 0 } else { rng.u8(..) })
            .collect();
        if len >= 2 && rng.bool() {
            d[0] = 0;
            d[1] = rng.u8(0..7);
        }
        if len >= 1 && rng.bool() {
            d[len - 1] = 0;
        }
        out.push(d);
    }
    out
}

#[test]
fn the_listener_program_keeps_exactly_what_the_rule_keeps() {
    let program = listener_program().expect("assemble");
    let all = probes(1);
    let want: Vec<Vec<u8>> = all
        .iter()
        .filter(|d| classify_request(&d[..]) == Verdict::Pass)
        .cloned()
        .collect();
    assert!(
        want.len() > 100 && want.len() < all.len() - 100,
        "the probes must hold both kinds"
    );
    let got = through_kernel(&program, &all, &sentinel(0));
    assert_eq!(got.len(), want.len(), "how many passed");
    assert!(got == want, "the same datagrams, in order");
}

#[test]
fn the_transfer_program_keeps_exactly_what_the_rule_keeps() {
    for max in [8u16, 512, 1428] {
        let program = transfer_program(max).expect("assemble");
        let mut all = probes(u64::from(max));
        for len in [
            4 + usize::from(max) - 1,
            4 + usize::from(max),
            4 + usize::from(max) + 1,
        ] {
            let mut d = vec![7u8; len];
            d[0] = 0;
            d[1] = 3;
            all.push(d);
        }
        let want: Vec<Vec<u8>> = all
            .iter()
            .filter(|d| classify_transfer(&d[..], usize::from(max)) == Verdict::Pass)
            .cloned()
            .collect();
        // The sentinel is an ACK here: the transfer program keeps those.
        let got = through_kernel(&program, &all, b"\0\x04\xff\xfe");
        assert_eq!(got.len(), want.len(), "max_blksize {max}: how many passed");
        assert!(
            got == want,
            "max_blksize {max}: the same datagrams, in order"
        );
    }
}

#[test]
fn the_single_port_program_keeps_exactly_what_the_rule_keeps() {
    let program = single_port_program(512).expect("assemble");
    let all = probes(7);
    let want: Vec<Vec<u8>> = all
        .iter()
        .filter(|d| tftp_ebpf_common::classify_single_port(&d[..], 512) == Verdict::Pass)
        .cloned()
        .collect();
    let got = through_kernel(&program, &all, b"\0\x04\xff\xfe");
    assert_eq!(got.len(), want.len(), "how many passed");
    assert!(got == want, "the same datagrams, in order");
}

#[test]
fn programs_fit_the_kernel_limit() {
    let listener = listener_program().expect("assemble");
    assert!(
        listener.len() <= MAX_INSNS && listener.len() > 6 * (REQUEST_SCAN_LIMIT - 1),
        "the scan is unrolled in full: {} instructions",
        listener.len()
    );
    assert!(transfer_program(u16::MAX).expect("assemble").len() < 32);
}

#[test]
fn the_filter_sums_listener_and_closed_transfer_drops() {
    let mut f = CbpfFilter::new(512).expect("assemble");
    let listener = UdpSocket::bind("127.0.0.1:0").expect("bind");
    f.attach_listener(&listener, false)
        .expect("attach to the listener");
    let transfer = UdpSocket::bind("127.0.0.1:0").expect("bind");
    f.attach_transfer(&transfer)
        .expect("attach to a transfer socket");
    let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
    for _ in 0..3 {
        tx.send_to(b"\0\x03junk", listener.local_addr().expect("addr"))
            .expect("send");
    }
    for _ in 0..2 {
        tx.send_to(b"\0\x01f\0octet\0", transfer.local_addr().expect("addr"))
            .expect("send");
    }
    // Loopback delivers synchronously within send, so the drops are counted already.
    assert_eq!(f.dropped(), 3, "the listener's drops, live");
    f.transfer_closed(&transfer);
    drop(transfer);
    assert_eq!(f.dropped(), 5, "plus the closed transfer socket's");
}
