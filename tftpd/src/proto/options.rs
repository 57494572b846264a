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
mod tests {
    use super::*;

    #[test]
    fn requested_names_are_matched_case_insensitively_before_negotiation() {
        let names: [&[u8]; 3] = [b"BlkSize", b"MULTICAST", b"tsize"];
        assert!(requested(names, OptionName::Blksize));
        assert!(requested(names, OptionName::Tsize));
        assert!(!requested(names, OptionName::Windowsize));
        assert!(requested_multicast(names));
        assert!(!requested_multicast([b"multicastx".as_slice()]));
        let opts: [(&[u8], &[u8]); 1] = [(b"WINDOWSIZE", b"4")];
        let n = negotiate(&opts, Direction::Read { size: None }, &limits()).expect("valid");
        assert!(n.accepted(OptionName::Windowsize));
        assert!(!n.accepted(OptionName::Blksize));
    }
    use proptest::prelude::*;

    fn limits() -> OptionLimits {
        OptionLimits {
            max_blksize: 8192,
            max_windowsize: 16,
            default_timeout: Duration::from_millis(1000),
            max_timeout: Duration::from_secs(255),
            max_upload_size: 1000,
            refuse: Vec::new(),
        }
    }

    fn neg(opts: &[(&str, &str)], dir: Direction) -> Result<Negotiated, OptionError> {
        let raw: Vec<(&[u8], &[u8])> = opts
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
            .collect();
        negotiate(&raw, dir, &limits())
    }

    const READ: Direction = Direction::Read { size: Some(4242) };

    #[test]
    fn refused_options_are_left_out_of_the_oack_and_the_rest_negotiate() {
        let mut l = limits();
        l.refuse = vec!["blksize".parse().expect("a name"), OptionName::Tsize];
        let raw: [(&[u8], &[u8]); 3] = [
            (b"BLKSIZE", b"1428"),
            (b"tsize", b"0"),
            (b"windowsize", b"4"),
        ];
        let n = negotiate(&raw, READ, &l).expect("negotiates");
        assert_eq!(n.blksize, 512, "refused blksize: the RFC 1350 default");
        assert_eq!(n.tsize, None, "refused tsize: not answered");
        assert_eq!(n.windowsize, 4, "the others still negotiate");
        assert_eq!(
            n.oack().as_deref(),
            Some(&b"\x00\x06windowsize\x004\x00"[..]),
            "only the accepted option is acknowledged"
        );
        let e = "mtu".parse::<OptionName>().expect_err("unknown option");
        assert!(e.contains("blksize, timeout, tsize or windowsize"), "{e}");
    }

    #[test]
    fn no_options_means_rfc1350_defaults_and_no_oack() {
        let n = neg(&[], READ).expect("no options must negotiate");
        assert_eq!((n.blksize, n.windowsize), (512, 1), "RFC 1350 defaults");
        assert_eq!(n.oack(), None, "no OACK without options");
    }

    #[test]
    fn accepted_options_are_echoed_in_request_order_with_canonical_names() {
        let n = neg(
            &[
                ("TSIZE", "0"),
                ("BlkSize", "1428"),
                ("windowsize", "8"),
                ("timeout", "3"),
            ],
            READ,
        )
        .expect("valid options");
        assert_eq!(n.blksize, 1428);
        assert_eq!(n.windowsize, 8);
        assert_eq!(n.timeout, Duration::from_secs(3));
        assert_eq!(n.tsize, Some(4242), "RRQ tsize answers the file size");
        assert_eq!(
            n.oack().expect("an OACK"),
            b"\x00\x06tsize\x004242\x00blksize\x001428\x00windowsize\x008\x00timeout\x003\x00"
        );
    }

    #[test]
    fn oversized_blksize_and_windowsize_are_clamped_to_the_limits() {
        let n = neg(&[("blksize", "65464"), ("windowsize", "65535")], READ).expect("clamped");
        assert_eq!(
            (n.blksize, n.windowsize),
            (8192, 16),
            "clamped to the configured caps"
        );
        let n = neg(&[("blksize", "99999999")], READ).expect("clamped");
        assert_eq!(n.blksize, 8192, "a huge blksize is clamped, not refused");
    }

