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

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::{exec, workspace_root};

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 213, 90, 1);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 213, 90, 2);
const LISTEN_PORT: u16 = 7169;
const TRANSFER_PORT: u16 = 47169;
const METRICS: &str = "127.0.0.1:7170";
/// Upper bounds for each flood thread.
const FLOOD_MAX_PACKETS: u64 = 20_000_000;
const FLOOD_MAX_SECONDS: u64 = 60;
/// How long the flood runs alone, for drops per CPU-second.
const FLOOD_ONLY: Duration = Duration::from_secs(5);
const FILE_SIZE: usize = 64 * 1024 * 1024;
/// USER_HZ on Linux: the unit of /proc/PID/stat and /proc/stat times.
const USER_HZ: f64 = 100.0;

struct Row {
    path: &'static str,
    sent: u64,
    reached_userspace: u64,
    dropped_in_kernel: u64,
    cpu_quiet: f64,
    cpu_flood: f64,
    quiet_mbs: f64,
    flood_mbs: f64,
    alone_sent: u64,
    alone_dropped: u64,
    alone_cpu: f64,
}

/// The namespace and veth pair, removed on drop.
struct Link {
    ns: String,
    host_if: String,
}

impl Link {
    fn new() -> anyhow::Result<Self> {
        let id = std::process::id() % 100_000;
        let link = Self {
            ns: format!("tftpd-flood-{id}"),
            host_if: format!("tfloodh{id}"),
        };
        let peer = format!("tfloodc{id}");
        let server = format!("{SERVER}/24");
        let client = format!("{CLIENT}/24");
        let steps: [&[&str]; 6] = [
            &["netns", "add", &link.ns],
            &[
                "link",
                "add",
                &link.host_if,
                "type",
                "veth",
                "peer",
                "name",
                &peer,
                "netns",
                &link.ns,
            ],
            &["addr", "add", &server, "dev", &link.host_if],
            &["link", "set", &link.host_if, "up"],
            &["-n", &link.ns, "addr", "add", &client, "dev", &peer],
            &["-n", &link.ns, "link", "set", &peer, "up"],
        ];
        for args in steps {
            exec(Command::new("ip").args(args))?;
        }
        Ok(link)
    }

    /// A command run inside the namespace.
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns, program]);
        c
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Deleting the namespace deletes its veth end, and with it the pair.
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

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

fn print_table(rows: &[Row]) {
    println!(
        "\n| filter path | junk sent | junk reaching userspace | dropped in kernel | daemon CPU s, quiet download | daemon CPU s, flooded download | quiet MB/s | flooded MB/s | flooded / quiet | flood alone: sent | dropped | CPU s (daemon + softirq) | drops per CPU-second |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let (flooded, ratio) = if r.flood_mbs.is_nan() {
            ("failed".to_string(), "0".to_string())
        } else {
            (
                format!("{:.1}", r.flood_mbs),
                format!("{:.2}", r.flood_mbs / r.quiet_mbs),
            )
        };
        let per_cpu_second = if r.alone_cpu > 0.0 {
            format!("{:.0}", r.alone_dropped as f64 / r.alone_cpu)
        } else {
            "n/a".to_string()
        };
        println!(
            "| {} | {} | {} | {} | {:.2} | {:.2} | {:.1} | {flooded} | {ratio} | {} | {} | {:.2} | {per_cpu_second} |",
            r.path,
            r.sent,
            r.reached_userspace,
            r.dropped_in_kernel,
            r.cpu_quiet,
            r.cpu_flood,
            r.quiet_mbs,
            r.alone_sent,
            r.alone_dropped,
            r.alone_cpu,
        );
    }
}

