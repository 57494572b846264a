//! What a load run does: the server, the transfer, the options to request, how many clients
//! for how long, and the impairment. Plain data, validated once by [`LoadSpec::validate`];
//! `load::run` executes it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::impair::Impairment;

/// Most concurrent clients a run may have (each holds one socket; a boot storm of a rack).
pub const MAX_CLIENTS: u32 = 2000;

/// One load run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// The server's request address (IPv4 or IPv6).
    pub server: SocketAddr,
    /// Download or upload, and how to verify it.
    pub transfer: Transfer,
    /// Options to request; only those set are sent.
    pub options: RequestOptions,
    /// Client retransmit timeout when `options.timeout` is not set (when it is, the
    /// negotiated value is used).
    pub retransmit_timeout: Duration,
    /// Consecutive timeouts after which a transfer fails with kind `timeout`.
    pub max_retries: u32,
    /// Concurrent clients, 1..=[`MAX_CLIENTS`].
    pub clients: u32,
    /// When each client stops.
    pub stop: Stop,
    /// Client-side loss, duplication, reordering and delay.
    pub impairment: Impairment,
    /// Worker threads of the runtime [`crate::run`] builds; `None`: one per CPU.
    /// ([`crate::run_async`] uses the caller's runtime.)
    pub threads: Option<usize>,
}

/// Which way the bytes go.
#[derive(Debug, Clone)]
pub enum Transfer {
    /// RRQ: fetch `file` and check it against `expect`.
    Download {
        /// The file name sent in the RRQ.
        file: String,
        /// What the bytes must be.
        expect: Expected,
    },
    /// WRQ: send `size` bytes of deterministic content (see `content`).
    Upload {
        /// The name sent in the WRQ; `{client}` and `{repeat}` are replaced by the client's
        /// and the repetition's index, so concurrent uploads need not share a file.
        remote: String,
        /// Bytes per upload.
        size: u64,
        /// The server's root directory; when set, every uploaded file is read back from it
        /// after the run and compared with the content sent.
        stored_root: Option<PathBuf>,
    },
}

/// The expected content of a download.
#[derive(Debug, Clone)]
pub enum Expected {
    /// The exact bytes (a local copy of the served file).
    Bytes(Arc<[u8]>),
    /// A SHA-256 digest, and optionally the size, checked as the blocks stream in.
    Digest {
        /// The SHA-256 of the whole file.
        sha256: [u8; 32],
        /// The file's size, when known: a transfer that ends early is `short`.
        size: Option<u64>,
    },
}

impl Expected {
    /// The expected size, when known.
    pub fn size(&self) -> Option<u64> {
        match self {
            Self::Bytes(b) => Some(b.len() as u64),
            Self::Digest { size, .. } => *size,
        }
    }
}

/// RFC 2347/2348/2349/7440 options to request. `None`/`false`: not sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestOptions {
    /// `blksize`, 8..=65464.
    pub blksize: Option<u16>,
    /// `windowsize`, 1..=65535.
    pub windowsize: Option<u16>,
    /// Send `tsize` (0 in an RRQ, the upload size in a WRQ); a download checks the answer
    /// against the expected size when it is known.
    pub tsize: bool,
    /// `timeout` in seconds, 1..=255; also the client's retransmit timeout.
    pub timeout: Option<u8>,
}

/// When a client stops starting transfers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Each client runs this many transfers, one after the other.
    Repeat(u32),
    /// Each client starts transfers until this much time has passed since the run began; a
    /// transfer under way at the deadline is finished and counted.
    Duration(Duration),
}

/// Why a spec cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    /// A value is outside its allowed range.
    #[error("{name} = {value} is invalid (allowed: {allowed})")]
    Invalid {
        /// The setting's name (the CLI flag without dashes).
        name: &'static str,
        /// The value given.
        value: String,
        /// The allowed range.
        allowed: &'static str,
    },
}

impl LoadSpec {
    /// Checks every range once, so the run itself never meets a nonsensical value.
    pub fn validate(&self) -> Result<(), SpecError> {
        let invalid = |name, value: String, allowed| {
            Err(SpecError::Invalid {
                name,
                value,
                allowed,
            })
        };
        if !(1..=MAX_CLIENTS).contains(&self.clients) {
            return invalid("clients", self.clients.to_string(), "1..=2000");
        }
        if let Some(b) = self.options.blksize
            && !(8..=65464).contains(&b)
        {
            return invalid("blksize", b.to_string(), "8..=65464");
        }
        if self.options.windowsize == Some(0) {
            return invalid("windowsize", "0".into(), "1..=65535");
        }
        if self.options.timeout == Some(0) {
            return invalid("timeout", "0".into(), "1..=255 seconds");
        }
        if self.retransmit_timeout.is_zero() {
            return invalid("retransmit-timeout", "0".into(), "more than 0");
        }
        match self.stop {
            Stop::Repeat(0) => return invalid("repeat", "0".into(), "1 or more"),
            Stop::Duration(d) if d.is_zero() => {
                return invalid("duration", "0".into(), "more than 0 seconds");
            }
            _ => {}
        }
        self.impairment.validate()
    }

    /// The retransmit timeout in force: the requested `timeout` option, else the default.
    pub fn timeout(&self) -> Duration {
        self.options.timeout.map_or(self.retransmit_timeout, |s| {
            Duration::from_secs(u64::from(s))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> LoadSpec {
        LoadSpec {
            server: "127.0.0.1:69".parse().expect("address"),
            transfer: Transfer::Upload {
                remote: "x".into(),
                size: 1,
                stored_root: None,
            },
            options: RequestOptions::default(),
            retransmit_timeout: Duration::from_secs(1),
            max_retries: 5,
            clients: 1,
            stop: Stop::Repeat(1),
            impairment: Impairment::default(),
            threads: None,
        }
    }

    #[test]
    fn out_of_range_values_name_the_setting() {
        let mut s = spec();
        s.clients = 2001;
        assert!(
            matches!(
                s.validate(),
                Err(SpecError::Invalid {
                    name: "clients",
                    ..
                })
            ),
            "2001 clients must be refused"
        );
        let mut s = spec();
        s.options.blksize = Some(7);
        assert!(
            matches!(
                s.validate(),
                Err(SpecError::Invalid {
                    name: "blksize",
                    ..
                })
            ),
            "blksize 7 must be refused"
        );
        let mut s = spec();
        s.impairment.loss = 1.5;
        assert!(
            matches!(s.validate(), Err(SpecError::Invalid { name: "loss", .. })),
            "loss 1.5 must be refused"
        );
        assert_eq!(spec().validate(), Ok(()), "the base spec is valid");
    }

    #[test]
    fn the_timeout_option_overrides_the_default_retransmit_timeout() {
        let mut s = spec();
        assert_eq!(s.timeout(), Duration::from_secs(1));
        s.options.timeout = Some(3);
        assert_eq!(s.timeout(), Duration::from_secs(3));
    }
}
