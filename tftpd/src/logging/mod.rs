//! The tracing subscriber, with a level filter that SIGHUP can change, writing where
//! `log.target` says ([`target`]): text or JSON on stderr, through [`queue`] (a writer thread
//! once [`start_writer`] has run); records with native fields to the journal ([`journald`]);
//! or lines to the syslog socket ([`syslog`]). Every text path passes [`line_guard`], so
//! client text cannot forge a line or a field.

mod error_chain;
mod journald;
mod line_guard;
mod queue;
mod sink;
mod syslog;
pub mod target;

use std::sync::{Arc, OnceLock};

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Registry, fmt, reload};

use crate::config::{LogConfig, LogFormat, LogTarget};
pub use error_chain::error_chain;
pub use queue::WriterGuard;
use queue::{LineQueue, QueuedLine};

/// The process's log output (the subscriber is process-wide too).
static OUTPUT: OnceLock<Arc<LineQueue>> = OnceLock::new();

fn output() -> &'static Arc<LineQueue> {
    OUTPUT.get_or_init(|| LineQueue::new(Box::new(std::io::stderr()), queue::CAPACITY))
}

fn queued_line() -> QueuedLine<'static> {
    QueuedLine(output())
}

fn queued_text_line() -> TextLine<'static> {
    TextLine(queued_line())
}

/// A text line on its way to the queue, its client text made harmless ([`line_guard`]).
struct TextLine<'a>(QueuedLine<'a>);

impl std::io::Write for TextLine<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(&line_guard::escape_controls(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Starts the thread that writes log lines, so no thread that logs ever waits on stderr and
/// a burst of lines costs one `write(2)` (docs/adr/0029). Call it after privileges are dropped (the thread inherits the
/// identity it is started with); until then lines are written by whoever logs. Dropping the
/// guard writes out what is queued (waiting a bounded time) and ends the thread. A panic
/// writes the queued lines before its message.
pub fn start_writer() -> std::io::Result<WriterGuard> {
    let guard = output().start()?;
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        output().flush_now();
        previous(info);
    }));
    Ok(guard)
}

/// Log lines dropped because stderr was not read fast enough (the queue was full).
pub fn dropped_lines() -> u64 {
    OUTPUT.get().map_or(0, |q| q.dropped_total())
        + sink::DROPPED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Changes the level filter of the installed subscriber (on reload).
#[derive(Clone)]
pub struct LevelHandle(reload::Handle<EnvFilter, Registry>);

impl std::fmt::Debug for LevelHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LevelHandle")
    }
}

impl LevelHandle {
    /// Applies a new filter directive (already validated by the config).
    pub fn set(&self, directive: &str) -> Result<(), String> {
        let filter = EnvFilter::try_new(directive).map_err(|e| e.to_string())?;
        self.0.reload(filter).map_err(|e| e.to_string())
    }
}

/// Installs the global subscriber for `log`. `RUST_LOG`, when set, wins over the configured
/// level so an operator can turn on tracing for one run without editing the config. An
/// explicit `log.target` whose socket cannot be reached is an error naming the key; `auto`
/// falls back to stderr and says why.
pub fn init(log: &LogConfig) -> Result<LevelHandle, String> {
    let directive = std::env::var("RUST_LOG").unwrap_or_else(|_| log.level.clone());
    let filter =
        EnvFilter::try_new(&directive).map_err(|e| format!("log level {directive:?}: {e}"))?;
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    let journal_stream = std::env::var("JOURNAL_STREAM").ok();
    let output = target::resolve(
        log.target,
        journal_stream.as_deref(),
        target::stderr_identity(),
    );
    let mut notice = None;
    let result = match output {
        target::Output::Journald => {
            match sink::DatagramSink::connect(std::path::Path::new(journald::SOCKET)) {
                Ok(sink) => {
                    if log.format == LogFormat::Json {
                        notice = Some(
                            "log.format = \"json\" applies to stderr and syslog: the journal \
                             keeps each field natively (journalctl -o json)"
                                .to_string(),
                        );
                    }
                    registry
                        .with(journald::JournaldLayer::new(Arc::new(sink)))
                        .try_init()
                }
                Err(e) if log.target == LogTarget::Journald => {
                    return Err(format!(
                        "log.target = \"journald\": connecting to {}: {e} (is \
                         systemd-journald running? allowed: auto, stderr, journald, syslog)",
                        journald::SOCKET
                    ));
                }
                Err(e) => {
                    notice = Some(format!(
                        "JOURNAL_STREAM says stderr is the journal, but {} cannot be reached \
                         ({e}): logging text to stderr (log.target = \"auto\")",
                        journald::SOCKET
                    ));
                    stderr_subscriber(registry, log.format)
                }
            }
        }
        target::Output::Syslog => {
            let sink = sink::DatagramSink::connect(&log.syslog_socket).map_err(|e| {
                format!(
                    "log.target = \"syslog\": connecting to {} (log.syslog_socket): {e}",
                    log.syslog_socket.display()
                )
            })?;
            let writers = syslog::SyslogWriters::new(Arc::new(sink));
            match log.format {
                LogFormat::Text => registry
                    .with(
                        fmt::layer()
                            .with_writer(writers)
                            .with_ansi(false)
                            .without_time()
                            .with_level(false),
                    )
                    .try_init(),
                LogFormat::Json => registry
                    .with(
                        fmt::layer()
                            .json()
                            .with_current_span(true)
                            .without_time()
                            .with_writer(writers),
                    )
                    .try_init(),
            }
        }
        target::Output::Stderr => stderr_subscriber(registry, log.format),
    };
    result.map_err(|e| e.to_string())?;
    if let Some(n) = notice {
        tracing::warn!("{n}");
    }
    Ok(LevelHandle(handle))
}

type Filtered = tracing_subscriber::layer::Layered<reload::Layer<EnvFilter, Registry>, Registry>;

/// Text or JSON lines on stderr, through the queue.
fn stderr_subscriber(
    registry: Filtered,
    format: LogFormat,
) -> Result<(), tracing_subscriber::util::TryInitError> {
    match format {
        LogFormat::Text => registry
            .with(fmt::layer().with_writer(queued_text_line).with_ansi(false))
            .try_init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_writer(queued_line),
            )
            .try_init(),
    }
}
