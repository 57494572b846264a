//! What the XDP program should be doing, derived from the configuration and the listening
//! ports: pure, so the mapping of every `ebpf.xdp_*` key to the program's settings map is
//! tested without loading anything.

use std::collections::BTreeSet;

use tftp_ebpf_common::XdpConfig;

use crate::config::{Config, SourcePrefix, XdpMode};

/// What the XDP program should be doing, derived from the config and the listening ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdpSettings {
    /// Interfaces to be attached to.
    pub interfaces: Vec<String>,
    /// How.
    pub mode: XdpMode,
    /// The program's settings map.
    pub program: XdpConfig,
    /// The deny list from the config.
    pub deny: BTreeSet<SourcePrefix>,
}

impl XdpSettings {
    /// The settings for `config` with the daemon listening on `listen_ports`.
    pub fn new(config: &Config, listen_ports: &[u16]) -> Self {
        let mut program = XdpConfig {
            max_blksize: u32::from(config.protocol.largest_data()),
            ..XdpConfig::default()
        };
        let mut ports: Vec<u16> = listen_ports.to_vec();
        ports.sort_unstable();
        ports.dedup();
        if ports.len() > program.listen_ports.len() {
            tracing::warn!(
                ports = ?ports,
                "XDP watches at most {} listening ports; the others are left to the socket filters",
                program.listen_ports.len()
            );
        }
        for (slot, port) in program.listen_ports.iter_mut().zip(ports) {
            *slot = port;
        }
        if let Some(r) = config.port_range {
            program.transfer_port_first = r.lo;
            program.transfer_port_last = r.hi;
        }
        program.set_rate(config.ebpf.xdp_rate_limit, config.ebpf.xdp_rate_burst);
        program.rate_prefix_v4 = u16::from(config.ebpf.xdp_rate_prefix_v4);
        program.rate_prefix_v6 = u16::from(config.ebpf.xdp_rate_prefix_v6);
        program.single_port = u32::from(config.single_port);
        Self {
            interfaces: config.ebpf.xdp_interfaces.clone(),
            mode: config.ebpf.xdp_mode,
            program,
            // Clients [access] refuses are dropped here too, before they cost the stack.
            deny: config
                .ebpf
                .xdp_deny
                .iter()
                .chain(&config.access.deny)
                .copied()
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml: &str) -> XdpSettings {
        let c = Config::from_toml_str(toml, None).expect("config");
        XdpSettings::new(&c, &[6969, 69, 69])
    }

    #[test]
    fn every_xdp_key_reaches_the_program_settings() {
        let s = settings(
            "port_range = \"50000-50099\"\nsingle_port = true\n[protocol]\nmax_blksize = 1428\n\
             [access]\ndeny = [\"10.9.0.0/16\"]\n[ebpf]\nxdp_interfaces = [\"eth0\"]\n\
             xdp_mode = \"native\"\nxdp_rate_limit = 5\nxdp_rate_burst = 5\n\
             xdp_deny = [\"192.0.2.0/24\"]\nxdp_rate_prefix_v4 = 24\nxdp_rate_prefix_v6 = 56\n",
        );
        assert_eq!(s.interfaces, ["eth0"]);
        assert_eq!(s.mode, XdpMode::Native);
        let p = s.program;
        assert_eq!(p.listen_ports, [69, 6969, 0, 0], "sorted, deduplicated");
        assert_eq!(
            (p.transfer_port_first, p.transfer_port_last),
            (50000, 50099)
        );
        assert_eq!((p.max_blksize, p.single_port), (1428, 1));
        assert_eq!(
            (p.rate_interval_ns, p.rate_tolerance_ns),
            (200_000_000, 800_000_000)
        );
        assert_eq!((p.rate_prefix_v4, p.rate_prefix_v6), (24, 56));
        let deny: Vec<String> = s.deny.iter().map(ToString::to_string).collect();
        assert_eq!(
            deny,
            ["10.9.0.0/16", "192.0.2.0/24"],
            "[access] deny joins xdp_deny"
        );
    }

    #[test]
    fn defaults_key_the_rate_by_v4_address_and_v6_slash_64() {
        let p = settings("").program;
        assert_eq!((p.rate_prefix_v4, p.rate_prefix_v6), (32, 64));
        assert_eq!(p.rate_interval_ns, 0, "no limit by default");
    }
}
