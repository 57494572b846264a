//! The command line. These flags are a contract other tools rely on: never rename one.
//! Every flag that has a config key overrides that key. tftp-hpa's in.tftpd command line is
//! taken too ([`in_tftpd`]); [`form`] tells the two apart, and [`merge`] turns either into a
//! configuration.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use crate::config::{EbpfMode, LogFormat};
use crate::fs::WriteMode;

mod form;
pub mod in_tftpd;
pub mod merge;
mod stats_args;

pub use self::in_tftpd::InTftpdArgs;
pub use self::merge::{LoadError, Note, load, load_with_notes};
pub use self::stats_args::StatsArgs;

/// A correct, safe and fast TFTP server.
///
/// Without --config, /etc/tftpd/tftpd.toml is read when it exists; with neither file nor flags
/// tftpd serves /srv/tftp read-only on port 69 of every address. Flags override the file.
/// tftp-hpa's in.tftpd command line (`-l -s DIR`, `--secure`, ...) is taken too; see tftpd(8),
/// IN.TFTPD COMMAND LINE, and `tftpd -s -h` for its flags.
#[derive(Debug, Clone, Default, Parser)]
#[command(name = "tftpd", version, about, long_about)]
pub struct Cli {
    /// Configuration file (TOML). Default: /etc/tftpd/tftpd.toml when it exists.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Directory to serve. Overrides `root`.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Address to listen on; repeat for several (IPv6 as [::1]:69). Replaces `listen`.
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Vec<SocketAddr>,

    /// Whether clients may upload. Overrides `write`.
    #[arg(long, value_name = "MODE", value_parser = parse_write_mode)]
    pub write: Option<WriteMode>,

    /// User to run as after binding, when started as root. Overrides `user`.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Group to run as after binding (default: the user's primary group). Overrides `group`.
    #[arg(long, value_name = "NAME")]
    pub group: Option<String>,

    /// Log format. Overrides `log.format`.
    #[arg(long, value_name = "FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,

    /// Log level filter, e.g. info, debug, tftpd=trace. Overrides `log.level`.
    #[arg(long, value_name = "LEVEL", conflicts_with = "verbosity")]
    pub log_level: Option<String>,

    /// tftp-hpa style verbosity: 0 warnings only, 1 requests and transfers (info), 2 debug,
    /// 3 or more trace. Overrides `log.level`.
    #[arg(long, value_name = "N")]
    pub verbosity: Option<u8>,

    /// Write the process id to FILE once serving (removed on a clean exit). Overrides
    /// `pidfile`.
    #[arg(long, value_name = "FILE")]
    pub pidfile: Option<PathBuf>,

    /// Print what the `[[remap]]` rules make of NAME (as a read request from --client), then
    /// exit.
    #[arg(long, value_name = "NAME")]
    pub map_test: Option<String>,

    /// The client address --map-test assumes (default 127.0.0.1).
    #[arg(long, value_name = "ADDR", requires = "map_test")]
    pub client: Option<std::net::IpAddr>,

    /// Serve Prometheus metrics at http://ADDR:PORT/metrics. Overrides `metrics.listen`.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<SocketAddr>,

    /// Kernel packet filter: off, auto (eBPF, else classic BPF, else userspace rules),
    /// required (eBPF or refuse to start) or cbpf (classic BPF only). Overrides `ebpf.mode`.
    #[arg(long, value_name = "MODE", value_enum)]
    pub ebpf: Option<EbpfMode>,

    /// Validate the configuration (file and flags), then exit 0 if valid or 1 if not.
    #[arg(long)]
    pub check_config: bool,

    /// A one-off task instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// The in.tftpd command line, when that is what was given (then no other field is set).
    #[arg(skip)]
    pub in_tftpd: Option<InTftpdArgs>,
}

/// One-off tasks.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Show a running daemon's active transfers, requests by outcome and packet-filter
    /// counters by reason, from its /metrics (`metrics.listen`) and the eBPF maps it pinned
    /// (`ebpf.pin_dir`).
    Stats(StatsArgs),
    /// Probe the running daemon: GET /metrics on `metrics.listen` (200 with tftpd_build_info)
    /// and, with --file, a TFTP download from the first `listen` address. Reads the same
    /// config (and the flags before `health`). Exit 0 if every probe answers, else 1.
    Health {
        /// A file under the served root to download over TFTP (small: it is fetched whole).
        #[arg(long, value_name = "NAME")]
        file: Option<String>,
        /// Seconds each probe may take.
        #[arg(long, value_name = "SECS", default_value_t = 5,
              value_parser = clap::value_parser!(u64).range(1..=300))]
        timeout: u64,
    },
}

fn parse_write_mode(s: &str) -> Result<WriteMode, String> {
    s.parse()
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn every_contract_flag_parses() {
        let cli =
            Cli::try_parse_from(form::tests::EVERY_FLAG).expect("the contract flags must parse");
        assert_eq!(cli.listen.len(), 2);
        assert_eq!(cli.write, Some(WriteMode::Create));
        assert_eq!(cli.log_format, Some(LogFormat::Json));
        assert_eq!(cli.ebpf, Some(EbpfMode::Off));
        assert!(cli.check_config);
        Cli::command().debug_assert();
    }

    #[test]
    fn bad_values_name_the_allowed_ones() {
        let err = Cli::try_parse_from(["tftpd", "--write", "yes"]).expect_err("invalid");
        assert!(err.to_string().contains("off, create, overwrite"), "{err}");
        let err = Cli::try_parse_from(["tftpd", "--verbosity", "2", "--log-level", "info"])
            .expect_err("two ways to set the level");
        assert!(err.to_string().contains("cannot be used with"), "{err}");
        let err = Cli::try_parse_from(["tftpd", "--log-format", "xml"]).expect_err("invalid");
        assert!(
            err.to_string().contains("text") && err.to_string().contains("json"),
            "{err}"
        );
    }
}