fn measure(
    path: &'static str,
    ebpf: &str,
    extra_config: &str,
    dir: &Path,
    file: &[u8],
    link: &Link,
) -> anyhow::Result<Row> {
    let bin = workspace_root().join("target/release/tftpd");
    let config = dir.join("flood.toml");
    let pin_dir = format!("/sys/fs/bpf/tftpd-flood-{}", std::process::id());
    std::fs::write(
        &config,
        format!(
            "port_range = \"{TRANSFER_PORT}-{TRANSFER_PORT}\"\n[log]\nlevel = \"warn\"\n\
             [ebpf]\npin_dir = \"{pin_dir}\"\n{extra_config}"
        ),
    )?;
    let user = String::from_utf8_lossy(&Command::new("id").arg("-un").output()?.stdout)
        .trim()
        .to_string();
    let mut daemon = Command::new(&bin)
        .arg("--config")
        .arg(&config)
        .arg("--root")
        .arg(dir)
        .arg("--listen")
        .arg(format!("{SERVER}:{LISTEN_PORT}"))
        .args(["--metrics-listen", METRICS, "--ebpf", ebpf, "--user", &user])
        .stderr(Stdio::null())
        .spawn()
        .context("starting tftpd")?;
    let result = measure_with(path, &mut daemon, dir, file, link);
    let _ = daemon.kill();
    let _ = daemon.wait();
    // Killed, the daemon leaves its pins behind (XDP goes with its link descriptor).
    let _ = std::fs::remove_dir_all(&pin_dir);
    result
}

fn measure_with(
    path: &'static str,
    daemon: &mut Child,
    dir: &Path,
    file: &[u8],
    link: &Link,
) -> anyhow::Result<Row> {
    wait_for_metrics()?;
    let pid = daemon.id();
    let cpu0 = cpu_seconds(pid)?;
    eprintln!("xtask: {path}: quiet download");
    let quiet = download(dir, file, link).with_context(|| format!("{path}: the quiet download"))?;
    eprintln!("xtask: {path}: {quiet:.1} MB/s; flooded download");
    let cpu1 = cpu_seconds(pid)?;
    // During the download the transfer socket exists, so both roles are flooded.
    let both = [(LISTEN_PORT, LISTENER_JUNK), (TRANSFER_PORT, TRANSFER_JUNK)];
    let flood = Flood::start(link, both, Duration::from_secs(FLOOD_MAX_SECONDS));
    let flooded = download(dir, file, link);
    let sent = flood.stop();
    // Under a flood the download itself may fail; that is a result, not a harness error.
    let flooded = flooded.unwrap_or_else(|e| {
        eprintln!("xtask: {path}: the flooded download failed: {e:#}");
        f64::NAN
    });
    let cpu2 = cpu_seconds(pid)?;
    std::thread::sleep(Duration::from_millis(300));
    let metrics = scrape()?;
    let reached_userspace = drops(&metrics, &["userspace"]);
    let dropped_in_kernel = drops(&metrics, &["socket", "cbpf", "xdp"]);

    eprintln!("xtask: {path}: the flood alone for {FLOOD_ONLY:?}");
    let all = ["userspace", "socket", "cbpf", "xdp"];
    let (daemon0, softirq0) = (cpu_seconds(pid)?, softirq_seconds()?);
    // Alone, only the listener: with no transfer running, junk to the transfer port would
    // meet no socket (an ICMP error, no filter) on every path but XDP's.
    let listener = [(LISTEN_PORT, LISTENER_JUNK), (LISTEN_PORT, LISTENER_JUNK)];
    let flood = Flood::start(link, listener, FLOOD_ONLY);
    std::thread::sleep(FLOOD_ONLY);
    let alone_sent = flood.stop();
    // Let the last datagrams drain through the stack and the daemon before reading.
    std::thread::sleep(Duration::from_millis(300));
    let (daemon1, softirq1) = (cpu_seconds(pid)?, softirq_seconds()?);
    let alone_dropped = drops(&scrape()?, &all) - drops(&metrics, &all);
    Ok(Row {
        path,
        sent,
        reached_userspace,
        dropped_in_kernel,
        cpu_quiet: cpu1 - cpu0,
        cpu_flood: cpu2 - cpu1,
        quiet_mbs: quiet,
        flood_mbs: flooded,
        alone_sent,
        alone_dropped,
        alone_cpu: (daemon1 - daemon0) + (softirq1 - softirq0),
    })
}

