//! Configuration reload (SIGHUP): read and validate the new configuration first, then swap
//! it in. Running transfers keep the snapshot they started with; a bad file leaves the old
//! configuration in force. Keys that need sockets re-bound are reported, not applied.

use std::sync::Arc;

use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::cli::Cli;
use crate::config::Config;
use crate::logging::LevelHandle;

use super::request::error_chain;
use super::runtime::Runtime;

/// Re-reads the configuration the daemon started with (same file, same flags) and applies it.
pub fn reload(cli: &Cli, tx: &watch::Sender<Arc<Runtime>>, level: Option<&LevelHandle>) {
    let new = match Config::load(cli) {
        Ok(c) => c,
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
    warn_restart_only(&old.config, &runtime.config);
    if let Some(level) = level
        && old.config.log.level != runtime.config.log.level
        && let Err(e) = level.set(&runtime.config.log.level)
    {
        warn!(error = %e, "log.level could not be applied");
    }
    tx.send_replace(Arc::new(runtime));
    info!("config reloaded");
}

fn warn_restart_only(old: &Config, new: &Config) {
    let changed = [
        ("listen", old.listen != new.listen),
        ("user", old.user != new.user),
        ("group", old.group != new.group),
        ("port_range", old.port_range != new.port_range),
        ("metrics.listen", old.metrics.listen != new.metrics.listen),
        ("log.format", old.log.format != new.log.format),
        ("ebpf", old.ebpf != new.ebpf),
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
