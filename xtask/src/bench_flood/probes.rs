//! What is read from outside the daemon: its metrics page (filter drops), its CPU time and
//! the machine's softirq time.

use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::METRICS;

/// USER_HZ on Linux: the unit of /proc/PID/stat and /proc/stat times.
const USER_HZ: f64 = 100.0;

/// The filter drops of `paths` on a metrics page.
pub(super) fn drops(metrics: &str, paths: &[&str]) -> u64 {
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

pub(super) fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
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
pub(super) fn softirq_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let ticks: u64 = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .and_then(|l| l.split_whitespace().nth(7))
        .context("parsing /proc/stat")?
        .parse()?;
    Ok(ticks as f64 / USER_HZ)
}

pub(super) fn scrape() -> anyhow::Result<String> {
    let mut s = std::net::TcpStream::connect(METRICS)?;
    s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(body)
}

pub(super) fn wait_for_metrics() -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(METRICS).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("tftpd did not start (metrics endpoint {METRICS} never answered)")
}
