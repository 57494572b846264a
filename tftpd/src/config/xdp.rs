//! The XDP keys of `[ebpf]`: where to attach, how, and the deny list and rate limit the XDP
//! program enforces (the deny list is enforced by the listener too: see `access.rs`).

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
        if e.xdp_rate_prefix_v4 > 32 {
            return Err(invalid(
                "ebpf.xdp_rate_prefix_v4",
                e.xdp_rate_prefix_v4.to_string(),
                "0 ..= 32 (prefix length in bits)",
            ));
        }
        if e.xdp_rate_prefix_v6 > 128 {
            return Err(invalid(
                "ebpf.xdp_rate_prefix_v6",
                e.xdp_rate_prefix_v6.to_string(),
                "0 ..= 128 (prefix length in bits)",
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
    use crate::config::Config;

    fn refused(toml: &str) -> String {
        Config::from_toml_str(toml, None)
            .expect_err("must be refused")
            .to_string()
    }

    #[test]
    fn rate_prefixes_default_to_a_v4_address_and_a_v6_slash_64() {
        let c = Config::from_toml_str("", None).expect("empty config");
        assert_eq!(
            (c.ebpf.xdp_rate_prefix_v4, c.ebpf.xdp_rate_prefix_v6),
            (32, 64)
        );
        let c = Config::from_toml_str(
            "[ebpf]\nxdp_rate_prefix_v4 = 0\nxdp_rate_prefix_v6 = 128\n",
            None,
        )
        .expect("the extremes are allowed");
        assert_eq!(
            (c.ebpf.xdp_rate_prefix_v4, c.ebpf.xdp_rate_prefix_v6),
            (0, 128)
        );
    }

    #[test]
    fn rate_prefixes_past_the_address_are_refused_by_key() {
        let e = refused("[ebpf]\nxdp_rate_prefix_v4 = 33\n");
        assert!(
            e.contains("ebpf.xdp_rate_prefix_v4") && e.contains("0 ..= 32"),
            "{e}"
        );
        let e = refused("[ebpf]\nxdp_rate_prefix_v6 = 129\n");
        assert!(
            e.contains("ebpf.xdp_rate_prefix_v6") && e.contains("0 ..= 128"),
            "{e}"
        );
        let e = refused("[ebpf]\nxdp_rate_prefix_v6 = -1\n");
        assert!(e.contains("xdp_rate_prefix_v6"), "{e}");
    }

    #[test]
    fn interface_names_follow_the_kernel() {
        assert!(valid_interface_name("eth0") && valid_interface_name("veth-tftp-1234"));
        for bad in ["", "a/b", "sixteen-chars-xx", "..", "has space"] {
            assert!(!valid_interface_name(bad), "{bad:?}");
        }
    }
}
