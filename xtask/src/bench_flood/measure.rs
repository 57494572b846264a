//! One filter path measured: a release daemon started with it, a quiet and a flooded
//! download, then the flood alone, read from the daemon's counters and the CPU times.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::flood::{FLOOD_MAX_SECONDS, Flood, LISTENER_JUNK, TRANSFER_JUNK};
use super::link::Link;
use super::probes::{cpu_seconds, drops, scrape, softirq_seconds, wait_for_metrics};
use super::report::Row;
use super::{LISTEN_PORT, METRICS, SERVER, TRANSFER_PORT};
use crate::workspace_root;

/// How long the flood runs alone, for drops per CPU-second.
const FLOOD_ONLY: Duration = Duration::from_secs(5);

pub(super) fn measure(
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
