//! The configuration file: one documented struct per section, unknown keys rejected, every
//! value validated with an error that names the key and the allowed values. This module knows
//! nothing of the command line: `cli::merge` reads the file through [`Config::read_file`] and
//! lays the flags over it. `docs/config-reference.md` documents every key and a test loads
//! every file in `docs/examples/`.

mod access;
mod checks;
mod io_choice;
mod limits;
mod metrics;
mod multicast;
mod performance;
mod prefix;
mod profile;
mod protocol;
#[cfg(test)]
mod reference_tests;
mod remap;
mod removed;
mod types;
mod xdp;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use self::access::{AccessConfig, ClientRoot};
pub use self::io_choice::{IoChoice, PORTABLE_TURNS_OFF};
pub use self::limits::LimitsConfig;
pub use self::metrics::MetricsConfig;
pub use self::multicast::{GroupAddresses, GroupPorts, MulticastConfig};
pub use self::performance::{
    BatchingConfig, CpuConfig, FileIoConfig, MAX_REUSEPORT_WORKERS, MemoryConfig,
    PerformanceConfig, RECV_BATCH, RealtimeConfig, SocketConfig,
};
pub use self::prefix::SourcePrefix;
pub use self::profile::Profile;
pub use self::protocol::ProtocolConfig;
pub use self::remap::{RemapAction, RemapOp, RemapRule};
pub use self::removed::{REMOVED, Removed};
pub use self::types::{
    BlockSize, EbpfMode, LogFormat, LogTarget, PortRange, RolloverPolicy, UniqueRoot,
};
pub use self::xdp::XdpMode;
pub use crate::fs::WriteMode;
pub use crate::proto::options::OptionName;

/// Where the configuration is read from when `--config` is not given (if it exists).
pub const DEFAULT_CONFIG_PATH: &str = "/etc/tftpd/tftpd.toml";

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema (names the key, line and column).
    #[error("{}{message}", path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    Parse {
        /// The file, if there is one.
        path: Option<PathBuf>,
        /// toml's message: the key, its position and what was expected.
        message: String,
    },
    /// A value is out of its allowed range.
    #[error("{key} = {value} is invalid (allowed: {allowed})")]
    Invalid {
        /// The dotted key.
        key: &'static str,
        /// The value given.
        value: String,
        /// The allowed values.
        allowed: &'static str,
    },
    /// A value this host cannot honour: a CPU it lacks, a feature its platform lacks.
    #[error("{key} = {value} is invalid on this host (allowed here: {allowed})")]
    Unavailable {
        /// The dotted key.
        key: &'static str,
        /// The value given.
        value: String,
        /// What this host allows.
        allowed: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The served directory. Relative paths are taken from the config file's directory.
    #[serde(default = "default_root")]
    pub root: PathBuf,
    /// Addresses to listen on. `[::]:69` is dual-stack: IPv4 clients arrive v4-mapped.
    #[serde(default = "default_listen")]
    pub listen: Vec<SocketAddr>,
    /// The user to run as after binding, when started as root.
    #[serde(default = "default_user")]
    pub user: String,
    /// The group to run as; default: the user's primary group.
    #[serde(default)]
    pub group: Option<String>,
    /// Transfer sockets bind in this range ("LO-HI"); default: an ephemeral port.
    #[serde(default)]
    pub port_range: Option<PortRange>,
    /// Answer every transfer from the listening port (dnsmasq `--tftp-single-port`), for NAT,
    /// firewalls and containers that pass only port 69.
    #[serde(default)]
    pub single_port: bool,
    /// Whether uploads are allowed: off, create or overwrite.
    #[serde(default)]
    pub write: WriteMode,
    /// Upload policy.
    #[serde(default)]
    pub uploads: UploadsConfig,
    /// Protocol limits and timing.
    #[serde(default)]
    pub protocol: ProtocolConfig,
    /// Concurrency and request limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// The Prometheus endpoint.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Graceful shutdown.
    #[serde(default)]
    pub shutdown: ShutdownConfig,
    /// The kernel packet filter.
    #[serde(default)]
    pub ebpf: EbpfConfig,
    /// Which clients are served.
    #[serde(default)]
    pub access: AccessConfig,
    /// Fast-path switches.
    #[serde(default)]
    pub performance: PerformanceConfig,
    /// RFC 2090 multicast downloads.
    #[serde(default)]
    pub multicast: MulticastConfig,
    /// Where to write the process id once serving; absent: nowhere.
    #[serde(default)]
    pub pidfile: Option<PathBuf>,
    /// Roots for chosen clients; the first entry whose prefixes hold the client wins, others
    /// get `root`.
    #[serde(default)]
    pub client_roots: Vec<ClientRoot>,
    /// A directory per client inside its root (dnsmasq's `--tftp-unique-root`): "off",
    /// "ip" or "mac"; a client whose directory does not exist is served from the root.
    #[serde(default)]
    pub unique_root: UniqueRoot,
    /// File name rewriting rules, in order.
    #[serde(default)]
    pub remap: Vec<RemapRule>,
    /// The file this configuration came from (not a key; set by `load`).
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// `[uploads]`: who may upload what.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadsConfig {
    /// Globs an upload's path must match (`*` does not cross `/`, `**` does).
    #[serde(default = "default_allow")]
    pub allow: Vec<String>,
    /// Largest upload in bytes.
    #[serde(default = "default_max_upload")]
    pub max_size: u64,
    /// Permission bits of uploaded files.
    #[serde(default = "default_file_mode")]
    pub file_mode: u32,
    /// The most bytes all running uploads may have written and not yet committed, together;
    /// past it a WRQ is refused (by its `tsize`) or a running upload stopped, with ERROR 3.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: u64,
    /// Bytes uploads must leave available on the filesystem they write to (checked when a
    /// WRQ is accepted and every MiB written); 0: no reserve.
    #[serde(default = "default_min_free_bytes")]
    pub min_free_bytes: u64,
}

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

