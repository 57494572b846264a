//! The request head of a scrape, parsed: a pure function over the bytes read so far, so it can
//! be fuzzed (`tftpd/fuzz`, target `metrics_request`) and tested without sockets. The endpoint
//! ([`super::http`]) only reads bytes and writes what this decides.
//!
//! Enough of HTTP/1.x for Prometheus and curl, nothing more: a `GET` or `HEAD` request line,
//! header lines that look like headers (their values are never used), a head of at most
//! [`MAX_HEAD`] bytes. Anything else is an error with the status to answer.

/// Longest request head accepted, in bytes, the blank line included. Prometheus sends about
/// 250; a longer head is refused (431) without reading more.
pub const MAX_HEAD: usize = 4096;

/// A request the endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// `GET`, or `HEAD` (the same head, no body).
    pub method: Method,
    /// What was asked for.
    pub target: Target,
}

/// The methods answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The page.
    Get,
    /// The page's head only.
    Head,
}

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `/metrics` (with or without a query string).
    Metrics,
    /// Any other path: 404.
    Other,
}

/// Why a request head cannot be answered (yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// No blank line yet: read more (or time out).
    #[error("request head incomplete")]
    Incomplete,
    /// The head is longer than [`MAX_HEAD`] bytes.
    #[error("request head longer than {MAX_HEAD} bytes")]
    TooLarge,
    /// The request line is not `METHOD TARGET HTTP/1.x`, or the target is not a path.
    #[error("malformed request line")]
    BadRequestLine,
    /// A method other than GET and HEAD.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A version other than HTTP/1.0 and HTTP/1.1.
    #[error("HTTP version not supported")]
    BadVersion,
    /// A header line without a name and a colon, or with a control byte.
    #[error("malformed header line")]
    BadHeader,
}

impl HttpError {
    /// The status line to answer with; `None` for [`HttpError::Incomplete`], which is not an
    /// answer but a wait.
    pub fn status(self) -> Option<&'static str> {
        match self {
            Self::Incomplete => None,
            Self::TooLarge => Some("431 Request Header Fields Too Large"),
            Self::BadRequestLine | Self::BadHeader => Some("400 Bad Request"),
            Self::MethodNotAllowed => Some("405 Method Not Allowed"),
            Self::BadVersion => Some("505 HTTP Version Not Supported"),
        }
    }
}

/// Parses the bytes read so far from a connection. Bytes after the blank line (a pipelined
/// second request) are ignored: the endpoint answers one request per connection.
pub fn parse_request(head: &[u8]) -> Result<Request, HttpError> {
    let Some(end) = head_end(head) else {
        return Err(if head.len() >= MAX_HEAD {
            HttpError::TooLarge
        } else {
            HttpError::Incomplete
        });
    };
    if end > MAX_HEAD {
        return Err(HttpError::TooLarge);
    }
    let mut lines = head[..end]
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty());
    let request_line = lines.next().ok_or(HttpError::BadRequestLine)?;
    let request = parse_request_line(request_line)?;
    for line in lines {
        check_header(line)?;
    }
    Ok(request)
}

/// The length of the head through its blank line (CRLF CRLF, or LF LF from a hand-typed
/// request), if it is all there.
fn head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            let rest = &buf[i + 1..];
            if rest.starts_with(b"\r\n") {
                return Some(i + 3);
            }
            if rest.starts_with(b"\n") {
                return Some(i + 2);
            }
        }
        i += 1;
    }
    None
}

fn parse_request_line(line: &[u8]) -> Result<Request, HttpError> {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::BadRequestLine);
    };
    if !target.starts_with(b"/") || target.iter().any(|b| b.is_ascii_control()) {
        return Err(HttpError::BadRequestLine);
    }
    let method = match method {
        b"GET" => Method::Get,
        b"HEAD" => Method::Head,
        m if !m.is_empty() && m.iter().all(u8::is_ascii_uppercase) => {
            return Err(HttpError::MethodNotAllowed);
        }
        _ => return Err(HttpError::BadRequestLine),
    };
    if version != b"HTTP/1.1" && version != b"HTTP/1.0" {
        return Err(if version.starts_with(b"HTTP/") {
            HttpError::BadVersion
        } else {
            HttpError::BadRequestLine
        });
    }
    let path = target.split(|&b| b == b'?').next().unwrap_or(target);
    let target = if path == b"/metrics" {
        Target::Metrics
    } else {
        Target::Other
    };
    Ok(Request { method, target })
}

