//! A minimal HTTP/1.x endpoint for `GET /metrics`: enough for Prometheus, nothing more, so the
//! daemon needs no web framework. It must never take what the TFTP side needs: at most
//! `metrics.max_connections` are served at once (more are accepted and closed at once, and
//! counted), each gets `metrics.timeout_ms` to send a head of at most
//! [`MAX_HEAD`](super::request::MAX_HEAD) bytes and as long again to take the answer, so
//! a connection holds one file descriptor for at most two timeouts. Parsing is
//! [`super::request`]'s; this file only moves bytes and keeps time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::Metrics;
use super::endpoint::Outcome;
use super::request::{HttpError, MAX_HEAD, Method, Request, Target, parse_request};
use crate::config::MetricsConfig;

/// The endpoint's limits, from `[metrics]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once (`metrics.max_connections`).
    pub max_connections: usize,
    /// For the request head, and again for the response (`metrics.timeout_ms`).
    pub timeout: Duration,
}

impl From<&MetricsConfig> for Limits {
    fn from(c: &MetricsConfig) -> Self {
        Self {
            max_connections: c.max_connections,
            timeout: Duration::from_millis(c.timeout_ms),
        }
    }
}

/// What a connection over the cap is told before it is closed: written without waiting, so
/// a scraper learns why and a flood costs a descriptor for a moment only.
const OVER_CAP: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\
    Retry-After: 1\r\nConnection: close\r\n\r\n";

/// Serves `/metrics` on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let warned = AtomicBool::new(false);
    loop {
        let stream = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics.endpoint.count(Outcome::OverCap);
            if !warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    "metrics endpoint: metrics.max_connections are open; further connections \
                     are closed at once (counted in tftpd_metrics_connections_total, not logged)"
                );
            }
            // Best effort: the socket buffer is empty, so this does not block.
            let _ = stream.try_write(OVER_CAP);
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let outcome = answer(stream, &metrics, limits.timeout).await;
            metrics.endpoint.count(outcome);
            drop(slot);
        });
    }
}

/// Reads one request head from `stream` and answers it, each step within `timeout`.
async fn answer<S>(mut stream: S, metrics: &Metrics, timeout: Duration) -> Outcome
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // One deadline for the whole head, not one per read: a client sending a byte a second
    // is cut off as surely as one sending nothing.
    let parsed = match tokio::time::timeout(timeout, read_head(&mut stream)).await {
        Err(_) => return Outcome::ReadTimeout,
        Ok(None) => return Outcome::Closed,
        Ok(Some(parsed)) => parsed,
    };
    let (response, outcome) = respond(parsed, metrics);
    let write = async {
        stream.write_all(&response).await?;
        stream.shutdown().await
    };
    match tokio::time::timeout(timeout, write).await {
        Err(_) => Outcome::WriteTimeout,
        Ok(Err(_)) => Outcome::Closed,
        Ok(Ok(())) => outcome,
    }
}

/// The parsed head, or `None` when the peer closed (or failed) first.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Option<Result<Request, HttpError>> {
    let mut buf = vec![0u8; MAX_HEAD];
    let mut len = 0;
    loop {
        match parse_request(&buf[..len]) {
            // Incomplete means fewer than MAX_HEAD bytes so far: there is room to read into.
            Err(HttpError::Incomplete) => {}
            done => return Some(done),
        }
        let n = stream.read(&mut buf[len..]).await.ok()?;
        if n == 0 {
            return None;
        }
        len += n;
    }
}