/// `[ebpf]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EbpfConfig {
    /// off, auto or required.
    #[serde(default)]
    pub mode: EbpfMode,
    /// Where the counter maps are pinned; one directory per daemon on a host.
    #[serde(default = "default_pin_dir")]
    pub pin_dir: PathBuf,
    /// Interfaces to attach the XDP program to; empty: no XDP.
    #[serde(default)]
    pub xdp_interfaces: Vec<String>,
    /// Native, generic, or auto (native where the driver can).
    #[serde(default)]
    pub xdp_mode: XdpMode,
    /// Requests per second each source may send to the listening ports (XDP); 0: no limit.
    #[serde(default)]
    pub xdp_rate_limit: u32,
    /// How many requests a source may send at once before the rate applies.
    #[serde(default = "default_xdp_rate_burst")]
    pub xdp_rate_burst: u32,
    /// Source prefixes never served: XDP drops their datagrams to the server's ports, and
    /// the listener refuses their requests when XDP is off.
    #[serde(default)]
    pub xdp_deny: Vec<SourcePrefix>,
    /// The rate limit's key for IPv4 sources: the first this many bits (0..=32).
    #[serde(default = "default_xdp_rate_prefix_v4")]
    pub xdp_rate_prefix_v4: u8,
    /// The rate limit's key for IPv6 sources: the first this many bits (0..=128).
    #[serde(default = "default_xdp_rate_prefix_v6")]
    pub xdp_rate_prefix_v6: u8,
}

impl Default for EbpfConfig {
    fn default() -> Self {
        Self {
            mode: EbpfMode::default(),
            pin_dir: default_pin_dir(),
            xdp_interfaces: Vec::new(),
            xdp_mode: XdpMode::default(),
            xdp_rate_limit: 0,
            xdp_rate_burst: default_xdp_rate_burst(),
            xdp_deny: Vec::new(),
            xdp_rate_prefix_v4: default_xdp_rate_prefix_v4(),
            xdp_rate_prefix_v6: default_xdp_rate_prefix_v6(),
        }
    }
}

fn default_xdp_rate_burst() -> u32 {
    20
}

