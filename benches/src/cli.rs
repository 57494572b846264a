//! The `tftp-load` command line, and its translation into a [`LoadSpec`] or a
//! [`CeilingSpec`]. Every flag here ends up in the spec; the binary only prints.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::ceiling::CeilingSpec;
use crate::impair::Impairment;
use crate::spec::{Expected, LoadSpec, RequestOptions, Stop, Transfer};

/// Load generator for TFTP servers: many concurrent clients, every byte verified.
#[derive(Debug, Parser)]
#[command(name = "tftp-load", version, about)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The three modes.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Download one file (RRQ) from the server, verified against a copy or a SHA-256.
    Get(GetArgs),
    /// Upload deterministic content (WRQ), optionally read back from the server's root.
    Put(PutArgs),
    /// The raw loopback ceiling: a trivial in-process responder with TFTP's traffic shape.
    Ceiling(CeilingArgs),
    /// The concurrent raw ceiling: a TFTP-shaped responder with no server logic, serving a
    /// directory's files from memory until killed (compare servers with it under load).
    RawServer(RawServerArgs),
}

/// `tftp-load get`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("expected").required(true).args(["verify", "sha256"])))]
pub struct GetArgs {
    /// The file name to request.
    #[arg(long)]
    pub file: String,
    /// A local copy of the file; every byte is compared with it.
    #[arg(long, value_name = "PATH")]
    pub verify: Option<PathBuf>,
    /// The file's SHA-256 (64 hex digits), checked as the blocks arrive.
    #[arg(long, value_name = "HEX")]
    pub sha256: Option<String>,
    /// The file's size in bytes (with --sha256): a shorter transfer counts as `short`.
    #[arg(long, requires = "sha256")]
    pub size: Option<u64>,
    /// What every mode of transfer shares.
    #[command(flatten)]
    pub common: Common,
}

/// `tftp-load put`.
#[derive(Debug, Args)]
pub struct PutArgs {
    /// The name to upload as; `{client}` and `{repeat}` are replaced by their indices.
    #[arg(long)]
    pub remote: String,
    /// Bytes per upload.
    #[arg(long)]
    pub size: u64,
    /// The server's root directory: read every uploaded file back and compare it.
    #[arg(long, value_name = "DIR")]
    pub check_stored: Option<PathBuf>,
    /// What every mode of transfer shares.
    #[command(flatten)]
    pub common: Common,
}

