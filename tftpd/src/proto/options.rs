//! Option negotiation: RFC 2347 (framework), 2348 (`blksize`), 2349 (`timeout`, `tsize`)
//! and 7440 (`windowsize`); RFC 2090's `multicast` is only noted here (its answer depends on
//! the group the server puts the client in; see `proto::multicast`).
//!
//! Pure: the server hands in the request's options, what it knows about the file and its
//! limits, and gets back the values to use and the OACK to send (or an error to send).

use std::time::Duration;

use super::error::{ErrorCode, WireError};
use super::packet::OP_OACK;

/// Block size when none is negotiated (RFC 1350).
pub const DEFAULT_BLKSIZE: u16 = 512;
/// Smallest block size a client may ask for (RFC 2348).
pub const MIN_BLKSIZE: u16 = 8;
/// Largest block size a client may ask for (RFC 2348: 65464 keeps the datagram in 65507).
pub const MAX_BLKSIZE: u16 = 65464;

/// The server's side of the negotiation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionLimits {
    /// The largest block size we agree to; larger requests are answered with this.
    pub max_blksize: u16,
    /// The largest window we agree to; larger requests are answered with this.
    pub max_windowsize: u16,
    /// Retransmit timeout when the client does not negotiate one.
    pub default_timeout: Duration,
    /// The longest `timeout` a client may choose (`protocol.max_client_timeout_secs`): a
    /// larger one is left out of the OACK (RFC 2349 lets a server ignore an option) and the
    /// server's own timeout applies, so a forged request cannot hold its transfer open
    /// for minutes.
    pub max_timeout: Duration,
    /// The largest upload we accept, checked against a WRQ's `tsize` up front.
    pub max_upload_size: u64,
    /// Options never acknowledged (tftp-hpa's `--refuse`): the client goes on without them.
    pub refuse: Vec<OptionName>,
}

/// Which way the data flows, with what the server knows up front.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// An RRQ. `size` is the transfer size in bytes when the server can state it exactly
    /// (octet mode); `None` leaves `tsize` unanswered (netascii: the wire size differs
    /// from the file size, and RFC 2347 lets a server ignore an option).
    Read {
        /// The exact size on the wire, if known.
        size: Option<u64>,
    },
    /// A WRQ.
    Write,
}

/// The result of a successful negotiation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Block size in bytes.
    pub blksize: u16,
    /// Blocks per window (1 = lock-step, RFC 1350).
    pub windowsize: u16,
    /// Retransmit timeout.
    pub timeout: Duration,
    /// The transfer size the client announced (WRQ) or the server answered (RRQ).
    pub tsize: Option<u64>,
    /// Options accepted, in the client's order, as (name, value) for the OACK. Empty: no
    /// OACK is sent and the transfer starts as in RFC 1350.
    pub accepted: Vec<(&'static str, String)>,
    /// The request asked for RFC 2090 multicast (with the empty value the RFC defines). Not
    /// in `accepted`: the shell decides whether a group can serve it.
    pub multicast: bool,
}

impl Negotiated {
    /// The values used when the request carries no options.
    pub fn defaults(limits: &OptionLimits) -> Self {
        Self {
            blksize: DEFAULT_BLKSIZE,
            windowsize: 1,
            timeout: limits.default_timeout,
            tsize: None,
            accepted: Vec::new(),
            multicast: false,
        }
    }

    /// The negotiation as a multicast group serves it: lock-step, so `windowsize` is left
    /// unanswered (RFC 7440: the client then uses 1).
    pub fn for_multicast(mut self) -> Self {
        self.windowsize = 1;
        self.accepted
            .retain(|(name, _)| *name != OptionName::Windowsize.name());
        self
    }

    /// True when `option` was negotiated (it is answered in the OACK).
    pub fn accepted(&self, option: OptionName) -> bool {
        self.accepted.iter().any(|(name, _)| *name == option.name())
    }

    /// The encoded OACK, or `None` when no option was accepted.
    pub fn oack(&self) -> Option<Vec<u8>> {
        if self.accepted.is_empty() {
            return None;
        }
        let mut out = OP_OACK.to_be_bytes().to_vec();
        for (name, value) in &self.accepted {
            out.extend_from_slice(name.as_bytes());
            out.push(0);
            out.extend_from_slice(value.as_bytes());
            out.push(0);
        }
        Some(out)
    }
}

/// Why a request's options were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    /// A known option's value is not a number in its valid range.
    #[error("option {name} has invalid value {value:?} (allowed: {allowed})")]
    Invalid {
        /// The option's name.
        name: &'static str,
        /// The value sent, lossily decoded.
        value: String,
        /// The valid range.
        allowed: &'static str,
    },
    /// The same option appears twice.
    #[error("option {name:?} appears more than once")]
    Repeated {
        /// The option's name, lossily decoded.
        name: String,
    },
    /// A WRQ announced a size over the upload limit.
    #[error("announced upload of {size} bytes exceeds the limit of {limit} bytes")]
    UploadTooLarge {
        /// The announced size.
        size: u64,
        /// The configured limit.
        limit: u64,
    },
}

