//! The XDP keys of `[ebpf]`: where to attach, how, and the deny list and rate limit the XDP
//! program enforces.

use std::net::IpAddr;
use std::str::FromStr;

use serde::Deserialize;

/// How to attach XDP (`ebpf.xdp_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XdpMode {
    /// Native (in the driver) where the driver supports it, else generic.
    #[default]
    Auto,
    /// In the driver only; attaching fails on a driver without XDP support.
    Native,
    /// In the kernel's stack (`XDP_FLAGS_SKB_MODE`): works on every interface, costs more.
    Generic,
}

impl XdpMode {
    /// The label for logs.
    pub fn label(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Native => "native",
            Self::Generic => "generic",
        }
    }
}

/// A source prefix for `ebpf.xdp_deny`: `192.0.2.0/24`, `2001:db8::/32`, or an address alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct SourcePrefix {
    addr: IpAddr,
    len: u8,
}

impl SourcePrefix {
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

/// Checks an interface name as the kernel will (`IFNAMSIZ` is 16 with the NUL).
fn valid_interface_name(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && !name.contains(['/', ':', ' ', '\t', '\n', '\0'])
        && name != "."
        && name != ".."
}

impl super::Config {
    /// The XDP keys' cross-field rules.
    pub(super) fn validate_xdp(&self) -> Result<(), super::ConfigError> {
        let e = &self.ebpf;
        let invalid = |key, value: String, allowed| super::ConfigError::Invalid {
            key,
            value,
            allowed,
        };
        if let Some(bad) = e.xdp_interfaces.iter().find(|n| !valid_interface_name(n)) {
            return Err(invalid(
                "ebpf.xdp_interfaces",
                format!("{bad:?}"),
                "interface names of 1 to 15 characters without '/', ':' or spaces",
            ));
        }
        let kernel_ebpf = matches!(e.mode, super::EbpfMode::Auto | super::EbpfMode::Required);
        if !e.xdp_interfaces.is_empty() && !kernel_ebpf {
            return Err(invalid(
                "ebpf.xdp_interfaces",
                format!("{:?}", e.xdp_interfaces),
                "[] unless ebpf.mode is \"auto\" or \"required\" (XDP is eBPF)",
            ));
        }
        if e.xdp_rate_limit > 0 && e.xdp_rate_burst == 0 {
            return Err(invalid(
                "ebpf.xdp_rate_burst",
                "0".into(),
                "1 or more when ebpf.xdp_rate_limit is set",
            ));
        }
        if e.xdp_rate_limit > 1_000_000_000 {
            return Err(invalid(
                "ebpf.xdp_rate_limit",
                e.xdp_rate_limit.to_string(),
                "0 (off) ..= 1000000000 requests per second",
            ));
        }
        Ok(())
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
    fn interface_names_follow_the_kernel() {
        assert!(valid_interface_name("eth0") && valid_interface_name("veth-tftp-1234"));
        for bad in ["", "a/b", "sixteen-chars-xx", "..", "has space"] {
            assert!(!valid_interface_name(bad), "{bad:?}");
        }
    }
}
