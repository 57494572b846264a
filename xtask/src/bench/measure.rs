//! What the bench reads from the kernel around each run: a cgroup v2's CPU time (the server
//! and everything it forked), the syscalls made inside that cgroup (`perf stat` counting the
//! `raw_syscalls:sys_enter` tracepoint, which costs nothing like `strace` does), and the
//! drops of the sockets listening on port 69 (`/proc/net/udp`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// The directory all bench cgroups live under, below the cgroup v2 mount.
const PARENT: &str = "tftpd-bench";

/// One server's cgroup v2.
pub(super) struct Cgroup {
    dir: PathBuf,
    /// The path below the cgroup v2 mount, as `perf stat -G` wants it.
    relative: String,
}

impl Cgroup {
    /// Creates (or empties and reuses) `tftpd-bench/<name>` under the cgroup v2 mount.
    pub(super) fn create(name: &str) -> anyhow::Result<Self> {
        let mount = cgroup2_mount()?;
        let relative = format!("{PARENT}/{name}");
        let dir = mount.join(&relative);
        if dir.exists() {
            let stale = Self {
                dir: dir.clone(),
                relative: relative.clone(),
            };
            stale.kill_all();
        }
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the cgroup {}", dir.display()))?;
        Ok(Self { dir, relative })
    }

