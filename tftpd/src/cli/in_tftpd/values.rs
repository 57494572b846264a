//! The values of in.tftpd's flags: `-a`'s address, `-R`'s range, `-r`'s option names, and
//! in.tftpd's numeric range checks.

use std::net::IpAddr;

use crate::config::PortRange;

/// `-4` or `-6`: the only address family to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `-4`, `--ipv4`.
    V4,
    /// `-6`, `--ipv6`.
    V6,
}

/// The host part of `-a`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// Empty (`-a :69`): every address.
    Any,
    /// A numeric address.
    Ip(IpAddr),
    /// A name, resolved when the configuration is built.
    Name(String),
}

/// `-a [ADDRESS][:PORT]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// Where to listen.
    pub host: Host,
    /// The port (69 when left out or given as `tftp`).
    pub port: u16,
}

/// An option `-r` refuses, as in.tftpd names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// An option tftpd negotiates; refused through `protocol.refuse_options`.
    Negotiated(crate::config::OptionName),
    /// `blksize2`, `utimeout` or `rollover`: in.tftpd extensions tftpd never agrees to.
    NeverAgreed(&'static str),
}

/// A decimal number in `range` (in.tftpd's `strtoul` with its range check).
pub(super) fn number_in<T: std::str::FromStr + PartialOrd>(
    v: &str,
    range: std::ops::RangeInclusive<T>,
) -> Option<T> {
    v.parse().ok().filter(|n| range.contains(n))
}

/// `[ADDRESS][:PORT]`, IPv6 in brackets, as in.tftpd's `split_port` reads it.
pub(super) fn parse_address(s: &str) -> Result<Address, String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (inside, after) = rest
            .split_once(']')
            .ok_or("an IPv6 address needs its closing ]")?;
        let ip: std::net::Ipv6Addr = inside
            .parse()
            .map_err(|_| format!("{inside:?} is not an IPv6 address"))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("expected :PORT after ]")?),
        };
        (Host::Ip(IpAddr::V6(ip)), port)
    } else if s.matches(':').count() > 1 {
        return Err("numeric IPv6 addresses need to be enclosed in [], e.g. [::1]:69".into());
    } else {
        let (host, port) = match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        };
        let host = if host.is_empty() {
            Host::Any
        } else if let Ok(v4) = host.parse::<std::net::Ipv4Addr>() {
            Host::Ip(IpAddr::V4(v4))
        } else {
            Host::Name(host.to_string())
        };
        (host, port)
    };
    let port = match port {
        None | Some("" | "tftp") => 69,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("port {p:?}: expected 1..=65535 or \"tftp\""))?,
    };
    Ok(Address { host, port })
}

/// `LO:HI`, as in.tftpd checks it (`LO <= HI < 65535`), and tftpd's `LO >= 1`.
pub(super) fn parse_port_range(s: &str) -> Result<PortRange, String> {
    let allowed = "expected LO:HI with 1 <= LO <= HI <= 65534";
    let (lo, hi) = s.split_once(':').ok_or(allowed)?;
    let lo: u16 = lo.parse().map_err(|_| allowed)?;
    let hi: u16 = hi.parse().map_err(|_| allowed)?;
    if hi == u16::MAX {
        return Err(allowed.into());
    }
    format!("{lo}-{hi}").parse().map_err(|_| allowed.into())
}

pub(super) fn parse_refused(s: &str) -> Option<Refused> {
    let lower = s.to_ascii_lowercase();
    match lower.as_str() {
        "blksize2" => Some(Refused::NeverAgreed("blksize2")),
        "utimeout" => Some(Refused::NeverAgreed("utimeout")),
        "rollover" => Some(Refused::NeverAgreed("rollover")),
        other => other.parse().ok().map(Refused::Negotiated),
    }
}