/// Flags shared by `get` and `put`.
#[derive(Debug, Args)]
pub struct Common {
    /// The server's address, e.g. 127.0.0.1:69 or [::1]:69.
    #[arg(long)]
    pub server: SocketAddr,
    /// Request this blksize (RFC 2348); not sent when absent.
    #[arg(long, value_parser = clap::value_parser!(u16).range(8..=65464))]
    pub blksize: Option<u16>,
    /// Request this windowsize (RFC 7440); not sent when absent.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub windowsize: Option<u16>,
    /// Send tsize (RFC 2349): 0 for a download (the answer is checked against the expected
    /// size), the upload's size for an upload.
    #[arg(long)]
    pub tsize: bool,
    /// Request this timeout in seconds (RFC 2349), also used as the retransmit timeout.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..))]
    pub timeout: Option<u8>,
    /// Retransmit timeout in milliseconds when --timeout is not given.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub retransmit_ms: u64,
    /// Consecutive timeouts before a transfer fails as `timeout`.
    #[arg(long, default_value_t = 5)]
    pub retries: u32,
    /// Concurrent clients.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=2000))]
    pub clients: u32,
    /// Transfers per client, one after the other (default 1).
    #[arg(long, conflicts_with = "duration", value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: Option<u32>,
    /// Instead of --repeat: each client starts transfers for this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Probability that a datagram (either way) is dropped.
    #[arg(long, default_value_t = 0.0)]
    pub loss: f64,
    /// Probability that a datagram (either way) is delivered twice.
    #[arg(long, default_value_t = 0.0)]
    pub dup: f64,
    /// Probability that a datagram (either way) is held back until the next one passes it.
    #[arg(long, default_value_t = 0.0)]
    pub reorder: f64,
    /// Delay added to every datagram, each way, in milliseconds (fractions allowed: 0.5
    /// each way is a 1 ms round trip).
    #[arg(long, value_name = "MS", default_value_t = 0.0)]
    pub delay: f64,
    /// Seed of the impairment and of the upload content.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Runtime worker threads (default: one per CPU).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `tftp-load ceiling`.
#[derive(Debug, Args)]
pub struct CeilingArgs {
    /// Payload bytes per block.
    #[arg(long, value_parser = clap::value_parser!(u16).range(8..=65464))]
    pub blksize: u16,
    /// Blocks per ACK (1: lock-step).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub windowsize: u16,
    /// Payload bytes to move.
    #[arg(long)]
    pub bytes: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `tftp-load raw-server`.
#[derive(Debug, Args)]
pub struct RawServerArgs {
    /// The address requests come to.
    #[arg(long, default_value = "127.0.0.1:6969")]
    pub listen: SocketAddr,
    /// The directory whose regular files are served (read into memory at start).
    #[arg(long)]
    pub root: PathBuf,
    /// The event loop: `epoll` (a system call per datagram) or `uring` (one io_uring for
    /// every transfer; Linux).
    #[arg(long, default_value = "epoll", value_parser = ["epoll", "uring"])]
    pub engine: String,
}

/// Why the command line cannot become a spec.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The --verify file cannot be read.
    #[error("reading --verify {}", path.display())]
    ReadVerify {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// --sha256 is not 64 hex digits.
    #[error("--sha256 {0:?} is not 64 hex digits")]
    BadDigest(String),
    /// --duration is not a positive number of seconds.
    #[error("--duration {0} is not a positive number of seconds")]
    BadDuration(f64),
    /// --delay is negative or not a number.
    #[error("--delay {0} is not a number of milliseconds, 0 or more")]
    BadDelay(f64),
}

impl GetArgs {
    /// The download spec.
    pub fn spec(&self) -> Result<LoadSpec, CliError> {
        let expect = match (&self.verify, &self.sha256) {
            (Some(path), _) => {
                let data = std::fs::read(path).map_err(|source| CliError::ReadVerify {
                    path: path.clone(),
                    source,
                })?;
                Expected::Bytes(Arc::from(data))
            }
            (None, Some(hex)) => Expected::Digest {
                sha256: parse_sha256(hex)?,
                size: self.size,
            },
            (None, None) => unreachable!("clap requires --verify or --sha256"),
        };
        self.common.spec(Transfer::Download {
            file: self.file.clone(),
            expect,
        })
    }
}

impl PutArgs {
    /// The upload spec.
    pub fn spec(&self) -> Result<LoadSpec, CliError> {
        self.common.spec(Transfer::Upload {
            remote: self.remote.clone(),
            size: self.size,
            stored_root: self.check_stored.clone(),
        })
    }
}

impl Common {
    fn spec(&self, transfer: Transfer) -> Result<LoadSpec, CliError> {
        let stop = match self.duration {
            Some(s) if s.is_finite() && s > 0.0 => Stop::Duration(Duration::from_secs_f64(s)),
            Some(s) => return Err(CliError::BadDuration(s)),
            None => Stop::Repeat(self.repeat.unwrap_or(1)),
        };
        let delay = Duration::try_from_secs_f64(self.delay / 1000.0)
            .map_err(|_| CliError::BadDelay(self.delay))?;
        Ok(LoadSpec {
            server: self.server,
            transfer,
            options: RequestOptions {
                blksize: self.blksize,
                windowsize: self.windowsize,
                tsize: self.tsize,
                timeout: self.timeout,
            },
            retransmit_timeout: Duration::from_millis(self.retransmit_ms),
            max_retries: self.retries,
            clients: self.clients,
            stop,
            impairment: Impairment {
                loss: self.loss,
                dup: self.dup,
                reorder: self.reorder,
                delay,
                seed: self.seed,
            },
            threads: self.threads,
        })
    }
}

impl CeilingArgs {
    /// The ceiling spec.
    pub fn spec(&self) -> CeilingSpec {
        CeilingSpec {
            blksize: self.blksize,
            windowsize: self.windowsize,
            bytes: self.bytes,
        }
    }
}

/// Parses 64 hex digits.
fn parse_sha256(hex: &str) -> Result<[u8; 32], CliError> {
    let bad = || CliError::BadDigest(hex.to_string());
    if hex.len() != 64 || !hex.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("tftp-load").chain(args.iter().copied()))
    }

