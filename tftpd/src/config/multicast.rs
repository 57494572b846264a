//! `[multicast]`: RFC 2090 multicast downloads: whether they are offered, the group
//! addresses and ports handed out, the TTL and interface of the group traffic, and what to
//! do when a master client goes quiet. atftpd's `--mcast-addr`, `--mcast-port`,
//! `--mcast-ttl` and `--mcast-switch-client` map here.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::Deserialize;

/// `[multicast]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MulticastConfig {
    /// Answer the `multicast` option of read requests; off: it is ignored (unicast).
    #[serde(default)]
    pub enabled: bool,
    /// Group addresses handed out: "A.B.C.D" or a last-octet range "A.B.C.D-E" (atftpd's
    /// `--mcast-addr` form), all in 224.0.0.0/4.
    #[serde(default = "default_address")]
    pub address: GroupAddresses,
    /// Group ports handed out: "PORT" or "LO-HI".
    #[serde(default = "default_port")]
    pub port: GroupPorts,
    /// IP TTL of the group's DATA (`IP_MULTICAST_TTL`); 1 keeps it on the local link.
    #[serde(default = "default_ttl")]
    pub ttl: u8,
    /// The IPv4 address of the interface group DATA leaves by (`IP_MULTICAST_IF`); absent:
    /// the address the request arrived on.
    #[serde(default)]
    pub interface: Option<Ipv4Addr>,
    /// When the master client misses a timeout and others wait, make the next one master at
    /// once instead of retransmitting to the silent one (atftpd `--mcast-switch-client`).
    #[serde(default)]
    pub switch_client: bool,
}

impl Default for MulticastConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            address: default_address(),
            port: default_port(),
            ttl: default_ttl(),
            interface: None,
            switch_client: false,
        }
    }
}

fn default_address() -> GroupAddresses {
    GroupAddresses {
        base: Ipv4Addr::new(239, 255, 0, 1),
        last: 254,
    }
}
fn default_port() -> GroupPorts {
    // The registered tftp-mcast port, as RFC 2090 recommends.
    GroupPorts { lo: 1758, hi: 1758 }
}
fn default_ttl() -> u8 {
    1
}

impl MulticastConfig {
    /// Every (address, port) a group may use, in the order they are handed out.
    pub fn groups(&self) -> impl Iterator<Item = (Ipv4Addr, u16)> + '_ {
        let [a, b, c, first] = self.address.base.octets();
        (first..=self.address.last).flat_map(move |d| {
            (self.port.lo..=self.port.hi).map(move |p| (Ipv4Addr::new(a, b, c, d), p))
        })
    }
}

impl super::Config {
    /// `[multicast]`'s value rules.
    pub(super) fn validate_multicast(&self) -> Result<(), super::ConfigError> {
        let m = &self.multicast;
        if m.ttl == 0 {
            return Err(super::ConfigError::Invalid {
                key: "multicast.ttl",
                value: "0".into(),
                allowed: "1..=255",
            });
        }
        if let Some(i) = m.interface
            && (i.is_multicast() || i.is_broadcast())
        {
            return Err(super::ConfigError::Invalid {
                key: "multicast.interface",
                value: i.to_string(),
                allowed: "the IPv4 address of a local interface",
            });
        }
        Ok(())
    }
}

/// Group addresses: `base` up to the last octet `last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct GroupAddresses {
    /// The first address.
    pub base: Ipv4Addr,
    /// The last address's last octet.
    pub last: u8,
}

impl FromStr for GroupAddresses {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "multicast address {s:?} is invalid (allowed: \"A.B.C.D\" or \"A.B.C.D-E\" in 224.0.0.0/4, D <= E)"
            )
        };
        let (addr, last) = match s.split_once('-') {
            Some((a, e)) => (a.trim(), Some(e.trim())),
            None => (s.trim(), None),
        };
        let base: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let first = base.octets()[3];
        let last = match last {
            Some(e) => e.parse::<u8>().map_err(|_| bad())?,
            None => first,
        };
        if !base.is_multicast() || last < first {
            return Err(bad());
        }
        Ok(Self { base, last })
    }
}

impl TryFrom<String> for GroupAddresses {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl fmt::Display for GroupAddresses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.last == self.base.octets()[3] {
            write!(f, "{}", self.base)
        } else {
            write!(f, "{}-{}", self.base, self.last)
        }
    }
}

/// Group ports: `lo..=hi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct GroupPorts {
    /// First port.
    pub lo: u16,
    /// Last port.
    pub hi: u16,
}

impl FromStr for GroupPorts {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "multicast port {s:?} is invalid (allowed: \"PORT\" or \"LO-HI\" with 1 <= LO <= HI <= 65535)"
            )
        };
        let (lo, hi) = s.split_once('-').unwrap_or((s, s));
        let lo: u16 = lo.trim().parse().map_err(|_| bad())?;
        let hi: u16 = hi.trim().parse().map_err(|_| bad())?;
        if lo == 0 || lo > hi {
            return Err(bad());
        }
        Ok(Self { lo, hi })
    }
}

impl TryFrom<String> for GroupPorts {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_ports_parse_in_atftpd_form_and_enumerate_as_pairs() {
        let a: GroupAddresses = "239.1.2.10-12".parse().expect("a range");
        assert_eq!(a.to_string(), "239.1.2.10-12");
        let p: GroupPorts = "1758-1759".parse().expect("a range");
        let m = MulticastConfig {
            address: a,
            port: p,
            ..MulticastConfig::default()
        };
        let all: Vec<_> = m.groups().collect();
        assert_eq!(all.len(), 6, "3 addresses x 2 ports");
        assert_eq!(all[0], (Ipv4Addr::new(239, 1, 2, 10), 1758));
        assert_eq!(all[5], (Ipv4Addr::new(239, 1, 2, 12), 1759));
        let one: GroupAddresses = "224.0.1.1".parse().expect("one address");
        assert_eq!((one.base.octets()[3], one.last), (1, 1));
        assert_eq!(
            "1758".parse::<GroupPorts>(),
            Ok(GroupPorts { lo: 1758, hi: 1758 })
        );
        for bad in ["10.0.0.1", "239.0.0.9-3", "239.0.0.1-300", "x", ""] {
            let e = bad.parse::<GroupAddresses>().expect_err(bad);
            assert!(e.contains("224.0.0.0/4"), "{e}");
        }
        for bad in ["0", "9-8", "x", "70000"] {
            let e = bad.parse::<GroupPorts>().expect_err(bad);
            assert!(e.contains("LO-HI"), "{e}");
        }
    }
}
