//! Records in the journal's native protocol (systemd's "Native Journal Protocol"): one
//! datagram of `NAME=value` lines per event to `/run/systemd/journal/socket`, so the
//! journal keeps the priority and every field, and `journalctl PEER=192.0.2.7` or
//! `journalctl -o json` work without parsing text.
//!
//! Fields: `MESSAGE` (the event's message and its fields as `name=value`, readable in plain
//! `journalctl`), `PRIORITY` (syslog's levels), `SYSLOG_IDENTIFIER=tftpd`, `TFTPD_TARGET` (the
//! tracing target, `tftpd::audit` for audit events), `CODE_FILE`/`CODE_LINE`, and each event
//! and span field under its name in upper case (`PEER`, `FILE`, `OUTCOME`...; a name the
//! journal reserves gets a `TFTPD_` prefix). Client text in any value passes
//! [`super::line_guard`] first, so a journal viewer never shows a control character a client
//! sent; no value has a newline left, so the simple `NAME=value` form is always right, and a
//! value is cut at [`MAX_VALUE`] bytes so a record always fits one datagram.

use std::fmt::Write as _;
use std::sync::Arc;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::line_guard::escape_controls;
use super::sink::DatagramSink;

/// The journal's socket.
pub(crate) const SOCKET: &str = "/run/systemd/journal/socket";

/// Longest value sent, in bytes; longer ones are cut (at a character boundary) and end in
/// `…`.
pub(crate) const MAX_VALUE: usize = 4096;

/// Field names the journal or its tools give a meaning of their own.
const RESERVED: [&str; 9] = [
    "MESSAGE",
    "MESSAGE_ID",
    "PRIORITY",
    "CODE_FILE",
    "CODE_LINE",
    "CODE_FUNC",
    "ERRNO",
    "SYSLOG_IDENTIFIER",
    "SYSLOG_FACILITY",
];

/// A span's or an event's fields, as recorded.
#[derive(Debug, Default, Clone)]
struct Fields {
    message: String,
    pairs: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.pairs.push((field.name(), value.to_string()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            self.pairs.push((field.name(), format!("{value:?}")));
        }
    }
}

/// The layer that sends each event to the journal.
pub(crate) struct JournaldLayer {
    sink: Arc<DatagramSink>,
}

impl JournaldLayer {
    pub(crate) fn new(sink: Arc<DatagramSink>) -> Self {
        Self { sink }
    }
}

impl<S> Layer<S> for JournaldLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, S>,
    ) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<Fields>()
        {
            values.record(fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut spans = Vec::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(f) = span.extensions().get::<Fields>() {
                    spans.extend(f.pairs.iter().cloned());
                }
            }
        }
        self.sink.send(&encode(event.metadata(), &fields, &spans));
    }
}

/// syslog's priority for a tracing level (RFC 5424 severities; trace is debug).
pub(crate) fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// `value` with its control characters escaped and cut to [`MAX_VALUE`] bytes.
pub(crate) fn clean(value: &str) -> String {
    // As a line of its own, so a newline at the end is escaped too (escape_controls keeps a
    // line's final newline).
    let line = format!("{value}\n");
    let escaped = escape_controls(line.as_bytes());
    let text = String::from_utf8_lossy(escaped.strip_suffix(b"\n").unwrap_or(&escaped));
    if text.len() <= MAX_VALUE {
        return text.into_owned();
    }
    let mut end = MAX_VALUE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// A tracing field name as a journal field name: upper case, `[A-Z0-9_]`, not starting with
/// a digit or `_`, and not one the journal reserves.
fn field_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty()
        || out.starts_with(|c: char| c.is_ascii_digit() || c == '_')
        || RESERVED.contains(&out.as_str())
        || out.starts_with("SYSLOG_")
    {
        out.insert_str(0, "TFTPD_");
    }
    out
}

fn encode(
    meta: &tracing::Metadata<'_>,
    event: &Fields,
    spans: &[(&'static str, String)],
) -> Vec<u8> {
    let mut message = event.message.clone();
    for (name, value) in event.pairs.iter().chain(spans) {
        let _ = write!(message, " {name}={value}");
    }
    let mut out = String::with_capacity(256);
    let mut field = |name: &str, value: &str| {
        let _ = writeln!(out, "{name}={}", clean(value));
    };
    field("MESSAGE", message.trim_start());
    field("PRIORITY", &priority(meta.level()).to_string());
    field("SYSLOG_IDENTIFIER", "tftpd");
    field("TFTPD_TARGET", meta.target());
    if let Some(file) = meta.file() {
        field("CODE_FILE", file);
    }
    if let Some(line) = meta.line() {
        field("CODE_LINE", &line.to_string());
    }
    for (name, value) in spans.iter().chain(&event.pairs) {
        field(&field_name(name), value);
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    fn fields(datagram: &[u8]) -> Vec<(String, String)> {
        String::from_utf8(datagram.to_vec())
            .expect("UTF-8")
            .lines()
            .map(|l| {
                let (k, v) = l.split_once('=').expect("NAME=value");
                (k.to_string(), v.to_string())
            })
            .collect()
    }

    #[test]
    fn an_event_in_a_span_arrives_with_its_fields_escaped_and_its_priority() {
        let (journal, sink) = super::super::sink::TestDaemon::bind("journal");
        let subscriber = tracing_subscriber::registry().with(JournaldLayer::new(Arc::new(sink)));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "transfer",
                peer = "192.0.2.7:1234",
                file = "a\r\nWARN forged"
            );
            let _entered = span.enter();
            tracing::warn!(outcome = "timed_out", bytes = 512_u64, "transfer finished");
        });
        let record = journal.recv();
        let f = fields(record.as_bytes());
        let get = |k: &str| {
            f.iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("no {k} in {f:?}"))
        };
        assert_eq!(get("PRIORITY"), "4", "warn");
        assert_eq!(get("SYSLOG_IDENTIFIER"), "tftpd");
        assert_eq!(get("PEER"), "192.0.2.7:1234", "the span's field");
        assert_eq!(get("FILE"), "a\\x0d\\x0aWARN forged", "client text escaped");
        assert_eq!(get("OUTCOME"), "timed_out");
        assert_eq!(get("BYTES"), "512");
        assert!(get("TFTPD_TARGET").starts_with("tftpd"), "{f:?}");
        let message = get("MESSAGE");
        assert!(
            message
                .starts_with("transfer finished outcome=timed_out bytes=512 peer=192.0.2.7:1234"),
            "{message}"
        );
        assert!(!record.contains('\r'), "no raw control character");
    }

    #[test]
    fn names_and_values_fit_the_journal() {
        assert_eq!(field_name("peer"), "PEER");
        assert_eq!(field_name("peer.addr"), "PEER_ADDR");
        assert_eq!(field_name("message_id"), "TFTPD_MESSAGE_ID");
        assert_eq!(field_name("priority"), "TFTPD_PRIORITY");
        assert_eq!(
            field_name("_pid"),
            "TFTPD__PID",
            "a trusted field cannot be forged"
        );
        assert_eq!(field_name("9lives"), "TFTPD_9LIVES");
        assert_eq!(field_name("syslog_pid"), "TFTPD_SYSLOG_PID");
        let long = "é".repeat(MAX_VALUE);
        let cut = clean(&long);
        assert!(
            cut.len() <= MAX_VALUE + "…".len() && cut.ends_with('…'),
            "{}",
            cut.len()
        );
        assert_eq!(clean("a\u{85}b"), "a\\u{0085}b");
        assert_eq!(
            clean("name\n"),
            "name\\x0a",
            "a final newline is escaped too"
        );
    }
}
