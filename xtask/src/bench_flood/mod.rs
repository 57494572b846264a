//! `cargo xtask bench-flood`: how much a junk flood costs on each filter path.
//!
//! The daemon listens on one end of a veth pair; the client and the flood run in a network
//! namespace on the other end, so each datagram crosses a real interface's receive path, where
//! XDP can run natively (veth has a driver XDP path) as well as generically. For each path
//! (userspace rules, classic BPF, eBPF socket filters, generic XDP, native XDP) a release
//! daemon serves a 64 MiB file with its transfer sockets pinned to one port. A 64 MiB
//! download at blksize 1428 (curl) runs once quietly, then once while two threads flood the
//! listener and the transfer port with junk; then two threads flood the listener alone for a
//! fixed time.
//! Everything is bounded in packets and seconds.
//!
//! Reported: junk that reached userspace (the daemon's own filter counters), daemon CPU during
//! the flooded download, the flooded download's throughput as a ratio of the quiet one, and,
//! for the flood alone, drops per CPU-second: the datagrams the filters dropped over the CPU
//! the receiving side spent, i.e. the daemon's utime+stime plus the machine's softirq time
//! (where the stack, the socket filters and XDP all run on veth). Never a speed assertion, just
//! a table.

mod flood;
mod link;
mod measure;
mod probes;
mod report;

use std::net::Ipv4Addr;
use std::process::Command;

use self::link::Link;
use self::measure::measure;
use self::report::print_table;
use crate::exec;

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 213, 90, 1);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 213, 90, 2);
const LISTEN_PORT: u16 = 7169;
const TRANSFER_PORT: u16 = 47169;
const METRICS: &str = "127.0.0.1:7170";
const FILE_SIZE: usize = 64 * 1024 * 1024;

pub(crate) fn run() -> anyhow::Result<()> {
    exec(Command::new(env!("CARGO")).args(["build", "--release", "--package", "tftpd"]))?;
    let dir = std::env::temp_dir().join(format!("tftpd-flood-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file: Vec<u8> = (0..FILE_SIZE).map(|i| (i * 31 + i / 4099) as u8).collect();
    std::fs::write(dir.join("64M.bin"), &file)?;
    let link = Link::new()?;
    let xdp = |mode: &str| {
        format!(
            "xdp_interfaces = [\"{}\"]\nxdp_mode = \"{mode}\"\n",
            link.host_if
        )
    };
    let mut rows = Vec::new();
    for (path, ebpf, extra) in [
        ("userspace", "off", String::new()),
        ("cbpf (classic BPF)", "cbpf", String::new()),
        ("socket (eBPF)", "required", String::new()),
        ("xdp generic (veth)", "required", xdp("generic")),
        ("xdp native (veth)", "required", xdp("native")),
    ] {
        rows.push(measure(path, ebpf, &extra, &dir, &file, &link)?);
    }
    drop(link);
    let _ = std::fs::remove_dir_all(&dir);
    print_table(&rows);
    Ok(())
}
