//! The flags of `tftpd stats`, a subcommand of the daemon's command line; what they do is
//! `crate::stats`'s.

use std::path::PathBuf;

/// `tftpd stats` flags. Every other flag of the daemon (`--config` before `stats`,
/// `--metrics-listen`) applies as when serving.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StatsArgs {
    /// Where the daemon pinned its maps. Default: `ebpf.pin_dir` of the config.
    #[arg(long, value_name = "DIR")]
    pub pin_dir: Option<PathBuf>,

    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,

    /// The daemon's configuration file (as `tftpd --config FILE stats`).
    #[arg(long = "config", id = "stats_config", value_name = "FILE")]
    pub config: Option<PathBuf>,
}