/// One IPv4 address is one budget: a NAT of many devices is what `xdp_rate_burst` is for.
fn default_xdp_rate_prefix_v4() -> u8 {
    32
}

/// A /64 is one budget: one host may own all of it (RFC 8981 temporary addresses, or an
/// attacker), so a key per address would be no limit at all.
fn default_xdp_rate_prefix_v6() -> u8 {
    64
}

fn default_pin_dir() -> PathBuf {
    PathBuf::from("/sys/fs/bpf/tftpd")
}

/// `[shutdown]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownConfig {
    /// Seconds running transfers get to finish after SIGTERM/SIGINT.
    #[serde(default = "default_grace")]
    pub grace_period_secs: u64,
}

fn default_root() -> PathBuf {
    PathBuf::from("/srv/tftp")
}
fn default_listen() -> Vec<SocketAddr> {
    vec![SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 69))]
}
fn default_user() -> String {
    "nobody".to_string()
}
fn default_allow() -> Vec<String> {
    vec!["*".to_string()]
}
fn default_max_upload() -> u64 {
    1 << 30
}
fn default_file_mode() -> u32 {
    0o644
}
/// 4 GiB: four uploads of the default `max_size` at once; fewer bytes than that in flight
/// never fill a disk that is worth serving from.
fn default_max_in_flight() -> u64 {
    4 << 30
}
/// 256 MiB: room for the logs and the other services of an edge box when uploads would
/// otherwise fill its disk.
fn default_min_free_bytes() -> u64 {
    256 << 20
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
fn default_grace() -> u64 {
    10
}

impl Default for UploadsConfig {
    fn default() -> Self {
        Self {
            allow: default_allow(),
            max_size: default_max_upload(),
            file_mode: default_file_mode(),
            max_in_flight: default_max_in_flight(),
            min_free_bytes: default_min_free_bytes(),
        }
    }
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
impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            grace_period_secs: default_grace(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            root: default_root(),
            listen: default_listen(),
            user: default_user(),
            group: None,
            port_range: None,
            single_port: false,
            write: WriteMode::default(),
            uploads: UploadsConfig::default(),
            protocol: ProtocolConfig::default(),
            limits: LimitsConfig::default(),
            log: LogConfig::default(),
            metrics: MetricsConfig::default(),
            shutdown: ShutdownConfig::default(),
            ebpf: EbpfConfig::default(),
            access: AccessConfig::default(),
            remap: Vec::new(),
            pidfile: None,
            client_roots: Vec::new(),
            unique_root: UniqueRoot::Off,
            performance: PerformanceConfig::default(),
            multicast: MulticastConfig::default(),
            source: None,
        }
    }
}

impl Config {
    /// Parses and validates TOML. A relative `root` is resolved against `base_dir`.
    pub fn from_toml_str(text: &str, base_dir: Option<&Path>) -> Result<Self, ConfigError> {
        let mut config = parse(text, None)?;
        config.resolve_root(base_dir);
        config.validate()?;
        Ok(config)
    }

