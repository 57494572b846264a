//! `tftpd health`: probes a running daemon from outside, as a container health check or a
//! Kubernetes exec probe does, and says in one line per probe what answered. Two probes:
//!
//! - **metrics**: `GET /metrics` on `metrics.listen` must answer 200 with the
//!   `tftpd_build_info` series (the endpoint runs on the daemon's own runtime, so a wedged
//!   runtime fails it);
//! - **tftp** (with `--file NAME`): NAME is downloaded from the first `listen` address over
//!   plain RFC 1350 (no options), every block acknowledged, to the end. The download is a
//!   real request, counted as `completed`: a probe that asked for a missing file would be
//!   counted as `not_found` every period and, on an idle server, trip the error-ratio alert.
//!
//! Wildcard addresses are probed on 127.0.0.1 (a `[::]` listener is dual-stack, and falls back
//! to IPv4 on hosts without IPv6). Blocking std sockets with deadlines: no runtime needed.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::proto::packet::{Packet, Request, ack};

/// The metric every tftpd exposes; its presence shows the body is tftpd's.
const BUILD_INFO: &str = "tftpd_build_info";
/// How much of the metrics answer is read (a daemon's page is a few tens of KiB).
const MAX_METRICS_BYTES: u64 = 16 << 20;
/// Blocks of RFC 1350 without options.
const BLOCK: usize = 512;
/// How long one DATA may take before the last packet is sent again (RFC 1350 §2).
const RETRANSMIT: Duration = Duration::from_secs(1);

/// Why the daemon is not healthy, or what could not be probed.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// The config gives nothing to probe.
    #[error("nothing to probe: metrics.listen is not set and no --file was given")]
    NothingToProbe,
    /// `listen` is empty (socket activation) and a TFTP probe was asked for.
    #[error("--file needs a `listen` address to probe (pass --listen ADDR:PORT)")]
    NoListenAddress,
    /// The metrics endpoint did not answer as a tftpd does.
    #[error("metrics http://{addr}/metrics: {reason}")]
    Metrics {
        /// Where it was probed.
        addr: SocketAddr,
        /// What went wrong.
        reason: String,
    },
    /// The TFTP download did not complete.
    #[error("tftp {file:?} from {addr}: {reason}")]
    Tftp {
        /// Where it was probed.
        addr: SocketAddr,
        /// The requested name.
        file: String,
        /// What went wrong.
        reason: String,
    },
}

/// What to probe and for how long.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The metrics endpoint, when the config has one.
    pub metrics: Option<SocketAddr>,
    /// The TFTP listener and the file to download from it.
    pub tftp: Option<(SocketAddr, String)>,
    /// The bound on each probe.
    pub timeout: Duration,
}

impl Probe {
    /// The probes the daemon running on `config` answers: its metrics endpoint, and a TFTP
    /// download of `file` from its first listen address when a file is named.
    pub fn for_config(
        config: &Config,
        file: Option<&str>,
        timeout: Duration,
    ) -> Result<Self, HealthError> {
        let tftp = match file {
            Some(name) => {
                let first = config.listen.first().ok_or(HealthError::NoListenAddress)?;
                Some((reachable(*first), name.to_string()))
            }
            None => None,
        };
        let metrics = config.metrics.listen.map(reachable);
        if metrics.is_none() && tftp.is_none() {
            return Err(HealthError::NothingToProbe);
        }
        Ok(Self {
            metrics,
            tftp,
            timeout,
        })
    }

    /// Runs every probe; the lines say what answered. The first failure is the error.
    pub fn run(&self) -> Result<Vec<String>, HealthError> {
        let mut report = Vec::new();
        if let Some(addr) = self.metrics {
            report.push(probe_metrics(addr, self.timeout)?);
        }
        if let Some((addr, file)) = &self.tftp {
            report.push(probe_tftp(*addr, file, self.timeout)?);
        }
        Ok(report)
    }
}

/// A wildcard listen address is reached on loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
    } else {
        addr
    }
}

