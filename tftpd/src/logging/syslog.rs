//! Lines for the host's syslog daemon: the text formatter's line (no time stamp: the
//! daemon adds its own; no level: the priority carries it), sent as one RFC 3164 datagram
//! `<PRI>tftpd[PID]: line` to `log.syslog_socket`, facility daemon. rsyslog, syslog-ng,
//! busybox syslogd and journald's `/dev/log` all read this form. The line passes
//! [`super::line_guard`] like every text line, and has no newline.

use std::io;
use std::sync::Arc;

use tracing::Metadata;
use tracing_subscriber::fmt::MakeWriter;

use super::journald::{MAX_VALUE, clean, priority};
use super::sink::DatagramSink;

/// Facility `daemon` (RFC 5424 §6.2.1: 3), times 8.
const DAEMON: u8 = 3 << 3;

/// Makes one writer per event, which sends its line when dropped.
#[derive(Clone)]
pub(crate) struct SyslogWriters {
    sink: Arc<DatagramSink>,
    pid: u32,
}

impl SyslogWriters {
    pub(crate) fn new(sink: Arc<DatagramSink>) -> Self {
        Self {
            sink,
            pid: std::process::id(),
        }
    }
}

/// One event's line on its way.
pub(crate) struct SyslogLine {
    writers: SyslogWriters,
    severity: u8,
    buf: Vec<u8>,
}

impl io::Write for SyslogLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for SyslogLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buf);
        let line = text.trim_end_matches('\n');
        if line.is_empty() {
            return;
        }
        // Cut like a journal value: traditional daemons take 1 KiB, rsyslog 8 KiB.
        let line = clean(line);
        debug_assert!(line.len() <= MAX_VALUE + 3);
        let record = format!(
            "<{}>tftpd[{}]: {line}",
            DAEMON + self.severity,
            self.writers.pid
        );
        self.writers.sink.send(record.as_bytes());
    }
}

impl<'a> MakeWriter<'a> for SyslogWriters {
    type Writer = SyslogLine;

    fn make_writer(&'a self) -> SyslogLine {
        SyslogLine {
            writers: self.clone(),
            severity: priority(&tracing::Level::INFO),
            buf: Vec::new(),
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> SyslogLine {
        SyslogLine {
            writers: self.clone(),
            severity: priority(meta.level()),
            buf: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    #[test]
    fn each_event_is_one_datagram_with_its_priority_and_no_control_character() {
        let (syslogd, sink) = super::super::sink::TestDaemon::bind("syslog");
        let sink = Arc::new(sink);
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_writer(SyslogWriters::new(sink))
                .with_ansi(false)
                .without_time()
                .with_level(false),
        );
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(file = %"x\nINFO forged", "request refused");
            tracing::info!("tftpd ready");
        });
        let first = syslogd.recv();
        let pid = std::process::id();
        assert!(
            first.starts_with(&format!("<27>tftpd[{pid}]: ")),
            "daemon.err: {first}"
        );
        assert!(first.contains("request refused"), "{first}");
        assert!(first.contains("x\\x0aINFO forged"), "escaped: {first}");
        assert!(!first.contains('\n'), "one line: {first:?}");
        let second = syslogd.recv();
        assert!(
            second.starts_with(&format!("<30>tftpd[{pid}]: ")),
            "daemon.info: {second}"
        );
        assert!(second.ends_with("tftpd ready"), "{second:?}");
    }
}
