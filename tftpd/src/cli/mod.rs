//! The command line. These flags are a contract other tools rely on: never rename one.
//! Every flag that has a config key overrides that key. tftp-hpa's in.tftpd command line is
//! taken too ([`in_tftpd`]); [`form`] tells the two apart, and [`merge`] turns either into a
//! configuration.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use clap::error::ErrorKind;

use crate::config::{EbpfMode, LogFormat};
use crate::fs::WriteMode;

mod form;
pub mod in_tftpd;
pub mod merge;

pub use self::in_tftpd::InTftpdArgs;
pub use self::merge::{LoadError, Note, load, load_with_notes};

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

impl Cli {
    /// Parses the process's arguments, either command line; prints the error, usage, help or
    /// version and exits when that is what they ask for (as clap's `parse` does).
    pub fn from_env() -> Self {
        let cli = Self::try_parse_words(std::env::args_os()).unwrap_or_else(|e| e.exit());
        if let Some(a) = &cli.in_tftpd {
            if a.help {
                print!("{}", in_tftpd::USAGE);
                std::process::exit(0);
            }
            if a.version {
                println!(
                    "tftpd {} (in.tftpd command line)",
                    env!("CARGO_PKG_VERSION")
                );
                std::process::exit(0);
            }
        }
        cli
    }

    /// Parses a whole argument list, program name first: tftpd's flags, or in.tftpd's (see
    /// [`form`] for how the two are told apart).
    pub fn try_parse_words<I, T>(argv: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
        let text: Option<Vec<&str>> = argv.iter().map(|a| a.to_str()).collect();
        // A word that is not UTF-8 can only be tftpd's (a path); clap reports it if not.
        let Some((program, words)) = text.as_deref().and_then(<[&str]>::split_first) else {
            return Self::try_parse_from(argv);
        };
        match form::detect(program, words) {
            Err(message) => Err(clap::Error::raw(
                ErrorKind::ArgumentConflict,
                format!("{message}\n"),
            )),
            Ok(form::Form::Tftpd) => Self::try_parse_from(argv),
            Ok(form::Form::InTftpd(why)) => match in_tftpd::parse(words) {
                Ok(args) => Ok(Self {
                    in_tftpd: Some(args),
                    ..Self::default()
                }),
                Err(e) => Err(clap::Error::raw(
                    ErrorKind::InvalidValue,
                    format!("{e} (read as in.tftpd's command line, {why})\n"),
                )),
            },
        }
    }
}

/// One-off tasks.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Print the eBPF filter counters of a running daemon from its pinned maps (needs read
    /// access to them: root or the daemon's user). Works without the daemon's help.
    Stats {
        /// Where the daemon pinned its maps.
        #[arg(long, value_name = "DIR", default_value = "/sys/fs/bpf/tftpd")]
        pin_dir: PathBuf,
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
        let cli = Cli::try_parse_from([
            "tftpd",
            "--config",
            "/etc/x.toml",
            "--root",
            "/srv",
            "--listen",
            "127.0.0.1:69",
            "--listen",
            "[::1]:69",
            "--write",
            "create",
            "--user",
            "tftp",
            "--log-format",
            "json",
            "--metrics-listen",
            "127.0.0.1:9169",
            "--check-config",
        ])
        .expect("the contract flags must parse");
        assert_eq!(cli.listen.len(), 2);
        assert_eq!(cli.write, Some(WriteMode::Create));
        assert_eq!(cli.log_format, Some(LogFormat::Json));
        assert!(cli.check_config);
        Cli::command().debug_assert();
    }

    #[test]
    fn every_tftpd_line_parses_as_before_the_in_tftpd_form() {
        // What main runs (try_parse_words) must take tftpd's own lines exactly as clap does.
        for line in [
            &["tftpd"][..],
            &[
                "tftpd",
                "--config",
                "/etc/x.toml",
                "--root",
                "/srv",
                "--listen",
                "127.0.0.1:69",
                "--listen",
                "[::1]:69",
                "--write",
                "create",
                "--user",
                "tftp",
                "--group",
                "tftp",
                "--log-format",
                "json",
                "--log-level",
                "debug",
                "--pidfile",
                "/run/p",
                "--metrics-listen",
                "127.0.0.1:9169",
                "--ebpf",
                "off",
                "--check-config",
            ],
            &["tftpd", "--verbosity", "2", "--listen=0.0.0.0:69"],
            &["tftpd", "--map-test", "\\Boot\\BCD", "--client", "10.0.0.5"],
            &["tftpd", "stats", "--pin-dir", "/sys/fs/bpf/other"],
        ] {
            let words = Cli::try_parse_words(line).expect("parses");
            let clap = Cli::try_parse_from(line).expect("parses");
            assert_eq!(format!("{words:?}"), format!("{clap:?}"), "{line:?}");
            assert!(words.in_tftpd.is_none(), "{line:?}");
        }
        // Errors too: a bad value is still clap's error, naming the allowed values.
        let e = Cli::try_parse_words(["tftpd", "--write", "yes"]).expect_err("invalid");
        assert!(e.to_string().contains("off, create, overwrite"), "{e}");
    }

    #[test]
    fn in_tftpd_lines_fill_only_the_in_tftpd_field() {
        let cli = Cli::try_parse_words(["/usr/sbin/tftpd", "-l", "-s", "/srv/tftp"]).expect("ok");
        let a = cli.in_tftpd.as_ref().expect("the in.tftpd form");
        assert!(a.listen && a.secure);
        assert!(cli.root.is_none() && cli.listen.is_empty() && cli.config.is_none());
        let e = Cli::try_parse_words(["tftpd", "-l", "-B", "9", "-s", "/srv"]).expect_err("-B");
        assert!(
            e.to_string().contains("-B") && e.to_string().contains("because of -l"),
            "the error says why the line was read as in.tftpd's: {e}"
        );
        let e = Cli::try_parse_words(["tftpd", "-s", "/srv", "--root", "/srv"]).expect_err("mix");
        assert_eq!(e.kind(), ErrorKind::ArgumentConflict, "{e}");
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
