//! `[ebpf]`: the kernel packet filter, where its counter maps are pinned, and the XDP keys
//! (their types are in `xdp.rs`) with their defaults.

use std::path::PathBuf;

use serde::Deserialize;

use super::{EbpfMode, SourcePrefix, XdpMode};

/// `[ebpf]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EbpfConfig {
    /// off, auto or required.
    #[serde(default)]
    pub mode: EbpfMode,
    /// Where the counter maps are pinned; one directory per daemon on a host.
    #[serde(default = "default_pin_dir")]
    pub pin_dir: PathBuf,
    /// Interfaces to attach the XDP program to; empty: no XDP.
    #[serde(default)]
    pub xdp_interfaces: Vec<String>,
    /// Native, generic, or auto (native where the driver can).
    #[serde(default)]
    pub xdp_mode: XdpMode,
    /// Requests per second each source may send to the listening ports (XDP); 0: no limit.
    #[serde(default)]
    pub xdp_rate_limit: u32,
    /// How many requests a source may send at once before the rate applies.
    #[serde(default = "default_xdp_rate_burst")]
    pub xdp_rate_burst: u32,
    /// Source prefixes never served: XDP drops their datagrams to the server's ports, and
    /// the listener refuses their requests when XDP is off.
    #[serde(default)]
    pub xdp_deny: Vec<SourcePrefix>,
    /// The rate limit's key for IPv4 sources: the first this many bits (0..=32).
    #[serde(default = "default_xdp_rate_prefix_v4")]
    pub xdp_rate_prefix_v4: u8,
    /// The rate limit's key for IPv6 sources: the first this many bits (0..=128).
    #[serde(default = "default_xdp_rate_prefix_v6")]
    pub xdp_rate_prefix_v6: u8,
}

impl Default for EbpfConfig {
    fn default() -> Self {
        Self {
            mode: EbpfMode::default(),
            pin_dir: default_pin_dir(),
            xdp_interfaces: Vec::new(),
            xdp_mode: XdpMode::default(),
            xdp_rate_limit: 0,
            xdp_rate_burst: default_xdp_rate_burst(),
            xdp_deny: Vec::new(),
            xdp_rate_prefix_v4: default_xdp_rate_prefix_v4(),
            xdp_rate_prefix_v6: default_xdp_rate_prefix_v6(),
        }
    }
}

fn default_xdp_rate_burst() -> u32 {
    20
}

/// One IPv4 address is one budget: a NAT of many devices is what `xdp_rate_burst` is for.
fn default_xdp_rate_prefix_v4() -> u8 {
    32
}

/// A /64 is one budget: one host may own all of it (RFC 8981 temporary addresses, or an
/// attacker), so a key per address would be no limit at all.
fn default_xdp_rate_prefix_v6() -> u8 {
    64
}

fn default_pin_dir() -> PathBuf {
    PathBuf::from("/sys/fs/bpf/tftpd")
}