fn probe_metrics(addr: SocketAddr, timeout: Duration) -> Result<String, HealthError> {
    let fail = |reason: String| HealthError::Metrics { addr, reason };
    let started = Instant::now();
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| fail(format!("cannot connect: {e}")))?;
    let left = timeout
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(1));
    stream
        .set_read_timeout(Some(left))
        .and_then(|()| stream.set_write_timeout(Some(left)))
        .map_err(|e| fail(format!("setting the socket timeout: {e}")))?;
    stream
        .write_all(format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .map_err(|e| fail(format!("sending the request: {e}")))?;
    let mut body = Vec::new();
    stream
        .take(MAX_METRICS_BYTES)
        .read_to_end(&mut body)
        .map_err(|e| fail(format!("reading the answer: {e}")))?;
    let text = String::from_utf8_lossy(&body);
    let status = text.lines().next().unwrap_or_default();
    if !(status.starts_with("HTTP/1.") && status.split_whitespace().nth(1) == Some("200")) {
        return Err(fail(format!(
            "answered {:?}, not 200",
            status.chars().take(80).collect::<String>()
        )));
    }
    if !text.lines().any(|l| l.starts_with(BUILD_INFO)) {
        return Err(fail(format!("200 but no {BUILD_INFO} line: not a tftpd")));
    }
    Ok(format!(
        "metrics http://{addr}/metrics: 200 with {BUILD_INFO} ({} bytes, {} ms)",
        body.len(),
        started.elapsed().as_millis()
    ))
}

