//! The one place where the command line meets the configuration file: reads the file (or
//! takes the built-in defaults), lays the flags over it, then validates. `config` knows
//! nothing of the command line, so this module is the only one that joins the two. The
//! in.tftpd command line is turned into a configuration by [`in_tftpd`].

use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError, DEFAULT_CONFIG_PATH};

use super::Cli;

mod in_tftpd;

/// Why the configuration for a command line could not be built.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file, or the result of laying the flags over it, is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An in.tftpd flag (or its absence) that tftpd cannot honour.
    #[error("in.tftpd {flag}: {message}")]
    InTftpd {
        /// The flag, as in.tftpd spells it.
        flag: &'static str,
        /// Why, and what to do instead.
        message: String,
    },
    /// The `-m` map file could not be read.
    #[error("reading the map file {}", path.display())]
    MapFileRead {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A line of the `-m` map file that tftpd's rules cannot express.
    #[error("map file {}", path.display())]
    MapFile {
        /// The file.
        path: PathBuf,
        /// The line and what is wrong with it.
        #[source]
        source: crate::fs::remap::map_file::MapFileError,
    },
}

/// Something the operator should read about how a command line was taken: an in.tftpd flag
/// accepted as not needed, or a map-file rule that differs from tftp-hpa in a detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The flag it is about (`-l`, `-m`).
    pub flag: &'static str,
    /// What happens and why.
    pub message: String,
    /// Whether it is a difference from tftp-hpa (a warning) rather than a flag not needed.
    pub differs: bool,
}

/// Logs `notes`: a flag not needed at info, a difference from tftp-hpa as a warning.
pub fn log_notes(notes: &[Note]) {
    for n in notes {
        if n.differs {
            tracing::warn!(flag = n.flag, "in.tftpd {}: {}", n.flag, n.message);
        } else {
            tracing::info!(flag = n.flag, "in.tftpd {}: {}", n.flag, n.message);
        }
    }
}

/// Loads the configuration for `cli`: the `--config` file, else the default file when it
/// exists, else the built-in defaults; then the flags; then validation. An in.tftpd command
/// line starts from the built-in defaults and reads no file, as in.tftpd reads none.
pub fn load(cli: &Cli) -> Result<Config, LoadError> {
    load_with_notes(cli).map(|(config, _)| config)
}

/// [`load`], with the notes the daemon logs once logging is set up.
pub fn load_with_notes(cli: &Cli) -> Result<(Config, Vec<Note>), LoadError> {
    if let Some(args) = &cli.in_tftpd {
        return in_tftpd::build(args);
    }
    load_from(cli, Path::new(DEFAULT_CONFIG_PATH)).map(|c| (c, Vec::new()))
}

/// [`load`] with another default path (for tests).
pub fn load_from(cli: &Cli, default_path: &Path) -> Result<Config, LoadError> {
    let path = cli
        .config
        .clone()
        .or_else(|| default_path.exists().then(|| default_path.to_path_buf()));
    let mut config = match &path {
        None => Config::default(),
        Some(p) => Config::read_file(p)?,
    };
    apply(cli, &mut config);
    config.validate()?;
    Ok(config)
}

/// Lays tftpd's own flags over `config`: each flag that has a key replaces it.
fn apply(cli: &Cli, config: &mut Config) {
    if let Some(root) = &cli.root {
        config.root.clone_from(root);
    }
    if !cli.listen.is_empty() {
        config.listen.clone_from(&cli.listen);
    }
    if let Some(w) = cli.write {
        config.write = w;
    }
    if let Some(u) = &cli.user {
        config.user.clone_from(u);
    }
    if let Some(g) = &cli.group {
        config.group = Some(g.clone());
    }
    if let Some(f) = cli.log_format {
        config.log.format = f;
    }
    if let Some(l) = &cli.log_level {
        config.log.level.clone_from(l);
    }
    if let Some(v) = cli.verbosity {
        config.log.level = verbosity_level(v.into()).to_string();
    }
    if let Some(p) = &cli.pidfile {
        config.pidfile = Some(p.clone());
    }
    if let Some(m) = cli.metrics_listen {
        config.metrics.listen = Some(m);
    }
    if let Some(e) = cli.ebpf {
        config.ebpf.mode = e;
    }
}

/// tftp-hpa's verbosity as a log level: 0 warnings only, 1 requests and transfers, 2 debug,
/// 3 or more trace.
pub(super) fn verbosity_level(v: u32) -> &'static str {
    match v {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::path::PathBuf;

    use clap::Parser as _;

    use super::*;
    use crate::config::{EbpfMode, LogFormat, WriteMode};

    #[test]
    fn flags_override_the_file_and_listen_replaces_the_list() {
        let dir = crate::fs::testdir_for_config();
        let file = dir.path().join("t.toml");
        std::fs::write(
            &file,
            "root = \"served\"\nlisten = [\"127.0.0.1:69\", \"[::1]:69\"]\nwrite = \"off\"\n\
         user = \"tftp\"\n[log]\nformat = \"json\"\n",
        )
        .expect("write config");
        let cli = Cli::try_parse_from([
            "tftpd",
            "--config",
            file.to_str().expect("utf-8 path"),
            "--listen",
            "127.0.0.1:6969",
            "--write",
            "create",
            "--log-format",
            "text",
            "--ebpf",
            "off",
        ])
        .expect("cli");
        let c = load_from(&cli, Path::new("/nonexistent")).expect("load");
        assert_eq!(
            c.root,
            dir.path().join("served"),
            "relative root taken from the file's dir"
        );
        assert_eq!(
            c.listen,
            vec!["127.0.0.1:6969".parse::<SocketAddr>().expect("addr")]
        );
        assert_eq!(c.write, WriteMode::Create, "--write wins");
        assert_eq!(c.log.format, LogFormat::Text, "--log-format wins");
        assert_eq!(c.ebpf.mode, EbpfMode::Off, "--ebpf wins over the default");
        assert_eq!(c.user, "tftp", "keys without a flag keep the file's value");
        assert_eq!(c.source.as_deref(), Some(file.as_path()));
    }

    #[test]
    fn without_any_file_the_defaults_and_flags_apply() {
        let cli = Cli::try_parse_from(["tftpd", "--root", "/tmp"]).expect("cli");
        let c = load_from(&cli, Path::new("/nonexistent/tftpd.toml")).expect("load");
        assert_eq!(c.root, PathBuf::from("/tmp"));
        assert_eq!(c.source, None, "no file was read");
    }

    #[test]
    fn missing_config_file_is_an_error_naming_it() {
        let cli = Cli::try_parse_from(["tftpd", "--config", "/nonexistent/x.toml"]).expect("cli");
        let e = load_from(&cli, Path::new("/nonexistent")).expect_err("missing file");
        assert!(e.to_string().contains("/nonexistent/x.toml"), "{e}");
    }
}