/// `Name: value`, the name a non-empty token, no control byte but tab in the value.
fn check_header(line: &[u8]) -> Result<(), HttpError> {
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(HttpError::BadHeader)?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    let token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    if name.is_empty() || !name.iter().all(token) {
        return Err(HttpError::BadHeader);
    }
    if value.iter().any(|&b| b.is_ascii_control() && b != b'\t') {
        return Err(HttpError::BadHeader);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROMETHEUS: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9100\r\n\
        User-Agent: Prometheus/2.53.0\r\nAccept: application/openmetrics-text;version=1.0.0,\
        text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\nAccept-Encoding: gzip\r\n\
        X-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n";

    fn ok(method: Method, target: Target) -> Result<Request, HttpError> {
        Ok(Request { method, target })
    }

    #[test]
    fn scrapers_requests_are_understood() {
        for (head, want) in [
            (PROMETHEUS, ok(Method::Get, Target::Metrics)),
            (
                &b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n"[..],
                ok(Method::Get, Target::Metrics),
            ),
            (b"GET /metrics HTTP/1.0\r\n\r\n", ok(Method::Get, Target::Metrics)),
            (b"HEAD /metrics HTTP/1.1\r\n\r\n", ok(Method::Head, Target::Metrics)),
            (b"GET /metrics?x=1 HTTP/1.1\r\n\r\n", ok(Method::Get, Target::Metrics)),
            (b"GET /metrics HTTP/1.1\n\n", ok(Method::Get, Target::Metrics)),
            (b"GET / HTTP/1.1\r\n\r\n", ok(Method::Get, Target::Other)),
            (b"GET /metricsx HTTP/1.1\r\n\r\n", ok(Method::Get, Target::Other)),
            (
                b"GET /metrics HTTP/1.1\r\n\r\nGET /other HTTP/1.1\r\n\r\n",
                ok(Method::Get, Target::Metrics),
            ),
        ] {
            assert_eq!(parse_request(head), want, "{}", String::from_utf8_lossy(head));
        }
    }

    #[test]
    fn a_head_without_its_blank_line_is_incomplete_until_it_is_too_large() {
        for cut in 0..PROMETHEUS.len() {
            assert_eq!(
                parse_request(&PROMETHEUS[..cut]),
                Err(HttpError::Incomplete),
                "{cut} bytes of a real request"
            );
        }
        let mut long = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        long.resize(MAX_HEAD - 1, b'a');
        assert_eq!(
            parse_request(&long),
            Err(HttpError::Incomplete),
            "one byte short"
        );
        long.push(b'a');
        assert_eq!(
            parse_request(&long),
            Err(HttpError::TooLarge),
            "the limit reached"
        );
        let mut complete = long[..MAX_HEAD - 4].to_vec();
        complete.extend_from_slice(b"\r\n\r\n");
        assert_eq!(complete.len(), MAX_HEAD);
        assert!(
            parse_request(&complete).is_ok(),
            "a head of exactly MAX_HEAD bytes"
        );
        complete.insert(30, b'a');
        assert_eq!(
            parse_request(&complete),
            Err(HttpError::TooLarge),
            "a complete head one byte over"
        );
    }

    #[test]
    fn malformed_requests_get_their_status() {
        for (head, want) in [
            (&b"\r\n\r\n"[..], HttpError::BadRequestLine),
            (b"GET /metrics\r\n\r\n", HttpError::BadRequestLine),
            (b"GET  /metrics HTTP/1.1\r\n\r\n", HttpError::BadRequestLine),
            (b"GET metrics HTTP/1.1\r\n\r\n", HttpError::BadRequestLine),
            (
                b"GET http://x/metrics HTTP/1.1\r\n\r\n",
                HttpError::BadRequestLine,
            ),
            (
                b"GET /me\x01trics HTTP/1.1\r\n\r\n",
                HttpError::BadRequestLine,
            ),
            (b"get /metrics HTTP/1.1\r\n\r\n", HttpError::BadRequestLine),
            (
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n\n",
                HttpError::BadRequestLine,
            ),
            (
                b"POST /metrics HTTP/1.1\r\n\r\n",
                HttpError::MethodNotAllowed,
            ),
            (
                b"DELETE /metrics HTTP/1.1\r\n\r\n",
                HttpError::MethodNotAllowed,
            ),
            (b"GET /metrics HTTP/2.0\r\n\r\n", HttpError::BadVersion),
            (b"GET /metrics FTP/1.1\r\n\r\n", HttpError::BadRequestLine),
            (
                b"GET /metrics HTTP/1.1\r\nno colon\r\n\r\n",
                HttpError::BadHeader,
            ),
            (
                b"GET /metrics HTTP/1.1\r\n: empty name\r\n\r\n",
                HttpError::BadHeader,
            ),
            (
                b"GET /metrics HTTP/1.1\r\nBad Name: x\r\n\r\n",
                HttpError::BadHeader,
            ),
            (
                b"GET /metrics HTTP/1.1\r\nX: a\x00b\r\n\r\n",
                HttpError::BadHeader,
            ),
            (
                b"GET /metrics HTTP/1.1\r\nX: a\rb\r\n\r\n",
                HttpError::BadHeader,
            ),
        ] {
            assert_eq!(
                parse_request(head),
                Err(want),
                "{}",
                String::from_utf8_lossy(head)
            );
            assert!(want.status().is_some(), "{want:?} is answered");
        }
        assert_eq!(HttpError::Incomplete.status(), None, "incomplete is a wait");
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_to_a_value(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = parse_request(&bytes);
        }

        #[test]
        fn a_valid_request_with_any_headers_is_understood(
            headers in proptest::collection::vec(("[A-Za-z][A-Za-z0-9-]{0,20}", "[ -~\t]{0,40}"), 0..10),
        ) {
            let mut head = b"GET /metrics HTTP/1.1\r\n".to_vec();
            for (name, value) in &headers {
                head.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
            }
            head.extend_from_slice(b"\r\n");
            proptest::prop_assert_eq!(parse_request(&head), ok(Method::Get, Target::Metrics));
        }
    }
}
