//! The client's side of option negotiation: the request it sends (encoded with tftpd's own
//! codec) and what it accepts from an OACK (RFC 2347: only options asked for; RFC 2348 and
//! 7440: never more than asked; RFC 2349: the same timeout).

use std::time::Duration;

use tftpd::proto::options::DEFAULT_BLKSIZE;
use tftpd::proto::packet::OptionList;
use tftpd::proto::{Packet, Request};

use crate::spec::RequestOptions;

/// The values a transfer runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreed {
    /// Bytes per block.
    pub blksize: u16,
    /// Blocks per window (1: lock-step).
    pub windowsize: u16,
    /// Retransmit timeout.
    pub timeout: Duration,
    /// The server's `tsize` answer, if any.
    pub tsize: Option<u64>,
}

impl Agreed {
    /// RFC 1350's values: what a server that ignores (or was not sent) options uses.
    pub fn defaults(timeout: Duration) -> Self {
        Self {
            blksize: DEFAULT_BLKSIZE,
            windowsize: 1,
            timeout,
            tsize: None,
        }
    }
}

/// Why an OACK is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OackError {
    /// An option that was not requested, or whose value breaks its RFC.
    #[error("OACK option {name:?} = {value:?} was not requested or is out of range")]
    Refused {
        /// The option's name, lossily decoded.
        name: String,
        /// Its value, lossily decoded.
        value: String,
    },
}

/// Appends the RRQ (`write` false) or WRQ for `file` in octet mode with the options set in
/// `opts`; `tsize` is the value sent for the `tsize` option (0 for a read).
pub fn encode_request(
    write: bool,
    file: &str,
    opts: &RequestOptions,
    tsize: u64,
    out: &mut Vec<u8>,
) {
    let values: Vec<(&[u8], String)> = [
        opts.blksize.map(|v| (&b"blksize"[..], v.to_string())),
        opts.windowsize.map(|v| (&b"windowsize"[..], v.to_string())),
        opts.timeout.map(|v| (&b"timeout"[..], v.to_string())),
        opts.tsize.then(|| (&b"tsize"[..], tsize.to_string())),
    ]
    .into_iter()
    .flatten()
    .collect();
    let request = Request {
        filename: file.as_bytes(),
        mode: b"octet",
        options: values.iter().map(|(k, v)| (*k, v.as_bytes())).collect(),
    };
    if write {
        Packet::Wrq(request).encode(out);
    } else {
        Packet::Rrq(request).encode(out);
    }
}

/// The values agreed by an OACK in answer to `asked`.
pub fn read_oack(
    options: &OptionList<'_>,
    asked: &RequestOptions,
    default_timeout: Duration,
) -> Result<Agreed, OackError> {
    let mut agreed = Agreed::defaults(default_timeout);
    for &(name, value) in options {
        let refused = || OackError::Refused {
            name: String::from_utf8_lossy(name).into_owned(),
            value: String::from_utf8_lossy(value).into_owned(),
        };
        let number = std::str::from_utf8(value)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(refused)?;
        let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
        if is("blksize") {
            let max = asked.blksize.ok_or_else(refused)?;
            agreed.blksize = u16::try_from(number)
                .ok()
                .filter(|b| (8..=max).contains(b))
                .ok_or_else(refused)?;
        } else if is("windowsize") {
            let max = asked.windowsize.ok_or_else(refused)?;
            agreed.windowsize = u16::try_from(number)
                .ok()
                .filter(|w| (1..=max).contains(w))
                .ok_or_else(refused)?;
        } else if is("timeout") {
            let sent = asked.timeout.ok_or_else(refused)?;
            if number != u64::from(sent) {
                return Err(refused());
            }
            agreed.timeout = Duration::from_secs(number);
        } else if is("tsize") {
            if !asked.tsize {
                return Err(refused());
            }
            agreed.tsize = Some(number);
        } else {
            return Err(refused());
        }
    }
    Ok(agreed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(1);

    #[test]
    fn only_the_options_given_are_sent() {
        let mut out = Vec::new();
        encode_request(false, "f", &RequestOptions::default(), 0, &mut out);
        assert_eq!(
            out, b"\x00\x01f\x00octet\x00",
            "no options asked, none sent"
        );
        out.clear();
        let opts = RequestOptions {
            blksize: Some(1428),
            windowsize: None,
            tsize: true,
            timeout: None,
        };
        encode_request(true, "up", &opts, 99, &mut out);
        assert_eq!(
            out, b"\x00\x02up\x00octet\x00blksize\x001428\x00tsize\x0099\x00",
            "blksize and the upload's tsize"
        );
    }

    #[test]
    fn an_oack_may_lower_but_never_raise_or_invent() {
        let asked = RequestOptions {
            blksize: Some(1428),
            windowsize: Some(8),
            tsize: false,
            timeout: Some(3),
        };
        let ok: OptionList<'_> = vec![
            (b"BLKSIZE", b"1024"),
            (b"windowsize", b"4"),
            (b"timeout", b"3"),
        ];
        let a = read_oack(&ok, &asked, T).expect("a lower blksize and window are fine");
        assert_eq!((a.blksize, a.windowsize), (1024, 4));
        assert_eq!(a.timeout, Duration::from_secs(3));
        for bad in [
            vec![(&b"blksize"[..], &b"1500"[..])],
            vec![(b"windowsize", b"0")],
            vec![(b"timeout", b"4")],
            vec![(b"tsize", b"10")],
            vec![(b"multicast", b"1")],
            vec![(b"blksize", b"x")],
        ] {
            assert!(
                read_oack(&bad, &asked, T).is_err(),
                "{bad:?} must be refused"
            );
        }
    }

    #[test]
    fn options_the_server_leaves_out_keep_their_defaults() {
        let asked = RequestOptions {
            blksize: Some(1428),
            windowsize: Some(8),
            tsize: true,
            timeout: None,
        };
        let a = read_oack(&vec![(&b"tsize"[..], &b"77"[..])], &asked, T).expect("valid");
        assert_eq!(
            a,
            Agreed {
                tsize: Some(77),
                ..Agreed::defaults(T)
            }
        );
    }
}
