//! `performance.memory.huge_pages`: the listeners' recvmmsg slots on a reserved huge page
//! when one is free (root reserves two for the test), else on a transparent one; requests
//! are served from them byte for byte either way.

mod harness;

use std::time::Duration;

use harness::raw::Raw;
use harness::{Daemon, DaemonArgs, is_root, pattern, skip};

const REPLY: Duration = Duration::from_secs(5);
const NR_HUGEPAGES: &str = "/proc/sys/vm/nr_hugepages";
const CONFIG: &str =
    "[performance.batching]\nrecv_batch = 32\n[performance.memory]\nhuge_pages = true\n";

fn free_huge_pages() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .expect("meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("HugePages_Free:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("HugePages_Free")
}

/// Puts `vm.nr_hugepages` back as it was, however the test ends.
struct Reserved(String);

impl Drop for Reserved {
    fn drop(&mut self) {
        let _ = std::fs::write(NR_HUGEPAGES, &self.0);
    }
}

fn serves(d: &Daemon) {
    d.put_file("h.bin", &pattern(70_000, 6));
    let got = Raw::new(d.addr()).download("h.bin", &[("blksize", "1428")], REPLY);
    assert_eq!(got, Ok(pattern(70_000, 6)), "served from the slots");
}

#[test]
fn recvmmsg_slots_on_huge_pages_serve_with_and_without_reserved_ones() {
    recvmmsg_slots_take_a_reserved_huge_page();
    without_reserved_pages_the_slots_still_serve();
}

fn recvmmsg_slots_take_a_reserved_huge_page() {
    if !is_root() {
        return skip(
            "recvmmsg_slots_take_a_reserved_huge_page",
            "needs root (vm.nr_hugepages)",
        );
    }
    let before = std::fs::read_to_string(NR_HUGEPAGES).expect("nr_hugepages");
    let _restore = Reserved(before.clone());
    let n: u64 = before.trim().parse().expect("a number");
    std::fs::write(NR_HUGEPAGES, (n + 2).to_string()).expect("reserving huge pages");
    let free = free_huge_pages();
    assert!(free >= 2, "the kernel reserved the pages: {free} free");
    let d = Daemon::start(DaemonArgs {
        config: Some(CONFIG.into()),
        ..DaemonArgs::default()
    });
    // The slots are made at the listener's first receive.
    serves(&d);
    let line = d.wait_for_log("recvmmsg slots allocated", REPLY);
    assert!(line.contains("hugetlb"), "{line}");
    assert_eq!(free_huge_pages(), free - 1, "one listener, one huge page");
    drop(d);
}

/// Without reserved pages (and run after the test above, not beside it: a second daemon
/// would take one of its reserved pages).
fn without_reserved_pages_the_slots_still_serve() {
    let d = Daemon::start(DaemonArgs {
        config: Some(CONFIG.into()),
        ..DaemonArgs::default()
    });
    serves(&d);
    let line = d.wait_for_log("recvmmsg slots allocated", REPLY);
    assert!(
        ["hugetlb", "transparent", "normal"]
            .iter()
            .any(|k| line.contains(k)),
        "the line names what backs the slots: {line}"
    );
}