/// The whole response (head and body) to a parsed head, and how to count it.
fn respond(parsed: Result<Request, HttpError>, metrics: &Metrics) -> (Vec<u8>, Outcome) {
    let (status, body, method, outcome) = match parsed {
        Ok(Request {
            method,
            target: Target::Metrics,
        }) => ("200 OK", metrics.render(), method, Outcome::Served),
        Ok(Request {
            method,
            target: Target::Other,
        }) => (
            "404 Not Found",
            "not found; try /metrics\n".to_string(),
            method,
            Outcome::NotFound,
        ),
        Err(e) => (
            e.status().unwrap_or("400 Bad Request"),
            format!("{e}\n"),
            Method::Get,
            Outcome::BadRequest,
        ),
    };
    let allow = if status.starts_with("405") {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\n{allow}Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method == Method::Get {
        response.extend_from_slice(body.as_bytes());
    }
    (response, outcome)
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, duplex};
    use tokio::net::TcpStream;
    use tokio::time::Instant;

    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(5);

    /// Runs `answer` on one end of an in-memory pipe of `capacity` bytes; `client` drives the
    /// other end. Returns the outcome, the time it took on the paused clock, and the reply.
    async fn exchange<F, Fut>(capacity: usize, client: F) -> (Outcome, Duration, Vec<u8>)
    where
        F: FnOnce(tokio::io::DuplexStream) -> Fut,
        Fut: Future<Output = Vec<u8>> + Send + 'static,
    {
        let (near, far) = duplex(capacity);
        let metrics = Metrics::default();
        let start = Instant::now();
        let reply = tokio::spawn(client(near));
        let outcome = answer(far, &metrics, TIMEOUT).await;
        let took = start.elapsed();
        (outcome, took, reply.await.expect("client task"))
    }

    #[tokio::test(start_paused = true)]
    async fn a_scrape_gets_the_page() {
        let (outcome, _, reply) = exchange(1 << 20, |mut c| async move {
            c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .expect("request");
            let mut v = Vec::new();
            c.read_to_end(&mut v).await.expect("reply");
            v
        })
        .await;
        let text = String::from_utf8(reply).expect("utf-8");
        assert_eq!(outcome, Outcome::Served);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        let (head, body) = text.split_once("\r\n\r\n").expect("a head");
        assert!(
            head.contains(&format!("Content-Length: {}", body.len())),
            "{head}"
        );
        assert!(body.contains("tftpd_build_info"), "the page: {body}");
    }

    #[tokio::test(start_paused = true)]
    async fn head_gets_no_body_and_bad_heads_get_their_status() {
        for (request, status, outcome) in [
            (
                &b"HEAD /metrics HTTP/1.1\r\n\r\n"[..],
                "200 OK",
                Outcome::Served,
            ),
            (
                b"GET /x HTTP/1.1\r\n\r\n",
                "404 Not Found",
                Outcome::NotFound,
            ),
            (
                b"POST /metrics HTTP/1.1\r\n\r\n",
                "405 Method Not Allowed",
                Outcome::BadRequest,
            ),
            (
                &[b'A'; MAX_HEAD + 100][..],
                "431 Request Header Fields Too Large",
                Outcome::BadRequest,
            ),
        ] {
            let request = request.to_vec();
            let (got, _, reply) = exchange(1 << 20, |mut c| async move {
                // A refused head is answered without reading all of it: ignore the error.
                let _ = c.write_all(&request).await;
                let mut v = Vec::new();
                let _ = c.read_to_end(&mut v).await;
                v
            })
            .await;
            let text = String::from_utf8_lossy(&reply);
            assert_eq!(got, outcome, "{text}");
            assert!(
                text.starts_with(&format!("HTTP/1.1 {status}\r\n")),
                "{text}"
            );
            if status == "200 OK" {
                assert!(text.ends_with("\r\n\r\n"), "HEAD has no body: {text}");
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_is_cut_off_by_the_write_timeout() {
        // A 64-byte pipe: the page cannot be written until the client reads, and it never
        // does.
        let (outcome, took, _) = exchange(64, |mut c| async move {
            c.write_all(b"GET /metrics HTTP/1.1\r\n\r\n")
                .await
                .expect("request");
            tokio::time::sleep(Duration::from_secs(3600)).await;
            drop(c);
            Vec::new()
        })
        .await;
        assert_eq!(outcome, Outcome::WriteTimeout);
        assert_eq!(took, TIMEOUT, "cut off when the write timeout runs out");
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_sent_a_byte_a_second_is_cut_off_by_one_read_deadline() {
        let (outcome, took, _) = exchange(1 << 20, |mut c| async move {
            for b in b"GET /metrics HTTP/1.1\r\nX-Slow: "
                .iter()
                .cycle()
                .take(3600)
            {
                if c.write_all(&[*b]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Vec::new()
        })
        .await;
        assert_eq!(outcome, Outcome::ReadTimeout);
        assert_eq!(
            took, TIMEOUT,
            "the deadline is for the whole head, not per read"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_closes_first_is_counted_as_closed() {
        let (outcome, _, _) = exchange(1 << 20, |mut c| async move {
            c.write_all(b"GET /metr").await.expect("part of a head");
            drop(c);
            Vec::new()
        })
        .await;
        assert_eq!(outcome, Outcome::Closed);
    }

    #[tokio::test]
    async fn connections_over_the_cap_are_closed_at_once_and_counted() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let metrics = Arc::new(Metrics::default());
        let shutdown = CancellationToken::new();
        let limits = Limits {
            max_connections: 2,
            timeout: Duration::from_secs(60),
        };
        let server = tokio::spawn(serve(listener, metrics.clone(), limits, shutdown.clone()));
        let idle_a = TcpStream::connect(addr).await.expect("idle a");
        let idle_b = TcpStream::connect(addr).await.expect("idle b");
        let mut third = TcpStream::connect(addr).await.expect("third");
        let mut reply = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), third.read_to_end(&mut reply))
            .await
            .expect("the third connection is closed without waiting for the idle ones")
            .expect("read");
        assert!(
            reply.starts_with(b"HTTP/1.1 503 "),
            "told why: {:?}",
            String::from_utf8_lossy(&reply)
        );
        assert_eq!(metrics.endpoint.get(Outcome::OverCap), 1, "counted");
        drop((idle_a, idle_b));
        let deadline = Instant::now() + Duration::from_secs(10);
        let page = loop {
            let mut s = TcpStream::connect(addr).await.expect("scrape");
            s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n")
                .await
                .expect("request");
            let mut v = Vec::new();
            let _ = s.read_to_end(&mut v).await;
            if v.starts_with(b"HTTP/1.1 200 OK") {
                break v;
            }
            assert!(
                Instant::now() < deadline,
                "no slot came free after the idle ones closed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(String::from_utf8_lossy(&page).contains("tftpd_metrics_connections_total"));
        shutdown.cancel();
        server.await.expect("serve ends on shutdown");
    }
}
