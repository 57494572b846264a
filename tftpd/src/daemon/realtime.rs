//! `[performance.realtime]` (Linux): `SCHED_FIFO` for every thread and `mlockall`, applied
//! once at start, before the privilege drop (both need root's capabilities) and before the
//! async runtime starts (its threads inherit the policy from the thread that creates them,
//! sched(7)). Each is optional: a kernel or a sandbox that refuses it leaves a warning saying
//! why, and the daemon serves on with the normal scheduler or pageable memory.
//!
//! The kernel's real-time throttling (`kernel.sched_rt_runtime_us`, 0.95 s of each second by
//! default) keeps a share of every CPU for other tasks even if a `SCHED_FIFO` thread runs
//! away.

use nix::sys::mman::{MlockAllFlags, mlockall};
use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit, setrlimit};
use tracing::{info, warn};

use crate::config::RealtimeConfig;

/// Applies `cfg` to the process; logs what took effect and what did not. `stays_root`: the
/// daemon keeps root's capabilities after start-up (`user = "root"`).
pub fn apply(cfg: &RealtimeConfig, stays_root: bool) {
    if cfg.lock_memory {
        match lock_memory(stays_root) {
            Ok(()) => info!(
                fastpath = "realtime",
                "memory locked (mlockall MCL_CURRENT|MCL_FUTURE|MCL_ONFAULT): pages are never swapped out"
            ),
            Err(why) => warn!(
                fastpath = "realtime",
                reason = %why,
                "performance.realtime.lock_memory is on but memory is not locked: pages may be swapped out"
            ),
        }
    }
    if cfg.priority > 0 {
        match fifo_every_thread(cfg.priority) {
            Ok(threads) => warn!(
                fastpath = "realtime",
                priority = cfg.priority,
                threads,
                "SCHED_FIFO: tftpd's threads run before every normal task on their CPUs \
                 (the kernel's RT throttling still leaves others a share)"
            ),
            Err(why) => warn!(
                fastpath = "realtime",
                priority = cfg.priority,
                reason = %why,
                "performance.realtime.priority is set but SCHED_FIFO was refused: the normal scheduler runs tftpd"
            ),
        }
    }
}

/// Locks memory, present and future, as pages are first touched (MCL_ONFAULT: a thread's
/// unused stack or an unused receive slot is not made resident just to be locked).
///
/// Every later allocation is locked too, so it must never meet the memory-lock limit: an
/// allocation the kernel refuses would abort the daemon. So memory is locked only when the
/// limit is infinite (raised here while root may: it outlasts the privilege drop), or when
/// the daemon keeps `CAP_IPC_LOCK`, which the limit does not bind.
fn lock_memory(stays_root: bool) -> Result<(), String> {
    if let Err(e) = setrlimit(Resource::RLIMIT_MEMLOCK, RLIM_INFINITY, RLIM_INFINITY) {
        let (soft, _) = getrlimit(Resource::RLIMIT_MEMLOCK)
            .map_err(|e| format!("reading RLIMIT_MEMLOCK: {e}"))?;
        let unbound = stays_root && has_ipc_lock();
        if soft != RLIM_INFINITY && !unbound {
            return Err(format!(
                "RLIMIT_MEMLOCK is {soft} bytes and raising it failed ({e}), and the daemon \
                 will not keep CAP_IPC_LOCK: a later allocation over the limit would be refused \
                 (systemd: LimitMEMLOCK=infinity)"
            ));
        }
    }
    let flags = MlockAllFlags::MCL_CURRENT
        | MlockAllFlags::MCL_FUTURE
        | MlockAllFlags::from_bits_retain(nix::libc::MCL_ONFAULT);
    mlockall(flags).map_err(|e| format!("mlockall: {e}"))
}

/// Whether this process holds `CAP_IPC_LOCK` (bit 14 of `CapEff` in /proc/self/status).
fn has_ipc_lock() -> bool {
    const CAP_IPC_LOCK: u32 = 14;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << CAP_IPC_LOCK) != 0)
}

/// Puts every thread of the process under `SCHED_FIFO` at `priority`; returns how many.
fn fifo_every_thread(priority: u8) -> Result<usize, String> {
    let tasks = std::fs::read_dir("/proc/self/task")
        .map_err(|e| format!("reading /proc/self/task: {e}"))?;
    let mut n = 0;
    for task in tasks {
        let task = task.map_err(|e| format!("reading /proc/self/task: {e}"))?;
        let Some(tid) = task
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<i32>().ok())
        else {
            continue;
        };
        set_fifo(tid, priority).map_err(|e| format!("sched_setscheduler(thread {tid}): {e}"))?;
        n += 1;
    }
    Ok(n)
}

fn set_fifo(tid: i32, priority: u8) -> std::io::Result<()> {
    let param = nix::libc::sched_param {
        sched_priority: i32::from(priority),
    };
    #[expect(unsafe_code, reason = "nix has no sched_setscheduler; see SAFETY")]
    // SAFETY: `param` is a valid, initialised sched_param that outlives the call, which only
    // reads it; `tid` is a thread id (a bad one is an error return, not undefined behaviour).
    let r = unsafe { nix::libc::sched_setscheduler(tid, nix::libc::SCHED_FIFO, &param) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
