//! Client address prefixes, as the config writes them.

use std::net::IpAddr;
use std::str::FromStr;

use serde::Deserialize;

/// A client address prefix (`access.allow`, `access.deny`, `ebpf.xdp_deny`): `192.0.2.0/24`,
/// `2001:db8::/32`, or an address alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct SourcePrefix {
    addr: IpAddr,
    len: u8,
}

impl SourcePrefix {
    /// Whether `ip` lies in the prefix. An IPv4-mapped IPv6 address (how IPv4 clients arrive
    /// on a dual-stack socket) matches as the IPv4 address it is.
    pub fn contains(self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                u32::from(net) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }

    /// Whether every address of `inner` lies in this prefix (an IPv4 prefix never covers an
    /// IPv6 one, nor the reverse): how `--check-config` finds a list entry an earlier one
    /// already holds.
    pub fn covers(self, inner: Self) -> bool {
        self.len <= inner.len && self.contains(inner.addr)
    }

    /// The key for the XDP deny list: IPv4 as IPv4-mapped IPv6, with the prefix length in
    /// those 128 bits.
    pub fn mapped(self) -> (u32, [u8; 16]) {
        match self.addr {
            IpAddr::V4(a) => (u32::from(self.len) + 96, a.to_ipv6_mapped().octets()),
            IpAddr::V6(a) => (u32::from(self.len), a.octets()),
        }
    }
}

impl std::fmt::Display for SourcePrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for SourcePrefix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?}: expected ADDRESS or ADDRESS/PREFIX-LENGTH, e.g. 192.0.2.0/24");
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len {
            Some(l) => l.parse::<u8>().ok().filter(|l| *l <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Self { addr, len })
    }
}

impl TryFrom<String> for SourcePrefix {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_parse_and_map() {
        let p: SourcePrefix = "192.0.2.0/24".parse().expect("v4 prefix");
        assert_eq!(
            p.mapped(),
            (
                120,
                [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 0]
            )
        );
        let host: SourcePrefix = "2001:db8::1".parse().expect("v6 address");
        assert_eq!(host.mapped().0, 128, "an address alone is a /128");
        assert_eq!(host.to_string(), "2001:db8::1/128");
        for bad in [
            "192.0.2.0/33",
            "2001:db8::/129",
            "10.0.0.0/",
            "example.com",
            "1.2.3.4/x",
        ] {
            let e = bad.parse::<SourcePrefix>().expect_err(bad);
            assert!(e.contains("ADDRESS/PREFIX-LENGTH"), "{bad}: {e}");
        }
    }

    #[test]
    fn containment_follows_the_prefix_and_unmaps_ipv4() {
        let p: SourcePrefix = "10.1.0.0/16".parse().expect("prefix");
        for (ip, inside) in [
            ("10.1.2.3", true),
            ("10.2.0.1", false),
            ("::ffff:10.1.200.1", true),
            ("::ffff:10.2.0.1", false),
            ("2001:db8::1", false),
        ] {
            assert_eq!(p.contains(ip.parse().expect("ip")), inside, "{ip}");
        }
        let all: SourcePrefix = "0.0.0.0/0".parse().expect("all v4");
        assert!(all.contains("192.0.2.1".parse().expect("ip")));
        let v6: SourcePrefix = "2001:db8::/32".parse().expect("v6");
        assert!(v6.contains("2001:db8:1::5".parse().expect("ip")));
        assert!(!v6.contains("2001:db9::5".parse().expect("ip")));
        let host: SourcePrefix = "192.0.2.7".parse().expect("host");
        assert!(host.contains("192.0.2.7".parse().expect("ip")));
        assert!(!host.contains("192.0.2.8".parse().expect("ip")));
    }
}
