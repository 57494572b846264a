//! `[log]`: the log format, level and where the lines go.

use std::path::PathBuf;

use serde::Deserialize;

use super::{LogFormat, LogTarget};

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// text or json.
    #[serde(default)]
    pub format: LogFormat,
    /// A tracing filter directive: error, warn, info, debug, trace, or per target.
    #[serde(default = "default_level")]
    pub level: String,
    /// auto, stderr, journald or syslog.
    #[serde(default)]
    pub target: LogTarget,
    /// The local syslog socket for `target = "syslog"`.
    #[serde(default = "default_syslog_socket")]
    pub syslog_socket: PathBuf,
}

fn default_level() -> String {
    "info".to_string()
}
/// Where the host's syslog daemon listens: /dev/log on Linux (rsyslog, syslog-ng, busybox,
/// or journald's forwarder), /var/run/log on FreeBSD, /var/run/syslog on macOS.
fn default_syslog_socket() -> PathBuf {
    PathBuf::from(if cfg!(target_os = "freebsd") {
        "/var/run/log"
    } else if cfg!(target_os = "macos") {
        "/var/run/syslog"
    } else {
        "/dev/log"
    })
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::default(),
            level: default_level(),
            target: LogTarget::default(),
            syslog_socket: default_syslog_socket(),
        }
    }
}
