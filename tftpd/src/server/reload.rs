//! Configuration reload (SIGHUP): read and validate the new configuration first, then swap
//! it in. Running transfers keep the snapshot they started with; a bad file leaves the old
//! configuration in force. Keys that need sockets re-bound are reported, not applied.
//!
//! Listener fast paths: `performance.batching.recv_batch` (which chooses `recvmmsg`) applies
//! at each listener's next receive; `performance.socket.reuseport_workers` and
//! `performance.cpu.affinity` need a restart (sockets are bound and threads pinned at start).

use std::sync::Arc;

use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::cli::Cli;
use crate::config::Config;
use crate::filter::xdp::XdpFilter;
use crate::logging::LevelHandle;

use super::runtime::Runtime;
use crate::fs::WriteMode;
use crate::logging::error_chain;

/// Re-reads the configuration the daemon started with (same file, same flags) and applies it.
pub fn reload(
    cli: &Cli,
    tx: &watch::Sender<Arc<Runtime>>,
    level: Option<&LevelHandle>,
    xdp: Option<&XdpFilter>,
) {
    let new = match crate::cli::load_with_notes(cli) {
        Ok((c, mut notes)) => {
            // The flags not needed were said at start; a changed map file may differ anew.
            notes.retain(|n| n.differs);
            crate::cli::merge::log_notes(&notes);
            c
        }
        Err(e) => {
            error!(error = %error_chain(&e), "config reload failed; keeping the old config");
            return;
        }
    };
    let runtime = match Runtime::new(new) {
        Ok(r) => r,
        Err(e) => {
            error!(error = %error_chain(&e), "config reload failed; keeping the old config");
            return;
        }
    };
    let old = tx.borrow().clone();
    warn_restart_only(&old.config, &runtime.config, xdp.is_some());
    if let Some(x) = xdp {
        for e in x.reconfigure(&runtime.config) {
            warn!(path = "xdp", error = %error_chain(&e), "XDP change on reload failed");
        }
    }
    if let Some(level) = level
        && old.config.log.level != runtime.config.log.level
        && let Err(e) = level.set(&runtime.config.log.level)
    {
        warn!(error = %e, "log.level could not be applied");
    }
    for w in runtime.config.warnings() {
        warn!("{w}");
    }
    // Uploads turned on by this reload: what an earlier run with uploads on left behind is
    // swept now, as a start with uploads on would (the sweep only removes tftpd's own
    // `.X.tftpd-*` temp files). Before the swap, so no new upload of this config exists yet.
    if old.config.write == WriteMode::Off && runtime.config.write != WriteMode::Off {
        crate::fs::upload::sweep(runtime.roots());
    }
    tx.send_replace(Arc::new(runtime));
    info!("config reloaded");
}

fn warn_restart_only(old: &Config, new: &Config, xdp_loaded: bool) {
    let (o, n) = (&old.ebpf, &new.ebpf);
    let changed = [
        ("ebpf.mode", o.mode != n.mode),
        ("ebpf.pin_dir", o.pin_dir != n.pin_dir),
        // Without a loaded XDP program (none configured at start, or it failed), XDP keys
        // need a restart; with one, a reload applies them.
        (
            "ebpf.xdp_*",
            !xdp_loaded
                && (o.xdp_interfaces != n.xdp_interfaces
                    || o.xdp_mode != n.xdp_mode
                    || o.xdp_rate_limit != n.xdp_rate_limit
                    || o.xdp_rate_burst != n.xdp_rate_burst
                    || o.xdp_deny != n.xdp_deny),
        ),
        ("ebpf.xdp_mode", xdp_loaded && o.xdp_mode != n.xdp_mode),
        ("listen", old.listen != new.listen),
        ("user", old.user != new.user),
        ("group", old.group != new.group),
        ("port_range", old.port_range != new.port_range),
        ("pidfile", old.pidfile != new.pidfile),
        ("single_port", old.single_port != new.single_port),
        ("metrics.listen", old.metrics.listen != new.metrics.listen),
        // The endpoint's task is started once, with its limits.
        (
            "metrics.max_connections",
            old.metrics.max_connections != new.metrics.max_connections,
        ),
        (
            "metrics.timeout_ms",
            old.metrics.timeout_ms != new.metrics.timeout_ms,
        ),
        ("log.format", old.log.format != new.log.format),
        ("log.target", old.log.target != new.log.target),
        (
            "log.syslog_socket",
            old.log.syslog_socket != new.log.syslog_socket,
        ),
        // The sockets are bound and the threads pinned once, at start. (recv_batch, which
        // chooses recvmmsg, needs no restart: each listener reads it before every receive.)
        (
            "performance.socket.reuseport_workers",
            old.performance.socket.reuseport_workers != new.performance.socket.reuseport_workers,
        ),
        (
            "performance.cpu.affinity",
            old.performance.cpu.affinity != new.performance.cpu.affinity,
        ),
        (
            "performance.cpu.intake_threads",
            old.performance.cpu.intake_threads != new.performance.cpu.intake_threads,
        ),
        // Applied once, while still privileged.
        (
            "performance.realtime",
            old.performance.realtime != new.performance.realtime,
        ),
    ];
    for (key, differs) in changed {
        if differs {
            warn!(
                key,
                "changed in the config but only takes effect after a restart"
            );
        }
    }
}
