//! Value types that validate while parsing, so a bad value is reported with the key's name and
//! the allowed values, and code past the config never re-checks them.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use crate::proto::Rollover;
use crate::proto::options::{MAX_BLKSIZE, MIN_BLKSIZE};

/// A block size in bytes, 8..=65464 (RFC 2348).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "i64")]
pub struct BlockSize(u16);

impl BlockSize {
    /// The largest block size (RFC 2348).
    pub const MAX: Self = Self(MAX_BLKSIZE);

    /// The size in bytes.
    pub fn get(self) -> u16 {
        self.0
    }
}

impl TryFrom<i64> for BlockSize {
    type Error = String;
    fn try_from(v: i64) -> Result<Self, String> {
        if (i64::from(MIN_BLKSIZE)..=i64::from(MAX_BLKSIZE)).contains(&v) {
            Ok(Self(v as u16))
        } else {
            Err(format!(
                "block size {v} is out of range (allowed: 8..=65464)"
            ))
        }
    }
}

/// An inclusive UDP port range for transfer sockets, written "lo-hi".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct PortRange {
    /// First port.
    pub lo: u16,
    /// Last port.
    pub hi: u16,
}

impl FromStr for PortRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("port range {s:?} is invalid (allowed: \"LO-HI\" with 1 <= LO <= HI <= 65535)")
        };
        let (lo, hi) = s.split_once('-').ok_or_else(bad)?;
        let lo: u16 = lo.trim().parse().map_err(|_| bad())?;
        let hi: u16 = hi.trim().parse().map_err(|_| bad())?;
        if lo == 0 || lo > hi {
            return Err(bad());
        }
        Ok(Self { lo, hi })
    }
}

impl TryFrom<String> for PortRange {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.lo, self.hi)
    }
}

/// `unique_root` (dnsmasq's `--tftp-unique-root`): a directory per client inside the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UniqueRoot {
    /// Every client is served from its root.
    #[default]
    Off,
    /// From `<root>/<client IP>/` when that directory exists, else from the root.
    Ip,
    /// From `<root>/<client MAC>/` (lowercase, dash-separated, from the kernel's ARP table)
    /// when the MAC is known and that directory exists, else from the root.
    Mac,
}

/// How block numbers continue after 65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RolloverPolicy {
    /// 65535 is followed by 0 (most clients).
    #[default]
    Zero,
    /// 65535 is followed by 1.
    One,
    /// No transfer may need more than 65535 blocks: larger downloads are refused up front,
    /// uploads are stopped at the limit (for clients that break at rollover).
    Refuse,
}

impl RolloverPolicy {
    /// The protocol core's form. Under `Refuse` no transfer reaches the wrap.
    pub fn to_proto(self) -> Rollover {
        match self {
            Self::Zero | Self::Refuse => Rollover::WrapToZero,
            Self::One => Rollover::WrapToOne,
        }
    }

    /// The most bytes a transfer may carry at `blksize` without wrapping (block 65535 must
    /// be the short last one), or `None` when wrapping is allowed.
    pub fn max_bytes(self, blksize: u16) -> Option<u64> {
        (self == Self::Refuse).then(|| 65535 * u64::from(blksize) - 1)
    }
}

/// Where the packet filter runs: eBPF socket filters, classic BPF, or the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum EbpfMode {
    /// No kernel filter; the rules run in the daemon.
    Off,
    /// eBPF when possible, else classic BPF, else the daemon; the reason is logged once.
    #[default]
    Auto,
    /// Refuse to start without the eBPF filters.
    Required,
    /// Classic BPF without trying eBPF (drops are counted without a reason), else the daemon.
    Cbpf,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per event.
    Json,
}

/// Where log records go (`log.target`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogTarget {
    /// The journal's native protocol when stderr is the journal (`JOURNAL_STREAM` names
    /// stderr's device and inode, as systemd sets it for a service), else stderr.
    #[default]
    Auto,
    /// Lines on stderr, whatever reads it.
    Stderr,
    /// Records with native fields to `/run/systemd/journal/socket`.
    Journald,
    /// RFC 3164 lines to the local syslog socket (`log.syslog_socket`).
    Syslog,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_size_bounds_are_rfc_2348() {
        assert!(BlockSize::try_from(8).is_ok() && BlockSize::try_from(65464).is_ok());
        for bad in [7, 65465, -1] {
            let err = BlockSize::try_from(bad).expect_err("out of range");
            assert!(err.contains("8..=65464"), "{err}");
        }
    }

    #[test]
    fn port_range_parses_and_rejects_nonsense() {
        assert_eq!(
            "50000-50100".parse(),
            Ok(PortRange {
                lo: 50000,
                hi: 50100
            })
        );
        assert_eq!("69-69".parse(), Ok(PortRange { lo: 69, hi: 69 }));
        for bad in ["", "1", "0-10", "10-5", "a-b", "1-70000"] {
            let err = bad.parse::<PortRange>().expect_err("invalid");
            assert!(err.contains("LO-HI"), "{bad:?}: {err}");
        }
    }
}
