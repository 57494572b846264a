//! Reading a running daemon's `/metrics` page: one blocking HTTP/1.1 GET with a deadline, and
//! the Prometheus text format parsed into samples. Just enough for the daemon's own page.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// How long connecting, sending the request and reading the page may each take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The largest page accepted (the daemon's is about 20 KiB).
const MAX_PAGE: u64 = 4 << 20;

/// Why the page could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// Nothing answered at the address.
    #[error("connecting to {addr}")]
    Connect {
        /// The address.
        addr: SocketAddr,
        /// The cause (connection refused: no daemon, or another `metrics.listen`).
        #[source]
        source: std::io::Error,
    },
    /// The connection broke or timed out.
    #[error("reading http://{addr}/metrics")]
    Io {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Something answered, but not with a tftpd metrics page.
    #[error("http://{addr}/metrics is not a tftpd metrics page ({what})")]
    NotTftpd {
        /// The address.
        addr: SocketAddr,
        /// What was wrong.
        what: String,
    },
}

/// One sample: a metric name, its labels in page order, and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric name.
    pub name: String,
    /// Label names and values.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

impl Sample {
    /// The value of label `name`, or "".
    pub fn label(&self, name: &str) -> &str {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// Where to connect for a daemon listening on `listen`: a wildcard address is reached on the
/// loopback address of its family.
pub fn reachable(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// Fetches and parses the page at `addr`.
pub fn scrape(addr: SocketAddr) -> Result<Vec<Sample>, ScrapeError> {
    let io = |source| ScrapeError::Io { addr, source };
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)
        .map_err(|source| ScrapeError::Connect { addr, source })?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nUser-Agent: tftpd-stats\r\nConnection: close\r\n\r\n")
        .map_err(io)?;
    let mut raw = Vec::new();
    stream.take(MAX_PAGE).read_to_end(&mut raw).map_err(io)?;
    let text = String::from_utf8_lossy(&raw);
    let not_tftpd = |what: &str| ScrapeError::NotTftpd {
        addr,
        what: what.to_string(),
    };
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| not_tftpd("no HTTP response head"))?;
    let status = head.lines().next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 200") && !status.starts_with("HTTP/1.0 200") {
        return Err(not_tftpd(&format!("answered {status:?}")));
    }
    let samples = parse(body);
    if !samples.iter().any(|s| s.name == crate::metrics::BUILD_INFO) {
        return Err(not_tftpd("no tftpd_build_info"));
    }
    Ok(samples)
}

/// The samples of a text-format page; comment and malformed lines are skipped.
pub fn parse(page: &str) -> Vec<Sample> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let (series, value) = line.trim().rsplit_once(' ')?;
    let value = value.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        None => (series, Vec::new()),
        Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}')?)?),
    };
    (!name.is_empty()).then(|| Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// `a="x",b="y"`, with the format's escapes (`\\`, `\"`, `\n`) in values.
fn parse_labels(mut s: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    while !s.is_empty() {
        let (key, rest) = s.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        out.push((key.trim_start_matches(',').to_string(), value));
        s = rest[end + 1..].trim_start_matches(',');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daemons_own_page_parses_into_its_samples() {
        let m = crate::metrics::Metrics::default();
        m.request(
            crate::metrics::Kind::Read,
            crate::metrics::RequestOutcome::SizeProbe,
        );
        let _guard = m.transfer_started();
        let samples = parse(&m.render());
        let find = |name: &str, labels: &[(&str, &str)]| {
            samples
                .iter()
                .find(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == *v))
                .map(|s| s.value)
        };
        assert_eq!(find("tftpd_active_transfers", &[]), Some(1.0));
        assert_eq!(
            find(
                "tftpd_requests_total",
                &[("kind", "read"), ("outcome", "size_probe")]
            ),
            Some(1.0)
        );
        assert_eq!(
            find(
                "tftpd_filter_packets_total",
                &[("path", "userspace"), ("reason", "too_short")]
            ),
            Some(0.0)
        );
        assert!(find(crate::metrics::BUILD_INFO, &[("io_path", "portable")]).is_some());
    }

    #[test]
    fn label_values_keep_their_escapes_and_junk_lines_are_skipped() {
        let s =
            parse("# HELP x y\nx{a=\"1\",b=\"q\\\"u\\\\o\\nte\"} 7\nno_value\ny 2.5\nz{broken 1\n");
        assert_eq!(s.len(), 2, "{s:?}");
        assert_eq!(s[0].label("b"), "q\"u\\o\nte");
        assert_eq!(s[0].value, 7.0);
        assert_eq!((s[1].name.as_str(), s[1].value), ("y", 2.5));
    }

    #[test]
    fn a_wildcard_listen_address_is_reached_on_loopback() {
        for (listen, want) in [
            ("0.0.0.0:9169", "127.0.0.1:9169"),
            ("[::]:9169", "[::1]:9169"),
            ("192.0.2.1:9169", "192.0.2.1:9169"),
        ] {
            assert_eq!(
                reachable(listen.parse().expect("an address")),
                want.parse::<SocketAddr>().expect("an address")
            );
        }
    }
}
