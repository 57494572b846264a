//! CPU affinity (`[performance.cpu] affinity`): every thread of the daemon is pinned to the
//! listed CPUs once, before the async runtime starts; threads made later inherit the mask
//! from the thread that creates them (sched_setaffinity(2)). Linux only: elsewhere the key is
//! refused when the configuration is checked.

/// The CPUs that exist and are online (`/sys/devices/system/cpu/online`), ascending; where
/// that file is missing, the CPUs this thread may run on. Not the current affinity mask
/// alone: after the daemon has pinned itself, a reload that names other CPUs must still
/// validate (and be reported as needing a restart). A CPU outside the process's cpuset fails
/// at start, when `sched_setaffinity` refuses it.
#[cfg(linux)]
pub fn usable_cpus() -> Result<Vec<usize>, String> {
    if let Ok(text) = std::fs::read_to_string("/sys/devices/system/cpu/online")
        && let Some(cpus) = parse_list(&text)
    {
        return Ok(cpus);
    }
    use nix::sched::{CpuSet, sched_getaffinity};
    use nix::unistd::Pid;
    let set = sched_getaffinity(Pid::from_raw(0))
        .map_err(|e| format!("none known: sched_getaffinity failed: {e}"))?;
    Ok((0..CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect())
}

/// Parses the kernel's CPU list form (`0-3,6`); `None` if it is not one.
pub fn parse_list(text: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(a.parse::<usize>().ok()?..=b.parse::<usize>().ok()?),
            None => cpus.push(part.parse().ok()?),
        }
    }
    Some(cpus)
}

/// The CPUs this process may run on: affinity is not implemented on this platform.
#[cfg(not(linux))]
pub fn usable_cpus() -> Result<Vec<usize>, String> {
    Err("[] (CPU affinity is implemented on Linux only)".into())
}

/// A CPU list in the kernel's `Cpus_allowed_list` form, e.g. `0-3,6`.
pub fn list(cpus: &[usize]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        while i + 1 < sorted.len() && sorted[i + 1] == sorted[i] + 1 {
            i += 1;
        }
        parts.push(if sorted[i] == start {
            start.to_string()
        } else {
            format!("{start}-{}", sorted[i])
        });
        i += 1;
    }
    parts.join(",")
}

/// Pinning the daemon's threads failed.
#[derive(Debug, thiserror::Error)]
pub enum AffinityError {
    /// The thread list could not be read.
    #[error("reading /proc/self/task")]
    Threads(#[source] std::io::Error),
    /// The kernel refused the mask for a thread.
    #[error("sched_setaffinity(CPUs {cpus}) on thread {tid}")]
    Set {
        /// The CPUs asked for.
        cpus: String,
        /// The thread.
        tid: i32,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// This platform has no implementation.
    #[error("performance.cpu.affinity is implemented on Linux only")]
    Unsupported,
}

/// Pins every thread the process has now to `cpus`, and returns how many were pinned.
#[cfg(linux)]
pub fn pin_process(cpus: &[usize]) -> Result<usize, AffinityError> {
    use nix::sched::{CpuSet, sched_setaffinity};
    use nix::unistd::Pid;
    let shown = list(cpus);
    let mut set = CpuSet::new();
    for &c in cpus {
        set.set(c).map_err(|e| AffinityError::Set {
            cpus: shown.clone(),
            tid: 0,
            source: e.into(),
        })?;
    }
    let mut pinned = 0;
    for entry in std::fs::read_dir("/proc/self/task").map_err(AffinityError::Threads)? {
        let entry = entry.map_err(AffinityError::Threads)?;
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        match sched_setaffinity(Pid::from_raw(tid), &set) {
            Ok(()) => pinned += 1,
            // The thread ended between listing and pinning: nothing to pin.
            Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => {
                return Err(AffinityError::Set {
                    cpus: shown,
                    tid,
                    source: e.into(),
                });
            }
        }
    }
    Ok(pinned)
}

/// Pins the calling thread to one CPU (threads it makes later inherit that).
#[cfg(linux)]
pub fn pin_this_thread(cpu: usize) -> Result<(), AffinityError> {
    use nix::sched::{CpuSet, sched_setaffinity};
    use nix::unistd::Pid;
    let set_error = |source: std::io::Error| AffinityError::Set {
        cpus: cpu.to_string(),
        tid: nix::unistd::gettid().as_raw(),
        source,
    };
    let mut set = CpuSet::new();
    set.set(cpu).map_err(|e| set_error(e.into()))?;
    sched_setaffinity(Pid::from_raw(0), &set).map_err(|e| set_error(e.into()))
}

/// Pins the calling thread: not implemented here (the configuration check refuses
/// `affinity` first).
#[cfg(not(linux))]
pub fn pin_this_thread(_cpu: usize) -> Result<(), AffinityError> {
    Err(AffinityError::Unsupported)
}

/// Pins the process: not implemented here (the configuration check refuses the key first).
#[cfg(not(linux))]
pub fn pin_process(_cpus: &[usize]) -> Result<usize, AffinityError> {
    Err(AffinityError::Unsupported)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_read_like_the_kernels() {
        assert_eq!(list(&[0, 1, 2, 3, 6]), "0-3,6");
        assert_eq!(list(&[1]), "1");
        assert_eq!(list(&[3, 1, 2, 2]), "1-3");
        assert_eq!(list(&[]), "");
        for text in ["0-3,6", "1", "0-1"] {
            let cpus = parse_list(text).expect("a list");
            assert_eq!(list(&cpus), text, "round trip");
        }
        assert_eq!(parse_list("0-x"), None);
    }

    #[cfg(linux)]
    #[test]
    fn this_process_may_run_on_at_least_one_cpu() {
        let cpus = usable_cpus().expect("sched_getaffinity");
        assert!(!cpus.is_empty(), "an empty affinity mask cannot run");
    }
}
