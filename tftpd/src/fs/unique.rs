//! `unique_root` (dnsmasq's `--tftp-unique-root`): a client is served from a directory of its
//! own inside its root, named by its IP address or its MAC address, when that directory
//! exists; otherwise from the root itself. The directory is opened beneath the root like any
//! request path, so it can never lead outside it.

use std::net::IpAddr;

use crate::config::UniqueRoot;

/// The directory name `client` would have under `kind`; `None` when there is none (off, or
/// a MAC the kernel does not know).
pub fn dir_name(kind: UniqueRoot, client: IpAddr) -> Option<String> {
    match kind {
        UniqueRoot::Off => None,
        // dnsmasq's form: dotted quad; IPv6 in its compressed text form (RFC 5952).
        UniqueRoot::Ip => Some(client.to_canonical().to_string()),
        UniqueRoot::Mac => match client.to_canonical() {
            IpAddr::V4(v4) => std::fs::read_to_string("/proc/net/arp")
                .ok()
                .and_then(|table| mac_in_arp_table(&table, &v4.to_string())),
            // The kernel's IPv6 neighbour table has no /proc file (netlink only), and
            // dnsmasq itself learns these from its DHCP leases: IPv6 clients get the root.
            IpAddr::V6(_) => None,
        },
    }
}

/// The MAC of `ip` in the text of `/proc/net/arp`, as dnsmasq names directories:
/// lowercase, two digits per byte, dashes (`01-02-03-04-aa-bb`). Incomplete entries (all
/// zeros) are no MAC.
pub fn mac_in_arp_table(table: &str, ip: &str) -> Option<String> {
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (addr, mac) = (cols.first()?, cols.get(3)?);
        if *addr != ip || mac.split(':').all(|b| b == "00") {
            return None;
        }
        let bytes: Vec<&str> = mac.split(':').collect();
        let well_formed = bytes.len() == 6
            && bytes
                .iter()
                .all(|b| b.len() == 2 && b.bytes().all(|c| c.is_ascii_hexdigit()));
        well_formed.then(|| bytes.join("-").to_ascii_lowercase())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARP: &str = "\
IP address       HW type     Flags       HW address            Mask     Device
10.213.79.2      0x1         0x2         5E:00:53:AB:cd:01     *        unqh1
10.213.79.3      0x1         0x0         00:00:00:00:00:00     *        unqh1
";

    #[test]
    fn a_known_mac_is_named_as_dnsmasq_names_it() {
        assert_eq!(
            mac_in_arp_table(ARP, "10.213.79.2").as_deref(),
            Some("5e-00-53-ab-cd-01")
        );
        assert_eq!(
            mac_in_arp_table(ARP, "10.213.79.3"),
            None,
            "incomplete entry"
        );
        assert_eq!(
            mac_in_arp_table(ARP, "10.213.79.4"),
            None,
            "unknown address"
        );
        assert_eq!(
            mac_in_arp_table(ARP, "10.213.79.2 "),
            None,
            "exact match only"
        );
    }

    #[test]
    fn ip_names_are_the_canonical_text_form() {
        let v4: IpAddr = "192.0.2.7".parse().expect("ip");
        assert_eq!(dir_name(UniqueRoot::Ip, v4).as_deref(), Some("192.0.2.7"));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("ip");
        assert_eq!(
            dir_name(UniqueRoot::Ip, mapped).as_deref(),
            Some("192.0.2.7")
        );
        let v6: IpAddr = "2001:db8:0:0::1".parse().expect("ip");
        assert_eq!(dir_name(UniqueRoot::Ip, v6).as_deref(), Some("2001:db8::1"));
        assert_eq!(dir_name(UniqueRoot::Off, v4), None);
        assert_eq!(
            dir_name(UniqueRoot::Mac, v6),
            None,
            "no IPv6 neighbour lookup"
        );
    }
}
