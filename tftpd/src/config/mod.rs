//! The configuration file: one documented struct per section, unknown keys rejected, every
//! value validated with an error that names the key and the allowed values. This module knows
//! nothing of the command line: `cli::merge` reads the file through [`Config::read_file`] and
//! lays the flags over it. `docs/config-reference.md` documents every key and a test loads
//! every file in `docs/examples/`.

mod access;
mod checks;
mod deprecated;
mod ebpf;
mod io_choice;
mod limits;
mod log;
mod metrics;
mod multicast;
mod parse;
mod performance;
mod prefix;
mod profile;
mod protocol;
#[cfg(test)]
mod reference_tests;
mod remap;
mod removed;
mod shutdown;
mod types;
mod uploads;
mod xdp;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use self::access::{AccessConfig, ClientRoot};
pub use self::deprecated::DEPRECATED;
pub use self::ebpf::EbpfConfig;
pub use self::io_choice::{IoChoice, PORTABLE_TURNS_OFF};
pub use self::limits::LimitsConfig;
pub use self::log::LogConfig;
pub use self::metrics::MetricsConfig;
pub use self::multicast::{GroupAddresses, GroupPorts, MulticastConfig};
use self::parse::parse;
pub use self::performance::{
    BatchingConfig, CpuConfig, FileIoConfig, MAX_REUSEPORT_WORKERS, MemoryConfig,
    PerformanceConfig, RECV_BATCH, RealtimeConfig, SocketConfig,
};
pub use self::prefix::SourcePrefix;
pub use self::profile::Profile;
pub use self::protocol::ProtocolConfig;
pub use self::remap::{RemapAction, RemapOp, RemapRule};
pub use self::removed::{REMOVED, Removed};
pub use self::shutdown::ShutdownConfig;
pub use self::types::{
    BlockSize, EbpfMode, LogFormat, LogTarget, PortRange, RolloverPolicy, UniqueRoot,
};
pub use self::uploads::UploadsConfig;
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

fn default_root() -> PathBuf {
    PathBuf::from("/srv/tftp")
}
fn default_listen() -> Vec<SocketAddr> {
    vec![SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 69))]
}
fn default_user() -> String {
    "nobody".to_string()
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

#[cfg(test)]
mod recv_batch_tests;
#[cfg(test)]
mod tests;
