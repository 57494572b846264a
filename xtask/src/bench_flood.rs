//! `cargo xtask bench-flood`: how much a junk flood costs the daemon on each filter path.
//!
//! For each path (userspace rules, classic BPF, eBPF socket filters, XDP in generic mode on
//! `lo`), a release daemon serves a 64 MiB file
//! on loopback with its transfer sockets pinned to one port. A 64 MiB download at blksize 1428
//! (curl) runs once quietly, then once while two threads flood the listener and the transfer
//! port with junk (bounded in packets and seconds). Reported: junk that reached userspace (the
//! daemon's own filter counters), daemon CPU seconds during the flooded download, and the
//! flooded download's throughput as a ratio of the quiet one. Loopback only; never a speed
//! assertion, just a table.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::{exec, workspace_root};

const LISTEN: &str = "127.0.0.1:7169";
const TRANSFER_PORT: u16 = 47169;
const METRICS: &str = "127.0.0.1:7170";
/// Upper bounds for each flood thread.
const FLOOD_MAX_PACKETS: u64 = 20_000_000;
const FLOOD_MAX_SECONDS: u64 = 60;
const FILE_SIZE: usize = 64 * 1024 * 1024;

struct Row {
    path: &'static str,
    sent: u64,
    reached_userspace: u64,
    dropped_in_kernel: u64,
    cpu_quiet: f64,
    cpu_flood: f64,
    quiet_mbs: f64,
    flood_mbs: f64,
}

pub(crate) fn run() -> anyhow::Result<()> {
    exec(Command::new(env!("CARGO")).args(["build", "--release", "--package", "tftpd"]))?;
    let dir = std::env::temp_dir().join(format!("tftpd-flood-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file: Vec<u8> = (0..FILE_SIZE).map(|i| (i * 31 + i / 4099) as u8).collect();
    std::fs::write(dir.join("64M.bin"), &file)?;
    let mut rows = Vec::new();
    let xdp = "[ebpf]\nxdp_interfaces = [\"lo\"]\nxdp_mode = \"generic\"\n";
    for (path, ebpf, extra) in [
        ("userspace", "off", ""),
        ("cbpf (classic BPF)", "cbpf", ""),
        ("socket (eBPF)", "required", ""),
        ("xdp (generic, on lo)", "required", xdp),
    ] {
        rows.push(measure(path, ebpf, extra, &dir, &file)?);
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "\n| filter path | junk sent | junk reaching userspace | dropped in kernel | daemon CPU s, quiet download | daemon CPU s, flooded download | quiet MB/s | flooded MB/s | flooded / quiet |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let (flooded, ratio) = if r.flood_mbs.is_nan() {
            ("failed".to_string(), "0".to_string())
        } else {
            (
                format!("{:.1}", r.flood_mbs),
                format!("{:.2}", r.flood_mbs / r.quiet_mbs),
            )
        };
        println!(
            "| {} | {} | {} | {} | {:.2} | {:.2} | {:.1} | {flooded} | {ratio} |",
            r.path,
            r.sent,
            r.reached_userspace,
            r.dropped_in_kernel,
            r.cpu_quiet,
            r.cpu_flood,
            r.quiet_mbs,
        );
    }
    Ok(())
}

fn measure(
    path: &'static str,
    ebpf: &str,
    extra_config: &str,
    dir: &Path,
    file: &[u8],
) -> anyhow::Result<Row> {
    let bin = workspace_root().join("target/release/tftpd");
    let config = dir.join("flood.toml");
    std::fs::write(
        &config,
        format!(
            "port_range = \"{TRANSFER_PORT}-{TRANSFER_PORT}\"\n[log]\nlevel = \"warn\"\n{extra_config}"
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
        .args([
            "--listen",
            LISTEN,
            "--metrics-listen",
            METRICS,
            "--ebpf",
            ebpf,
            "--user",
            &user,
        ])
        .stderr(Stdio::null())
        .spawn()
        .context("starting tftpd")?;
    let result = measure_with(path, &mut daemon, dir, file);
    let _ = daemon.kill();
    let _ = daemon.wait();
    result
}

fn measure_with(
    path: &'static str,
    daemon: &mut Child,
    dir: &Path,
    file: &[u8],
) -> anyhow::Result<Row> {
    wait_for_metrics()?;
    let pid = daemon.id();
    let cpu0 = cpu_seconds(pid)?;
    eprintln!("xtask: {path}: quiet download");
    let quiet = download(dir, file).with_context(|| format!("{path}: the quiet download"))?;
    eprintln!("xtask: {path}: {quiet:.1} MB/s; flooded download");
    let cpu1 = cpu_seconds(pid)?;
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let listen: SocketAddr = LISTEN.parse()?;
    let transfer: SocketAddr = SocketAddr::new(listen.ip(), TRANSFER_PORT);
    let floods: Vec<_> = [
        (listen, b"\x00\x03\x00\x01junk to the listener".to_vec()),
        (
            transfer,
            b"\x00\x01not for a transfer socket\x00octet\x00".to_vec(),
        ),
    ]
    .into_iter()
    .map(|(to, junk)| {
        let (stop, sent) = (stop.clone(), sent.clone());
        std::thread::spawn(move || flood(to, &junk, &stop, &sent))
    })
    .collect();
    let flooded = download(dir, file);
    stop.store(true, Ordering::Relaxed);
    for f in floods {
        let _ = f.join();
    }
    // Under a flood the download itself may fail; that is a result, not a harness error.
    let flooded = flooded.unwrap_or_else(|e| {
        eprintln!("xtask: {path}: the flooded download failed: {e:#}");
        f64::NAN
    });
    let cpu2 = cpu_seconds(pid)?;
    std::thread::sleep(Duration::from_millis(300));
    let metrics = scrape()?;
    let sum = |p: &str| -> u64 {
        metrics
            .lines()
            .filter(|l| {
                l.starts_with(&format!(
                    "tftpd_filter_packets_total{{path=\"{p}\",verdict=\"drop\""
                ))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    Ok(Row {
        path,
        sent: sent.load(Ordering::Relaxed),
        reached_userspace: sum("userspace"),
        dropped_in_kernel: sum("socket") + sum("cbpf") + sum("xdp"),
        cpu_quiet: cpu1 - cpu0,
        cpu_flood: cpu2 - cpu1,
        quiet_mbs: quiet,
        flood_mbs: flooded,
    })
}

/// Sends `junk` to `to` until stopped or a bound is hit.
fn flood(to: SocketAddr, junk: &[u8], stop: &AtomicBool, sent: &AtomicU64) {
    let Ok(socket) = UdpSocket::bind("127.0.0.1:0") else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(FLOOD_MAX_SECONDS);
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

/// One 64 MiB download at blksize 1428; returns MB/s (10^6 bytes per second).
fn download(dir: &Path, file: &[u8]) -> anyhow::Result<f64> {
    let out = dir.join("out.bin");
    let t0 = Instant::now();
    let status = Command::new("curl")
        .args(["-sS", "--max-time", "240", "--tftp-blksize", "1428"])
        .arg(format!("tftp://{LISTEN}/64M.bin"))
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
    let hz = 100.0; // USER_HZ on Linux
    Ok(ticks as f64 / hz)
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