    /// Reads and parses the file at `path`, resolving a relative `root` against its
    /// directory; the caller applies its overrides, then [`Config::validate`].
    pub fn read_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = parse(&text, Some(path))?;
        config.resolve_root(path.parent());
        config.source = Some(path.to_path_buf());
        Ok(config)
    }

    fn resolve_root(&mut self, base_dir: Option<&Path>) {
        let Some(base) = base_dir else { return };
        if self.root.is_relative() {
            self.root = base.join(&self.root);
        }
        for c in &mut self.client_roots {
            if c.root.is_relative() {
                c.root = base.join(&c.root);
            }
        }
    }

    /// Checks ranges and cross-field rules.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, value: String, allowed| ConfigError::Invalid {
            key,
            value,
            allowed,
        };
        if self.listen.is_empty() {
            return Err(invalid("listen", "[]".into(), "at least one ADDR:PORT"));
        }
        if self.user.is_empty() {
            return Err(invalid("user", "\"\"".into(), "a user name"));
        }
        let u = &self.uploads;
        if u.max_size == 0 {
            return Err(invalid("uploads.max_size", "0".into(), "1 or more bytes"));
        }
        if u.max_in_flight == 0 {
            return Err(invalid(
                "uploads.max_in_flight",
                "0".into(),
                "1 or more bytes",
            ));
        }
        if u.file_mode > 0o777 {
            return Err(invalid(
                "uploads.file_mode",
                format!("{:#o}", u.file_mode),
                "0o000..=0o777",
            ));
        }
        self.protocol.validate()?;
        self.limits.validate()?;
        if !self.ebpf.pin_dir.starts_with("/sys/fs/bpf")
            || self.ebpf.pin_dir.components().count() < 5
        {
            return Err(invalid(
                "ebpf.pin_dir",
                self.ebpf.pin_dir.display().to_string(),
                "a directory below /sys/fs/bpf, e.g. /sys/fs/bpf/tftpd",
            ));
        }
        self.validate_xdp()?;
        self.validate_metrics()?;
        self.performance.validate()?;
        self.validate_multicast()?;
        if !self.log.syslog_socket.is_absolute() {
            return Err(invalid(
                "log.syslog_socket",
                format!("{:?}", self.log.syslog_socket),
                "an absolute path to the syslog daemon's Unix datagram socket, e.g. /dev/log",
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(invalid(
                "log.level",
                format!("{:?}", self.log.level),
                "error, warn, info, debug, trace, or target=level directives",
            ));
        }
        let f = &self.performance.file_io;
        if f.cache_size > 0 && !(1..=f.cache_size).contains(&f.cache_max_file) {
            return Err(invalid(
                "performance.file_io.cache_max_file",
                f.cache_max_file.to_string(),
                "1..=performance.file_io.cache_size",
            ));
        }
        if self.shutdown.grace_period_secs > 3600 {
            return Err(invalid(
                "shutdown.grace_period_secs",
                self.shutdown.grace_period_secs.to_string(),
                "0..=3600",
            ));
        }
        Ok(())
    }
}

/// Parses the file; with a `[performance] profile`, parses it again with the profile's
/// preset laid under the file's keys. The first pass reports the file's own mistakes with
/// their line and column; the second cannot add any but a broken preset's.
fn parse(text: &str, path: Option<&Path>) -> Result<Config, ConfigError> {
    let error = |message: String| ConfigError::Parse {
        path: path.map(Path::to_path_buf),
        message,
    };
    let mut config: Config = toml::from_str(text).map_err(|e| error(describe(text, &e)))?;
    let profile = config.performance.profile;
    if profile.preset().is_empty() {
        config.performance.apply_io();
        return Ok(config);
    }
    let in_profile = |e: &dyn std::fmt::Display| {
        error(format!(
            "performance.profile = \"{}\": its preset: {e}",
            profile.name()
        ))
    };
    let mut table: toml::Table = toml::from_str(text).map_err(|e| error(describe(text, &e)))?;
    profile::apply(&mut table, profile).map_err(|e| in_profile(&e))?;
    let mut config: Config = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| in_profile(&e))?;
    config.performance.apply_io();
    Ok(config)
}

/// One line for a TOML error: position, the dotted key it is about, and toml's message.
/// toml's own rendering spans several lines and names the key only in a source excerpt, which
/// reads badly in a log line; the error's span gives the key back.
fn describe(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end();
    let Some(span) = e.span() else {
        return message.to_string();
    };
    let start = span.start.min(text.len());
    let line_no = text[..start].matches('\n').count() + 1;
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..start].chars().count() + 1;
    let line = text[line_start..].lines().next().unwrap_or("").trim();
    let section = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    let key = match line.split_once('=') {
        Some((k, _)) => {
            let k = k.trim();
            match &section {
                Some(s) => format!("{s}.{k}"),
                None => k.to_string(),
            }
        }
        None => line.to_string(),
    };
    format!("line {line_no}, column {column}: key `{key}`: {message}")
}

#[cfg(test)]
mod tests;