impl OptionError {
    /// The ERROR to send: 8 for a refused negotiation (RFC 2347), 3 for a too-large upload
    /// (RFC 2349 §tsize).
    pub fn wire_error(&self) -> WireError {
        match self {
            Self::Invalid { .. } => {
                WireError::new(ErrorCode::OptionRefused, "invalid option value")
            }
            Self::Repeated { .. } => WireError::new(ErrorCode::OptionRefused, "repeated option"),
            Self::UploadTooLarge { .. } => WireError::new(ErrorCode::DiskFull, "file too large"),
        }
    }
}

/// The options we understand. Deserializes from its name (`protocol.refuse_options`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum OptionName {
    /// RFC 2348.
    Blksize,
    /// RFC 2349.
    Timeout,
    /// RFC 2349.
    Tsize,
    /// RFC 7440.
    Windowsize,
}

impl TryFrom<String> for OptionName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl std::str::FromStr for OptionName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::from_name(s.as_bytes())
            .ok_or_else(|| format!("{s:?}: expected blksize, timeout, tsize or windowsize"))
    }
}

impl OptionName {
    fn from_name(name: &[u8]) -> Option<Self> {
        // RFC 2347: option names are case-insensitive.
        [
            (Self::Blksize, "blksize"),
            (Self::Timeout, "timeout"),
            (Self::Tsize, "tsize"),
            (Self::Windowsize, "windowsize"),
        ]
        .into_iter()
        .find(|(_, n)| name.eq_ignore_ascii_case(n.as_bytes()))
        .map(|(k, _)| k)
    }

    /// The option's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Self::Blksize => "blksize",
            Self::Timeout => "timeout",
            Self::Tsize => "tsize",
            Self::Windowsize => "windowsize",
        }
    }

    fn allowed(self) -> &'static str {
        match self {
            Self::Blksize => "8..=65464",
            Self::Timeout => "1..=255 seconds",
            Self::Tsize => "a decimal byte count",
            Self::Windowsize => "1..=65535",
        }
    }
}

/// True when a request's option names (as sent) include `option`, before any negotiation:
/// RFC 2347 names are case-insensitive.
pub fn requested<'a>(names: impl IntoIterator<Item = &'a [u8]>, option: OptionName) -> bool {
    names
        .into_iter()
        .any(|n| OptionName::from_name(n) == Some(option))
}

/// True when a request's option names include RFC 2090's `multicast` (whatever its value:
/// the negotiation decides whether it is that option).
pub fn requested_multicast<'a>(names: impl IntoIterator<Item = &'a [u8]>) -> bool {
    names
        .into_iter()
        .any(|n| n.eq_ignore_ascii_case(super::multicast::OPTION.as_bytes()))
}

/// Negotiates a request's options. Unknown options are ignored (RFC 2347 §Negotiation).
pub fn negotiate(
    options: &[(&[u8], &[u8])],
    direction: Direction,
    limits: &OptionLimits,
) -> Result<Negotiated, OptionError> {
    let mut out = Negotiated::defaults(limits);
    let mut seen: Vec<&[u8]> = Vec::with_capacity(options.len());
    for &(name, value) in options {
        if seen.iter().any(|s| s.eq_ignore_ascii_case(name)) {
            return Err(OptionError::Repeated {
                name: String::from_utf8_lossy(name).into_owned(),
            });
        }
        seen.push(name);
        if name.eq_ignore_ascii_case(super::multicast::OPTION.as_bytes()) {
            // RFC 2090: the value is the empty string; anything else is not that option.
            out.multicast = value.is_empty();
            continue;
        }
        let Some(known) = OptionName::from_name(name) else {
            continue;
        };
        if limits.refuse.contains(&known) {
            continue;
        }
        let invalid = || OptionError::Invalid {
            name: known.name(),
            value: String::from_utf8_lossy(value).into_owned(),
            allowed: known.allowed(),
        };
        let number = parse_decimal(value).ok_or_else(invalid)?;
        let answer = match known {
            OptionName::Blksize => {
                if number < u64::from(MIN_BLKSIZE) {
                    return Err(invalid());
                }
                // RFC 2348: the server may answer with a smaller size; never a larger one.
                let cap = limits.max_blksize.min(MAX_BLKSIZE);
                out.blksize = number.min(u64::from(cap)) as u16;
                out.blksize.to_string()
            }
            OptionName::Timeout => {
                if !(1..=255).contains(&number) {
                    return Err(invalid());
                }
                if Duration::from_secs(number) > limits.max_timeout {
                    continue;
                }
                out.timeout = Duration::from_secs(number);
                number.to_string()
            }
            OptionName::Windowsize => {
                if !(1..=65535).contains(&number) {
                    return Err(invalid());
                }
                // RFC 7440 §4: the server may answer with a smaller window.
                out.windowsize = number.min(u64::from(limits.max_windowsize.max(1))) as u16;
                out.windowsize.to_string()
            }
            OptionName::Tsize => match direction {
                Direction::Read { size: Some(size) } => {
                    out.tsize = Some(size);
                    size.to_string()
                }
                Direction::Read { size: None } => continue,
                Direction::Write => {
                    if number > limits.max_upload_size {
                        return Err(OptionError::UploadTooLarge {
                            size: number,
                            limit: limits.max_upload_size,
                        });
                    }
                    out.tsize = Some(number);
                    number.to_string()
                }
            },
        };
        out.accepted.push((known.name(), answer));
    }
    Ok(out)
}

/// Parses a non-empty string of ASCII digits (at most 20, so it fits a u64 check).
fn parse_decimal(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 20 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

#[cfg(test)]
mod tests;
