//! Kernel UDP health next to the daemon's own counters: the host's UDP error counters from
//! `/proc/net/snmp` and each listening socket's drop count from `/proc/net/udp{,6}` (datagrams
//! the kernel discarded before tftpd could read them: a full receive buffer, or the packet
//! filter). Read at scrape time; Linux only, absent elsewhere.

use std::fmt::Write as _;
use std::net::SocketAddr;

/// Host-wide UDP counters (counter), by `/proc/net/snmp` field.
pub const KERNEL_UDP_ERRORS_TOTAL: &str = "tftpd_kernel_udp_errors_total";
/// Datagrams dropped by the kernel on a listening socket (counter), by listen address.
pub const KERNEL_LISTENER_DROPS_TOTAL: &str = "tftpd_kernel_listener_drops_total";

/// The `/proc/net/snmp` Udp fields exported, and their `kind` label.
const UDP_FIELDS: [(&str, &str); 3] = [
    ("InErrors", "in_errors"),
    ("RcvbufErrors", "rcvbuf_errors"),
    ("SndbufErrors", "sndbuf_errors"),
];

/// Parses the `Udp:` header and value lines of `/proc/net/snmp`.
pub fn parse_snmp_udp(text: &str) -> Vec<(String, u64)> {
    let mut lines = text.lines().filter(|l| l.starts_with("Udp: "));
    let (Some(header), Some(values)) = (lines.next(), lines.next()) else {
        return Vec::new();
    };
    header
        .split_whitespace()
        .skip(1)
        .zip(values.split_whitespace().skip(1))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        .collect()
}

/// The `drops` column of the sockets bound to `port` in a `/proc/net/udp{,6}` table, summed:
/// a `reuseport_workers` group is several listening sockets on one port.
pub fn parse_udp_drops(text: &str, port: u16) -> Option<u64> {
    let want = format!(":{port:04X}");
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let local = cols.get(1)?;
            // Only a socket with no remote end is a listener (rem_address all zeros, port 0000).
            let remote_port = cols.get(2)?.rsplit(':').next()?;
            (local.ends_with(&want) && remote_port == "0000")
                .then(|| cols.last()?.parse::<u64>().ok())
                .flatten()
        })
        .reduce(|a, b| a + b)
}

/// Appends the kernel series for `listeners` to a metrics page.
pub fn render(listeners: &[SocketAddr], out: &mut String) {
    let Ok(snmp) = std::fs::read_to_string("/proc/net/snmp") else {
        return;
    };
    let fields = parse_snmp_udp(&snmp);
    let _ = writeln!(
        out,
        "# HELP {KERNEL_UDP_ERRORS_TOTAL} Host-wide UDP errors from /proc/net/snmp.\n\
         # TYPE {KERNEL_UDP_ERRORS_TOTAL} counter"
    );
    for (field, kind) in UDP_FIELDS {
        if let Some((_, v)) = fields.iter().find(|(k, _)| k == field) {
            let _ = writeln!(out, "{KERNEL_UDP_ERRORS_TOTAL}{{kind=\"{kind}\"}} {v}");
        }
    }
    let _ = writeln!(
        out,
        "# HELP {KERNEL_LISTENER_DROPS_TOTAL} Datagrams the kernel dropped on a listening socket.\n\
         # TYPE {KERNEL_LISTENER_DROPS_TOTAL} counter"
    );
    for l in listeners {
        let table = if l.is_ipv6() {
            "/proc/net/udp6"
        } else {
            "/proc/net/udp"
        };
        let drops = std::fs::read_to_string(table)
            .ok()
            .and_then(|t| parse_udp_drops(&t, l.port()));
        if let Some(d) = drops {
            let _ = writeln!(out, "{KERNEL_LISTENER_DROPS_TOTAL}{{listen=\"{l}\"}} {d}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNMP: &str = "Ip: Forwarding DefaultTTL\nIp: 1 64\n\
        Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors\n\
        Udp: 3000 12 7 2900 5 1 0 0 0\n\
        UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors\n\
        UdpLite: 0 0 0 0 0 0 0 0 0\n";

    const UDP: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
        \x20 12: 0100007F:1B21 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 3232 2 0000000000000000 42\n\
        \x20 13: 0100007F:C350 0100007F:1B21 01 00000000:00000000 00:00000000 00000000     0        0 3233 2 0000000000000000 9\n";

    #[test]
    fn snmp_udp_fields_are_read_by_name() {
        let f = parse_snmp_udp(SNMP);
        let get = |k: &str| f.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
        assert_eq!(get("InErrors"), Some(7));
        assert_eq!(get("RcvbufErrors"), Some(5));
        assert_eq!(get("SndbufErrors"), Some(1));
        assert!(
            parse_snmp_udp("garbage").is_empty(),
            "no Udp lines, no fields"
        );
    }

    #[test]
    fn a_reuseport_groups_drops_are_summed() {
        let group = format!(
            "{UDP}\x20 14: 0100007F:1B21 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 3234 2 0000000000000000 8\n"
        );
        assert_eq!(parse_udp_drops(&group, 0x1B21), Some(50), "42 + 8");
    }

    #[test]
    fn listener_drops_come_from_the_unconnected_socket_on_the_port() {
        assert_eq!(
            parse_udp_drops(UDP, 0x1B21),
            Some(42),
            "the listener, not the connected one"
        );
        assert_eq!(
            parse_udp_drops(UDP, 0xC350),
            None,
            "a connected socket is not a listener"
        );
        assert_eq!(parse_udp_drops(UDP, 69), None);
    }
}