    #[test]
    fn every_flag_reaches_the_spec() {
        let digest = "ab".repeat(32);
        let cli = parse(&[
            "get",
            "--server",
            "[::1]:69",
            "--file",
            "f",
            "--sha256",
            &digest,
            "--size",
            "10",
            "--blksize",
            "1428",
            "--windowsize",
            "8",
            "--tsize",
            "--timeout",
            "2",
            "--retries",
            "3",
            "--clients",
            "40",
            "--duration",
            "1.5",
            "--loss",
            "0.1",
            "--dup",
            "0.2",
            "--reorder",
            "0.3",
            "--delay",
            "4",
            "--seed",
            "9",
            "--threads",
            "2",
        ])
        .expect("a full get command line");
        let Command::Get(args) = cli.command else {
            panic!("expected get")
        };
        let s = args.spec().expect("a valid spec");
        assert!(s.server.is_ipv6());
        assert_eq!(
            s.options,
            RequestOptions {
                blksize: Some(1428),
                windowsize: Some(8),
                tsize: true,
                timeout: Some(2)
            }
        );
        assert_eq!((s.max_retries, s.clients, s.threads), (3, 40, Some(2)));
        assert_eq!(s.stop, Stop::Duration(Duration::from_millis(1500)));
        assert_eq!(
            (s.impairment.loss, s.impairment.dup, s.impairment.reorder),
            (0.1, 0.2, 0.3)
        );
        assert_eq!(s.impairment.delay, Duration::from_millis(4));
        assert_eq!(s.impairment.seed, 9);
        let Transfer::Download { expect, .. } = &s.transfer else {
            panic!("a download")
        };
        assert!(matches!(expect, Expected::Digest { sha256, size: Some(10) } if sha256[0] == 0xab));
        Cli::command().debug_assert();
    }

    #[test]
    fn out_of_range_and_missing_flags_are_refused() {
        let put = |extra: &[&'static str]| {
            let mut v = vec![
                "put",
                "--server",
                "127.0.0.1:69",
                "--remote",
                "r",
                "--size",
                "1",
            ];
            v.extend_from_slice(extra);
            v
        };
        for bad in [
            vec!["get", "--server", "127.0.0.1:69", "--file", "f"],
            put(&["--clients", "2001"]),
            put(&["--blksize", "7"]),
            put(&["--repeat", "2", "--duration", "1"]),
            vec!["ceiling", "--blksize", "512"],
        ] {
            assert!(parse(&bad).is_err(), "{bad:?} must be refused");
        }
        let delay = |arg: &'static str| {
            let Command::Put(args) = parse(&put(&[arg])).expect("parses").command else {
                panic!("expected put")
            };
            args.spec().map(|s| s.impairment.delay)
        };
        assert_eq!(delay("--delay=0.5").ok(), Some(Duration::from_micros(500)));
        assert!(matches!(delay("--delay=-1"), Err(CliError::BadDelay(_))));
        assert!(matches!(delay("--delay=NaN"), Err(CliError::BadDelay(_))));
        assert!(matches!(parse_sha256("12"), Err(CliError::BadDigest(_))));
        assert!(parse_sha256(&"zz".repeat(32)).is_err());
    }
}