/// The filter drops of `paths` on a metrics page.
fn drops(metrics: &str, paths: &[&str]) -> u64 {
    paths
        .iter()
        .map(|p| {
            metrics
                .lines()
                .filter(|l| {
                    l.starts_with(&format!(
                        "tftpd_filter_packets_total{{path=\"{p}\",verdict=\"drop\""
                    ))
                })
                .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum()
}

/// DATA to the listener: junk for its role.
const LISTENER_JUNK: &[u8] = b"\x00\x03\x00\x01junk to the listener";
/// An RRQ to the transfer port: junk for its role.
const TRANSFER_JUNK: &[u8] = b"\x00\x01not for a transfer socket\x00octet\x00";

/// Threads in the namespace sending junk, one per target.
struct Flood {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Flood {
    fn start(link: &Link, targets: [(u16, &'static [u8]); 2], limit: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let threads = targets
            .into_iter()
            .map(|(port, junk)| {
                let to = SocketAddr::from((SERVER, port));
                let (stop, sent) = (stop.clone(), sent.clone());
                let ns = format!("/var/run/netns/{}", link.ns);
                std::thread::spawn(move || flood(&ns, to, junk, limit, &stop, &sent))
            })
            .collect();
        Self {
            stop,
            sent,
            threads,
        }
    }

    /// Stops the threads; returns how many datagrams they sent.
    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        self.sent.load(Ordering::Relaxed)
    }
}

/// Sends `junk` to `to` from inside the namespace at `ns` until stopped or a bound is hit.
fn flood(
    ns: &str,
    to: SocketAddr,
    junk: &[u8],
    limit: Duration,
    stop: &AtomicBool,
    sent: &AtomicU64,
) {
    // setns moves only this thread into the namespace.
    let entered = std::fs::File::open(ns).and_then(|f| {
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
    });
    if let Err(e) = entered {
        eprintln!("xtask: entering {ns}: {e}");
        return;
    }
    let Ok(socket) = UdpSocket::bind((CLIENT, 0)) else {
        return;
    };
    let deadline = Instant::now() + limit;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) && n < FLOOD_MAX_PACKETS {
        if socket.send_to(junk, to).is_ok() {
            n += 1;
        }
        if n.is_multiple_of(4096) && Instant::now() > deadline {
            break;
        }
    }
    sent.fetch_add(n, Ordering::Relaxed);
}

/// One 64 MiB download at blksize 1428 from the namespace; returns MB/s (10^6 bytes per s).
fn download(dir: &Path, file: &[u8], link: &Link) -> anyhow::Result<f64> {
    let out = dir.join("out.bin");
    let t0 = Instant::now();
    let status = link
        .command("curl")
        .args(["-sS", "--max-time", "240", "--tftp-blksize", "1428"])
        .arg(format!("tftp://{SERVER}:{LISTEN_PORT}/64M.bin"))
        .arg("-o")
        .arg(&out)
        .status()
        .context("running curl")?;
    let secs = t0.elapsed().as_secs_f64();
    if !status.success() {
        bail!("curl failed: {status}");
    }
    if std::fs::read(&out)? != file {
        bail!("the downloaded file differs");
    }
    Ok(file.len() as f64 / secs / 1e6)
}

fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat
        .rsplit_once(')')
        .map(|(_, a)| a)
        .context("parsing /proc/PID/stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat, i.e. 11 and 12 after the ")".
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    Ok(ticks as f64 / USER_HZ)
}

/// The machine's softirq time so far (all CPUs), from the `cpu` line of /proc/stat: the
/// seventh value. Softirq work runs wherever it is raised, often in the sender's context, so
/// no process's CPU shows it alone.
fn softirq_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let ticks: u64 = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .and_then(|l| l.split_whitespace().nth(7))
        .context("parsing /proc/stat")?
        .parse()?;
    Ok(ticks as f64 / USER_HZ)
}

fn scrape() -> anyhow::Result<String> {
    let mut s = std::net::TcpStream::connect(METRICS)?;
    s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(body)
}

fn wait_for_metrics() -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(METRICS).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("tftpd did not start (metrics endpoint {METRICS} never answered)")
}