fn probe_tftp(addr: SocketAddr, file: &str, timeout: Duration) -> Result<String, HealthError> {
    let fail = |reason: String| HealthError::Tftp {
        addr,
        file: file.to_string(),
        reason,
    };
    let started = Instant::now();
    let deadline = started + timeout;
    let local = SocketAddr::new(
        if addr.is_ipv4() {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
        },
        0,
    );
    let socket = UdpSocket::bind(local).map_err(|e| fail(format!("binding {local}: {e}")))?;
    let mut last = Vec::new();
    Packet::Rrq(Request {
        filename: file.as_bytes(),
        mode: b"octet",
        options: Vec::new(),
    })
    .encode(&mut last);
    // The RRQ goes to the listener; everything after it to the transfer's port (its TID).
    let mut peer = addr;
    let mut server_tid: Option<SocketAddr> = None;
    let mut expected: u16 = 1;
    let mut bytes: u64 = 0;
    let mut buf = vec![0u8; BLOCK + 4 + 1];
    loop {
        socket
            .send_to(&last, peer)
            .map_err(|e| fail(format!("sending to {peer}: {e}")))?;
        let sent = Instant::now();
        let got = loop {
            let now = Instant::now();
            if now >= deadline {
                let what = match expected {
                    1 => "the request".to_string(),
                    n => format!("the ACK of block {}", n.wrapping_sub(1)),
                };
                return Err(fail(format!("no answer to {what} within {timeout:?}")));
            }
            let wait = (sent + RETRANSMIT)
                .min(deadline)
                .saturating_duration_since(now);
            if wait.is_zero() {
                break None;
            }
            socket
                .set_read_timeout(Some(wait))
                .map_err(|e| fail(format!("setting the socket timeout: {e}")))?;
            match socket.recv_from(&mut buf) {
                Ok((len, from)) if server_tid.is_none_or(|t| t == from) => break Some((len, from)),
                // Another source (RFC 1350: not our transfer): keep waiting.
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(fail(format!("receiving: {e}"))),
            }
        };
        let Some((len, from)) = got else {
            continue; // Nothing in RETRANSMIT: send the last packet again.
        };
        match Packet::decode(&buf[..len]) {
            Ok(Packet::Data { block, data }) if block == expected => {
                server_tid = Some(from);
                peer = from;
                bytes += data.len() as u64;
                last = ack(block).to_vec();
                if data.len() < BLOCK {
                    socket
                        .send_to(&last, peer)
                        .map_err(|e| fail(format!("sending the last ACK: {e}")))?;
                    return Ok(format!(
                        "tftp {file:?} from {addr}: {bytes} bytes in {} ms",
                        started.elapsed().as_millis()
                    ));
                }
                expected = expected.wrapping_add(1);
            }
            // A duplicate of the previous block: our ACK was lost; the loop resends it.
            Ok(Packet::Data { .. }) => {}
            Ok(Packet::Error { code, message }) => {
                return Err(fail(format!(
                    "ERROR {} ({}): {}",
                    code.as_u16(),
                    code.label(),
                    String::from_utf8_lossy(message).escape_default()
                )));
            }
            Ok(other) => return Err(fail(format!("unexpected answer {other:?}"))),
            Err(e) => return Err(fail(format!("undecodable answer: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::thread;

    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(5);

    fn serve_http(answer: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            let mut req = [0u8; 512];
            let _ = s.read(&mut req);
            let _ = s.write_all(answer.as_bytes());
        });
        addr
    }

    #[test]
    fn metrics_probe_wants_200_and_the_build_info_line() {
        let ok = serve_http("HTTP/1.0 200 OK\r\n\r\n# HELP x\ntftpd_build_info{version=\"1\"} 1\n");
        let line = probe_metrics(ok, TIMEOUT).expect("a tftpd answer is healthy");
        assert!(line.contains("200 with tftpd_build_info"), "{line}");
        let other = serve_http("HTTP/1.0 200 OK\r\n\r\nnode_up 1\n");
        let err = probe_metrics(other, TIMEOUT).expect_err("not a tftpd");
        assert!(err.to_string().contains("not a tftpd"), "{err}");
        let busy = serve_http("HTTP/1.0 503 Service Unavailable\r\n\r\n");
        let err = probe_metrics(busy, TIMEOUT).expect_err("503 is unhealthy");
        assert!(err.to_string().contains("not 200"), "{err}");
    }

    #[test]
    fn metrics_probe_of_a_closed_port_says_it_cannot_connect() {
        let closed = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a port");
        let err = probe_metrics(closed, TIMEOUT).expect_err("nothing listens");
        assert!(err.to_string().contains("cannot connect"), "{err}");
    }

    /// A one-transfer server: answers the RRQ from a new port with `blocks`, lock-step.
    fn serve_tftp(blocks: Vec<Vec<u8>>, drop_first_ack: bool) -> SocketAddr {
        let listener = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        thread::spawn(move || {
            let mut buf = [0u8; 600];
            let (_, client) = listener.recv_from(&mut buf).expect("rrq");
            let tid = UdpSocket::bind("127.0.0.1:0").expect("tid");
            tid.set_read_timeout(Some(TIMEOUT)).expect("timeout");
            let mut dropped = !drop_first_ack;
            for (i, block) in blocks.iter().enumerate() {
                let n = u16::try_from(i + 1).expect("few blocks");
                let mut data = crate::proto::packet::data_header(n).to_vec();
                data.extend_from_slice(block);
                loop {
                    tid.send_to(&data, client).expect("data");
                    let (len, _) = tid.recv_from(&mut buf).expect("ack");
                    if !dropped {
                        dropped = true; // As if this ACK were lost: send DATA again.
                        continue;
                    }
                    assert_eq!(&buf[..len], ack(n), "the client acknowledges block {n}");
                    break;
                }
            }
        });
        addr
    }

    #[test]
    fn tftp_probe_downloads_to_the_end_and_survives_a_lost_ack() {
        let addr = serve_tftp(vec![vec![7; BLOCK], vec![8; 100]], true);
        let line = probe_tftp(addr, "boot.img", TIMEOUT).expect("a complete download");
        assert!(line.contains("612 bytes"), "{line}");
    }

    #[test]
    fn tftp_probe_reports_the_servers_error() {
        let listener = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        thread::spawn(move || {
            let mut buf = [0u8; 600];
            let (_, client) = listener.recv_from(&mut buf).expect("rrq");
            let mut err = Vec::new();
            crate::proto::packet::encode_error(
                &mut err,
                crate::proto::error::ErrorCode::FileNotFound,
                b"no such file",
            );
            listener.send_to(&err, client).expect("error");
        });
        let err = probe_tftp(addr, "missing", TIMEOUT).expect_err("ERROR 1 is unhealthy");
        assert!(err.to_string().contains("ERROR 1"), "{err}");
        assert!(err.to_string().contains("no such file"), "{err}");
    }

    #[test]
    fn tftp_probe_of_a_silent_port_times_out() {
        let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let addr = silent.local_addr().expect("addr");
        let err = probe_tftp(addr, "f", Duration::from_millis(300)).expect_err("no answer");
        assert!(err.to_string().contains("no answer"), "{err}");
    }

    #[test]
    fn wildcards_are_probed_on_loopback_and_an_empty_probe_is_refused() {
        let mut config = Config::from_toml_str(
            "root = \"/srv/tftp\"\nlisten = [\"[::]:69\"]\n[metrics]\nlisten = \"0.0.0.0:9169\"\n",
            None,
        )
        .expect("config");
        let probe = Probe::for_config(&config, Some("f"), TIMEOUT).expect("probe");
        assert_eq!(probe.metrics, Some("127.0.0.1:9169".parse().expect("addr")));
        assert_eq!(
            probe.tftp.map(|(a, _)| a),
            Some("127.0.0.1:69".parse().expect("addr"))
        );
        config.metrics.listen = None;
        let err = Probe::for_config(&config, None, TIMEOUT).expect_err("nothing to probe");
        assert!(matches!(err, HealthError::NothingToProbe), "{err}");
    }
}
