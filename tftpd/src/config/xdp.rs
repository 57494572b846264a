//! The XDP keys of `[ebpf]`: where to attach, how, and the deny list and rate limit the XDP
//! program enforces.

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
    fn interface_names_follow_the_kernel() {
        assert!(valid_interface_name("eth0") && valid_interface_name("veth-tftp-1234"));
        for bad in ["", "a/b", "sixteen-chars-xx", "..", "has space"] {
            assert!(!valid_interface_name(bad), "{bad:?}");
        }
    }
}
