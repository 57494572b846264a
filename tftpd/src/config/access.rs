//! `[access]`: which clients the daemon serves at all.

use std::net::IpAddr;

use serde::Deserialize;

use super::SourcePrefix;

/// `[access]`: client prefixes to serve and to refuse. A request from a refused client gets
/// no answer (an ERROR would make the server a reflector for spoofed sources) and is counted
/// as `outcome="client_refused"`. With XDP loaded, `deny` is also dropped in the kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessConfig {
    /// Serve only these prefixes; empty: every client.
    #[serde(default)]
    pub allow: Vec<SourcePrefix>,
    /// Never serve these prefixes (wins over `allow`).
    #[serde(default)]
    pub deny: Vec<SourcePrefix>,
}

impl AccessConfig {
    /// Whether a client at `ip` is served.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let allowed = self.allow.is_empty() || self.allow.iter().any(|p| p.contains(ip));
        allowed && !self.deny.iter().any(|p| p.contains(ip))
    }
}

impl super::Config {
    /// Whether the daemon serves a client at `ip`: `[access]` permits it and `ebpf.xdp_deny`
    /// does not list it. XDP drops `xdp_deny` in the kernel where it is attached; the listener
    /// asks this too, so turning XDP off (or a frame it passes) changes speed, never policy.
    pub fn serves(&self, ip: IpAddr) -> bool {
        self.access.permits(ip) && !self.ebpf.xdp_deny.iter().any(|p| p.contains(ip))
    }
}

/// `[[client_roots]]`: a root for clients in some prefixes (dnsmasq's per-client roots).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientRoot {
    /// The clients this root is for.
    pub clients: Vec<SourcePrefix>,
    /// Their root; relative paths are taken from the config file's directory.
    pub root: std::path::PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefixes(list: &[&str]) -> Vec<SourcePrefix> {
        list.iter().map(|p| p.parse().expect("prefix")).collect()
    }

    #[test]
    fn empty_allows_all_and_deny_wins() {
        let open = AccessConfig::default();
        assert!(open.permits("203.0.113.9".parse().expect("ip")));
        let a = AccessConfig {
            allow: prefixes(&["10.0.0.0/8", "2001:db8::/32"]),
            deny: prefixes(&["10.9.0.0/16"]),
        };
        for (ip, served) in [
            ("10.1.1.1", true),
            ("::ffff:10.1.1.1", true),
            ("10.9.1.1", false),
            ("::ffff:10.9.1.1", false),
            ("192.0.2.1", false),
            ("2001:db8::7", true),
        ] {
            assert_eq!(a.permits(ip.parse().expect("ip")), served, "{ip}");
        }
    }

    #[test]
    fn xdp_deny_is_refused_without_xdp_too() {
        let c = super::super::Config::from_toml_str(
            "[access]\ndeny = [\"10.9.0.0/16\"]\n[ebpf]\nmode = \"off\"\n\
             xdp_deny = [\"192.0.2.0/24\", \"2001:db8:7::/48\"]\n",
            None,
        )
        .expect("config");
        for (ip, served) in [
            ("198.51.100.1", true),
            ("10.9.1.1", false),
            ("192.0.2.9", false),
            ("::ffff:192.0.2.9", false),
            ("2001:db8:7:1::5", false),
            ("2001:db8:8::5", true),
        ] {
            assert_eq!(c.serves(ip.parse().expect("ip")), served, "{ip}");
        }
    }
}