    pub(super) fn procs_file(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    pub(super) fn relative(&self) -> &str {
        &self.relative
    }

    /// CPU time of everything that ran in the cgroup so far (user + system), in seconds.
    pub(super) fn cpu_seconds(&self) -> anyhow::Result<f64> {
        let path = self.dir.join("cpu.stat");
        let stat = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let usec: u64 = stat
            .lines()
            .find_map(|l| l.strip_prefix("usage_usec "))
            .with_context(|| format!("no usage_usec in {}", path.display()))?
            .trim()
            .parse()?;
        Ok(usec as f64 / 1e6)
    }

    /// Kills every process in the cgroup and waits (bounded) until it is empty.
    pub(super) fn kill_all(&self) {
        let _ = std::fs::write(self.dir.join("cgroup.kill"), "1");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            match std::fs::read_to_string(self.procs_file()) {
                Ok(p) if !p.trim().is_empty() => std::thread::sleep(Duration::from_millis(20)),
                _ => break,
            }
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        self.kill_all();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Where cgroup v2 is mounted (`/sys/fs/cgroup` on a unified host, `/sys/fs/cgroup/unified`
/// on a hybrid one). `cpu.stat`'s `usage_usec` exists in every v2 cgroup, controller or not.
fn cgroup2_mount() -> anyhow::Result<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/mounts")?;
    mounts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[2] == "cgroup2")
        .map(|f| PathBuf::from(f[1]))
        .context("no cgroup v2 mount in /proc/mounts: the bench counts server CPU with one")
}

/// Context switches, voluntary and involuntary, of every child this process has reaped so
/// far, and of theirs (Linux sums a reaped child's threads and its own reaped children into
/// the parent's). Read around a server's stop, the difference is that server's switches
/// over its whole run, every thread counted, also those that exited before the end: the
/// wake-ups a block costs (docs/kernel-measurements.md §7). perf's cgroup counters cannot
/// give this everywhere (a VM may answer `<not supported>`).
pub(super) fn reaped_switches() -> anyhow::Result<u64> {
    use nix::sys::resource::{UsageWho, getrusage};
    let u = getrusage(UsageWho::RUSAGE_CHILDREN).context("getrusage(RUSAGE_CHILDREN)")?;
    let n = u.voluntary_context_switches() + u.involuntary_context_switches();
    Ok(u64::try_from(n).unwrap_or(0))
}

/// `perf stat` counting syscalls inside one cgroup, system-wide, until stopped.
pub(super) struct SyscallCounter {
    perf: Child,
    output: PathBuf,
}

impl SyscallCounter {
    /// Starts counting; returns once perf has had time to attach.
    pub(super) fn start(cgroup: &Cgroup, output: &Path) -> anyhow::Result<Self> {
        let _ = std::fs::remove_file(output);
        let perf = Command::new("perf")
            .args([
                "stat",
                "-x",
                ",",
                "-a",
                "-e",
                "raw_syscalls:sys_enter",
                "-G",
            ])
            .arg(cgroup.relative())
            .arg("-o")
            .arg(output)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting perf stat")?;
        // perf opens one counter per CPU before it counts; there is no ready signal short of
        // a control FIFO, and half a second is ample on this machine.
        std::thread::sleep(Duration::from_millis(500));
        Ok(Self {
            perf,
            output: output.to_path_buf(),
        })
    }

    /// Stops perf (SIGINT makes it print its totals) and returns the count; `None` when the
    /// kernel does not support cgroup counting here (a VM may not), so the table says n/a
    /// instead of a zero that was never measured.
    pub(super) fn stop(mut self) -> anyhow::Result<Option<u64>> {
        let pid = self.perf.id().to_string();
        crate::exec(Command::new("kill").args(["-INT", &pid]))?;
        let status = self.perf.wait()?;
        let text = std::fs::read_to_string(&self.output)
            .with_context(|| format!("perf stat wrote no {} ({status})", self.output.display()))?;
        parse_perf_count(&text)
            .with_context(|| format!("no raw_syscalls count in perf's output: {text}"))
    }
}

/// The count from `perf stat -x ,` output: `<not counted>` is zero syscalls (the event never
/// ran), `<not supported>` is no measurement.
fn parse_perf_count(text: &str) -> Option<Option<u64>> {
    let line = text
        .lines()
        .find(|l| l.contains("raw_syscalls:sys_enter"))?;
    let count = line.split(',').next()?.trim();
    match count {
        "<not counted>" => Some(Some(0)),
        "<not supported>" => Some(None),
        n => n.parse().ok().map(Some),
    }
}

/// Datagrams the kernel dropped at every UDP socket bound to `port` (receive buffer full, or
/// a socket filter's verdict), from the `drops` column of `/proc/net/udp` and `udp6`.
pub(super) fn listener_drops(port: u16) -> anyhow::Result<u64> {
    let mut total = 0;
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        total += drops_in(&text, port).with_context(|| format!("parsing {table}"))?;
    }
    Ok(total)
}

fn drops_in(table: &str, port: u16) -> anyhow::Result<u64> {
    let mut total = 0;
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(drops)) = (fields.get(1), fields.last()) else {
            bail!("short line {line:?}");
        };
        let local_port = local
            .rsplit_once(':')
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
        if local_port == Some(port) {
            total += drops
                .parse::<u64>()
                .with_context(|| format!("drops in {line:?}"))?;
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_counts_are_parsed() {
        let out = "# started on Wed\n\n955388,,raw_syscalls:sys_enter,tftpd-bench/tftpd,2002642386,100.00,,\n";
        assert_eq!(parse_perf_count(out), Some(Some(955_388)));
        let none = "<not counted>,,raw_syscalls:sys_enter,tftpd-bench/x,0,100.00,,\n";
        assert_eq!(parse_perf_count(none), Some(Some(0)));
        let unsupported = "<not supported>,,raw_syscalls:sys_enter,tftpd-bench/x,0,100.00,,\n";
        assert_eq!(parse_perf_count(unsupported), Some(None), "n/a, not zero");
        assert_eq!(parse_perf_count("nothing"), None);
    }

    #[test]
    fn drops_are_summed_for_the_port_only() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  1: 0100007F:0045 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000000000000000 17
  2: 0100007F:A3F1 0100007F:0045 01 00000000:00000000 00:00000000 00000000     0        0 1 2 0000000000000000 5
  3: 00000000:0045 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000000000000000 3
";
        assert_eq!(drops_in(table, 69).unwrap(), 20);
        assert_eq!(drops_in(table, 0xA3F1).unwrap(), 5);
    }
}
