//! What the daemon says about itself, against the real binary on loopback: the process
//! metrics match what /proc shows of the daemon's pid, `tftpd_build_info{io_path}` follows
//! the `[performance]` switches and the kernel's support as the start-up lines report them,
//! and EDK2's size probe (RRQ with tsize, OACK, ERROR 8) is counted as `size_probe`.

mod harness;

use std::time::Duration;

use harness::raw::{self, Raw, Reply};
use harness::{Daemon, LOG_TIMEOUT, METRICS_TIMEOUT, metric, scrape_metrics, start_with_metrics};

/// How long a TFTP reply may take.
const REPLY: Duration = Duration::from_secs(5);

fn proc_of(d: &Daemon, file: &str) -> String {
    std::fs::read_to_string(format!("/proc/{}/{file}", d.pid()))
        .unwrap_or_else(|e| panic!("/proc/{}/{file}: {e}", d.pid()))
}

#[test]
fn process_metrics_match_what_proc_shows_of_the_daemon() {
    let (d, port) = start_with_metrics(String::new());
    let page = scrape_metrics(port);
    let open = metric(&page, "process_open_fds ");
    let fds = std::fs::read_dir(format!("/proc/{}/fd", d.pid()))
        .expect("the daemon's fd directory")
        .count() as u64;
    // The scrape's own connection comes and goes, and /proc is read a moment later.
    assert!(
        open.abs_diff(fds) <= 2,
        "process_open_fds {open} against {fds} entries in /proc/PID/fd"
    );
    let soft: u64 = proc_of(&d, "limits")
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        .expect("a numeric soft limit in /proc/PID/limits");
    assert_eq!(
        metric(&page, "process_max_fds "),
        soft,
        "the soft limit the daemon raised at start"
    );
    let rss = metric(&page, "process_resident_memory_bytes ");
    let resident_pages: u64 = proc_of(&d, "statm")
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("statm's resident field");
    let now = resident_pages * 4096;
    assert!(
        rss > 1 << 20 && rss.abs_diff(now) < 64 << 20,
        "resident memory {rss} against statm's {now}"
    );
    for family in [
        "process_open_fds",
        "process_max_fds",
        "process_resident_memory_bytes",
    ] {
        assert!(
            page.contains(&format!("# TYPE {family} gauge")),
            "{family} is a gauge: {page}"
        );
    }
}

/// The `io_path` label value on the page.
fn io_path(page: &str) -> String {
    let line = page
        .lines()
        .find(|l| l.starts_with("tftpd_build_info{"))
        .unwrap_or_else(|| panic!("no build info in {page}"));
    let start = line.find("io_path=\"").expect("an io_path label") + "io_path=\"".len();
    line[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_string()
}

const ALL_OFF: &str = "[performance.batching]\ngso = false\nrecv_batch = 1\n\
    transfer_recvmmsg = false\n[performance.cpu]\ntransfer_threads = 0\n";

#[test]
fn build_info_names_the_io_path_start_up_chose() {
    let (_d, port) = start_with_metrics(ALL_OFF.to_string());
    assert_eq!(
        io_path(&scrape_metrics(port)),
        "portable",
        "every fast path switched off"
    );
    // The one switch does the same, whatever the keys say.
    let (d, port) = start_with_metrics(format!(
        "[performance]\nio = \"portable\"\n{}",
        ALL_OFF.replace("= false", "= true").replace("= 0", "= 16")
    ));
    assert_eq!(io_path(&scrape_metrics(port)), "portable", "performance.io");
    d.wait_for_log(
        "performance.io = \"portable\": no platform fast path",
        LOG_TIMEOUT,
    );
    let (d, port) = start_with_metrics(
        ALL_OFF.replace("gso = false\nrecv_batch = 1", "gso = true\nrecv_batch = 32"),
    );
    let gso = d.wait_for_log("fastpath=\"gso\"", LOG_TIMEOUT);
    let recvmmsg = d.wait_for_log("fastpath=\"recvmmsg\"", LOG_TIMEOUT);
    let mut want = Vec::new();
    if recvmmsg.contains("listeners read requests with recvmmsg") {
        want.push("recvmmsg");
    }
    if gso.contains("windows are sent with UDP GSO") {
        want.push("gso");
    }
    let want = if want.is_empty() {
        "portable".to_string()
    } else {
        want.join("+")
    };
    assert_eq!(
        io_path(&scrape_metrics(port)),
        want,
        "what the start-up lines said:\n{}",
        d.log()
    );
}

#[test]
fn edk2s_size_probe_is_counted_as_a_size_probe_not_a_failure() {
    let (d, port) = start_with_metrics(String::new());
    d.put_file("bootx64.efi", &harness::pattern(3000, 7));
    let client = Raw::new(d.addr());
    // EDK2 (OVMF) asks for the size, takes it from the OACK and refuses the transfer.
    client.send(&raw::request(
        1,
        b"bootx64.efi",
        "octet",
        &[("tsize", "0"), ("blksize", "1468")],
    ));
    let (reply, tid) = client.expect(REPLY, "the OACK");
    let Reply::Oack(options) = reply else {
        panic!("an OACK, got {reply:?}");
    };
    assert!(
        options.iter().any(|(k, v)| k == "tsize" && v == "3000"),
        "the size in the OACK: {options:?}"
    );
    client.send_to(&raw::error(8, "User aborted the transfer"), tid);
    // And then a client that refuses the OACK of a request that did not ask the size: a
    // real failure.
    let other = Raw::new(d.addr());
    other.send(&raw::request(
        1,
        b"bootx64.efi",
        "octet",
        &[("blksize", "1468")],
    ));
    let (reply, tid) = other.expect(REPLY, "the second OACK");
    assert!(matches!(reply, Reply::Oack(_)), "an OACK, got {reply:?}");
    other.send_to(&raw::error(8, "no"), tid);
    let page = harness::wait_for_metrics(
        port,
        &[
            "tftpd_requests_total{kind=\"read\",outcome=\"size_probe\"} 1",
            "tftpd_requests_total{kind=\"read\",outcome=\"peer_error\"} 1",
        ],
        METRICS_TIMEOUT,
    );
    assert_eq!(
        metric(
            &page,
            "tftpd_requests_total{kind=\"read\",outcome=\"completed\"} "
        ),
        0,
        "{page}"
    );
    let line = d.wait_for_log("outcome=\"size_probe\"", LOG_TIMEOUT);
    assert!(line.contains("transfer finished"), "{line}");
}