    #[test]
    fn invalid_values_are_refused_with_error_8() {
        for (name, value) in [
            ("blksize", "7"),
            ("blksize", "abc"),
            ("blksize", ""),
            ("blksize", "-1"),
            ("blksize", "123456789012345678901"),
            ("timeout", "0"),
            ("timeout", "256"),
            ("windowsize", "0"),
            ("windowsize", "65536"),
            ("tsize", "x"),
        ] {
            let err = neg(&[(name, value)], READ).expect_err("invalid value must be refused");
            assert_eq!(
                err.wire_error().code,
                ErrorCode::OptionRefused,
                "{name}={value:?} must get ERROR 8"
            );
        }
    }

    #[test]
    fn repeated_option_is_refused_case_insensitively() {
        let err = neg(&[("blksize", "512"), ("BLKSIZE", "1024")], READ).expect_err("repeat");
        assert!(matches!(err, OptionError::Repeated { .. }), "got {err:?}");
        assert_eq!(err.wire_error().code, ErrorCode::OptionRefused);
    }

    #[test]
    fn a_timeout_over_the_servers_limit_is_left_out_and_the_servers_own_applies() {
        let raw: Vec<(&[u8], &[u8])> = vec![(b"timeout", b"255"), (b"blksize", b"1024")];
        let l = OptionLimits {
            max_timeout: Duration::from_secs(5),
            ..limits()
        };
        let n = negotiate(&raw, READ, &l).expect("valid");
        assert_eq!(
            n.timeout, l.default_timeout,
            "255 s is the client's wish, not ours"
        );
        assert_eq!(n.accepted, vec![("blksize", "1024".to_string())]);
        let raw: Vec<(&[u8], &[u8])> = vec![(b"timeout", b"5")];
        let n = negotiate(&raw, READ, &l).expect("valid");
        assert_eq!(
            n.timeout,
            Duration::from_secs(5),
            "up to the limit: honoured"
        );
        assert_eq!(n.accepted, vec![("timeout", "5".to_string())]);
    }

    #[test]
    fn unknown_options_are_ignored() {
        let n = neg(&[("utimeout", "10000")], READ).expect("ignored");
        assert_eq!(n.oack(), None, "nothing we know was asked for");
    }

    #[test]
    fn multicast_is_noted_not_answered_and_drops_windowsize_when_served() {
        let n = neg(
            &[("MULTICAST", ""), ("windowsize", "8"), ("blksize", "1024")],
            READ,
        )
        .expect("valid");
        assert!(n.multicast, "asked for, case-insensitively");
        assert!(
            n.accepted.iter().all(|(k, _)| *k != "multicast"),
            "the group answers it, not negotiate"
        );
        let m = n.for_multicast();
        assert_eq!(m.windowsize, 1, "a group is lock-step");
        assert_eq!(m.accepted, vec![("blksize", "1024".to_string())]);
        let n = neg(&[("multicast", "1")], READ).expect("valid");
        assert!(
            !n.multicast,
            "RFC 2090's value is empty; another is not the option"
        );
        let e = neg(&[("multicast", ""), ("Multicast", "")], READ).expect_err("repeat");
        assert!(matches!(e, OptionError::Repeated { .. }));
    }

    #[test]
    fn netascii_read_leaves_tsize_unanswered() {
        let n = neg(
            &[("tsize", "0"), ("blksize", "1024")],
            Direction::Read { size: None },
        )
        .expect("valid");
        assert_eq!(n.tsize, None);
        assert_eq!(n.accepted, vec![("blksize", "1024".to_string())]);
    }

    #[test]
    fn write_tsize_is_checked_against_the_upload_limit() {
        let n = neg(&[("tsize", "1000")], Direction::Write).expect("at the limit");
        assert_eq!(n.tsize, Some(1000));
        let err = neg(&[("tsize", "1001")], Direction::Write).expect_err("over the limit");
        assert_eq!(
            err.wire_error().code,
            ErrorCode::DiskFull,
            "ERROR 3 for a too-large upload"
        );
    }

    proptest! {
        #[test]
        fn negotiated_values_always_lie_within_limits(
            opts in proptest::collection::vec(
                (prop_oneof![Just("blksize"), Just("windowsize"), Just("timeout"), Just("tsize"), Just("x")],
                 "[0-9]{0,8}"), 0..6)
        ) {
            let raw: Vec<(&[u8], &[u8])> =
                opts.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())).collect();
            if let Ok(n) = negotiate(&raw, Direction::Write, &limits()) {
                prop_assert!((8..=8192).contains(&n.blksize));
                prop_assert!((1..=16).contains(&n.windowsize));
                prop_assert!(n.timeout >= Duration::from_secs(1) && n.timeout <= Duration::from_secs(255)
                    || n.timeout == limits().default_timeout);
            }
        }
    }
}
