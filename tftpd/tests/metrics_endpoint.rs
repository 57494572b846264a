//! The metrics endpoint under a connection flood, against the real daemon: hundreds of idle
//! connections hold no more descriptors than `metrics.max_connections`, TFTP downloads go on
//! meanwhile, a fresh scrape succeeds once the idle ones have timed out
//! (`metrics.timeout_ms`), and scrapers that never read their answer hold nothing either.

mod harness;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use harness::raw::Raw;
use harness::{Daemon, METRICS_TIMEOUT, metric, pattern, start_with_metrics};

/// Idle connections opened at once.
const FLOOD: usize = 500;
/// `metrics.max_connections` in these tests.
const CAP: usize = 4;
/// `metrics.timeout_ms` in these tests.
const TIMEOUT: Duration = Duration::from_millis(1000);
/// Descriptors the daemon may open beyond its baseline and the cap: a connection over the
/// cap between accept and close, and a transfer's file and socket.
const SLACK: usize = 4;
/// How long a TFTP reply may take.
const REPLY: Duration = Duration::from_secs(5);

fn config() -> String {
    format!(
        "[metrics]\nmax_connections = {CAP}\ntimeout_ms = {}\n",
        TIMEOUT.as_millis()
    )
}

fn fds(d: &Daemon) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", d.pid()))
        .expect("the daemon's /proc/PID/fd")
        .count()
}

/// One request; the whole reply (an over-cap 503 included), or None if the connection
/// failed.
fn try_scrape(addr: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(REPLY)).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut v = String::new();
    s.read_to_string(&mut v).ok()?;
    Some(v)
}

/// Scrapes until the page (not a 503) comes back, within `within`.
fn scrape_when_free(addr: SocketAddr, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        if let Some(page) = try_scrape(addr).filter(|p| p.starts_with("HTTP/1.1 200 OK")) {
            return page;
        }
        assert!(
            Instant::now() < deadline,
            "no scrape succeeded within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The most descriptors the daemon held over `window`, sampled every few milliseconds.
fn peak_fds(d: &Daemon, window: Duration) -> usize {
    let end = Instant::now() + window;
    let mut peak = 0;
    while Instant::now() < end {
        peak = peak.max(fds(d));
        std::thread::sleep(Duration::from_millis(5));
    }
    peak
}

#[test]
fn five_hundred_idle_connections_hold_at_most_the_cap_and_tftp_keeps_working() {
    let (d, port) = start_with_metrics(config());
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    d.put_file("boot.img", &pattern(200_000, 9));
    scrape_when_free(addr, METRICS_TIMEOUT);
    let baseline = fds(&d);

    let idle: Vec<TcpStream> = (0..FLOOD)
        .map(|i| TcpStream::connect(addr).unwrap_or_else(|e| panic!("connection {i}: {e}")))
        .collect();
    // Within the timeout every connection has been accepted; the cap's worth are held.
    let peak = peak_fds(&d, TIMEOUT * 8 / 10);
    assert!(
        peak <= baseline + CAP + SLACK,
        "{FLOOD} idle connections: the daemon held {peak} descriptors, baseline {baseline}, \
         metrics.max_connections {CAP}"
    );
    let got = Raw::new(d.addr())
        .download("boot.img", &[("blksize", "1428")], REPLY)
        .unwrap_or_else(|e| panic!("TFTP download during the flood: {e:?}\n{}", d.log()));
    assert_eq!(
        got,
        pattern(200_000, 9),
        "served byte for byte during the flood"
    );

    // The idle connections that held a slot time out; then a scrape gets a slot.
    let page = scrape_when_free(addr, TIMEOUT * 5);
    let over_cap = metric(
        &page,
        "tftpd_metrics_connections_total{outcome=\"over_cap\"}",
    );
    let timed_out = metric(
        &page,
        "tftpd_metrics_connections_total{outcome=\"read_timeout\"}",
    );
    assert!(
        timed_out >= 1 && over_cap + timed_out >= FLOOD as u64,
        "every idle connection was closed, by the cap or the read timeout: over_cap \
         {over_cap}, read_timeout {timed_out}"
    );
    drop(idle);
    let deadline = Instant::now() + METRICS_TIMEOUT;
    while fds(&d) > baseline + 1 {
        assert!(
            Instant::now() < deadline,
            "the daemon still holds {} descriptors, baseline {baseline}",
            fds(&d)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn scrapers_that_never_read_their_answer_hold_no_descriptor_past_the_timeouts() {
    let (d, port) = start_with_metrics(config());
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    scrape_when_free(addr, METRICS_TIMEOUT);
    let baseline = fds(&d);
    let slow: Vec<TcpStream> = (0..CAP)
        .map(|_| {
            let mut s = TcpStream::connect(addr).expect("connect");
            s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n")
                .expect("request");
            s
        })
        .collect();
    // Each is answered (into the kernel's buffers or cut off by the write timeout) and let
    // go within two timeouts, while the readers never read.
    let deadline = Instant::now() + TIMEOUT * 2 + METRICS_TIMEOUT;
    while fds(&d) > baseline + 1 {
        assert!(
            Instant::now() < deadline,
            "{} descriptors held for {CAP} silent readers, baseline {baseline}",
            fds(&d)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let page = scrape_when_free(addr, METRICS_TIMEOUT);
    assert!(
        page.contains("tftpd_metrics_connections_total{outcome=\"served\"}"),
        "a scrape still works with the silent readers connected"
    );
    drop(slow);
}

#[test]
fn the_byte_counters_move_while_a_transfer_runs() {
    use harness::raw::{Reply, ack, request};
    let (d, port) = start_with_metrics(String::new());
    d.put_file("big.img", &pattern(512 * 100, 3));
    let c = Raw::new(d.addr());
    c.send(&request(1, b"big.img", "octet", &[]));
    for block in 1..=10u16 {
        match c.expect(Duration::from_secs(5), "DATA") {
            (Reply::Data { block: b, .. }, from) if b == block => c.send_to(&ack(block), from),
            other => panic!("expected DATA {block}, got {other:?}"),
        }
    }
    // Ten of a hundred blocks acknowledged, the transfer still running: the counter shows
    // them now, not when the transfer ends.
    let body = harness::wait_for_metrics(
        port,
        &["tftpd_sent_bytes_total 5120", "tftpd_active_transfers 1"],
        Duration::from_secs(5),
    );
    assert_eq!(metric(&body, "tftpd_sent_bytes_total"), 5120, "{body}");
}
