//! Signals: SIGTERM and SIGINT start the drain, SIGHUP reloads the configuration.

use std::sync::Arc;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::cli::Cli;
use crate::daemon::systemd::Notifier;
use crate::logging::LevelHandle;
use crate::server::reload::reload;
use crate::server::runtime::Runtime;

/// Installs the handlers now, before the caller announces readiness: whoever waits for the
/// ready line (systemd after READY=1, a script) may signal at once, and a signal that arrives
/// before registration gets the default action, which kills the process. The returned future
/// runs until the process ends; a second SIGTERM/SIGINT during the drain is logged and
/// otherwise ignored (the drain deadline bounds the wait).
pub fn install(
    cli: Cli,
    tx: watch::Sender<Arc<Runtime>>,
    level: Option<LevelHandle>,
    notifier: Option<Arc<Notifier>>,
    shutdown: CancellationToken,
) -> std::io::Result<impl Future<Output = ()>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    Ok(async move {
        loop {
            tokio::select! {
                _ = term.recv() => stop(&shutdown, "SIGTERM"),
                _ = int.recv() => stop(&shutdown, "SIGINT"),
                _ = hup.recv() => {
                    info!(signal = "SIGHUP", "reloading the configuration");
                    if let Some(n) = &notifier {
                        n.reloading();
                    }
                    reload(&cli, &tx, level.as_ref());
                    if let Some(n) = &notifier {
                        n.notify("READY=1");
                    }
                }
            }
        }
    })
}

fn stop(shutdown: &CancellationToken, name: &str) {
    if shutdown.is_cancelled() {
        info!(signal = name, "already draining");
    } else {
        info!(signal = name, "shutdown requested");
        shutdown.cancel();
    }
}
