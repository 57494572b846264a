//! The size probe: which ERROR 8 from a client ends a download as [`Outcome::SizeProbe`]
//! rather than [`Outcome::PeerError`].

use std::time::Instant;

use super::*;
use crate::proto::packet::{ack, encode_error};
use crate::proto::sim::config;

fn oack(options: &[(&str, &str)]) -> Vec<u8> {
    let mut d = vec![0, 6];
    for (k, v) in options {
        d.extend_from_slice(k.as_bytes());
        d.push(0);
        d.extend_from_slice(v.as_bytes());
        d.push(0);
    }
    d
}

fn error(code: ErrorCode) -> Vec<u8> {
    let mut d = Vec::new();
    encode_error(&mut d, code, b"User aborted the transfer");
    d
}

fn with_oack(options: &[(&str, &str)], now: Instant) -> ReadTransfer {
    let mut cfg = config(512, 1, false);
    cfg.oack = Some(oack(options));
    ReadTransfer::new(cfg, now)
}

#[test]
fn error_8_after_an_oack_with_the_size_is_a_size_probe() {
    let now = Instant::now();
    for options in [
        &[("tsize", "3000")][..],
        &[("blksize", "1468"), ("TSIZE", "3000")],
    ] {
        let mut t = with_oack(options, now);
        assert!(!t.size_told(), "{options:?}: nothing sent yet");
        assert!(t.poll_transmit().is_some(), "the OACK");
        assert!(t.size_told(), "{options:?}: the OACK told the size");
        t.handle_datagram(now, &error(ErrorCode::OptionRefused));
        assert_eq!(t.outcome(), Some(&Outcome::SizeProbe), "{options:?}");
        assert_eq!(t.outcome().map(Outcome::label), Some("size_probe"));
        assert!(t.is_finished(), "nothing is sent back to a probe");
    }
}

#[test]
fn other_endings_of_a_probe_like_request_stay_peer_errors() {
    let now = Instant::now();
    let peer_error = |t: &ReadTransfer, why: &str| {
        assert!(
            matches!(t.outcome(), Some(Outcome::PeerError { .. })),
            "{why}: {:?}",
            t.outcome()
        );
    };
    // The OACK does not answer tsize: the client refuses what was negotiated.
    let mut t = with_oack(&[("blksize", "1468")], now);
    drain(&mut t);
    t.handle_datagram(now, &error(ErrorCode::OptionRefused));
    peer_error(&t, "no tsize in the OACK");
    // Another code after the size was told.
    let mut t = with_oack(&[("tsize", "3000")], now);
    drain(&mut t);
    t.handle_datagram(now, &error(ErrorCode::NotDefined));
    peer_error(&t, "ERROR 0");
    // An ERROR 8 before the OACK went out cannot answer it.
    let mut t = with_oack(&[("tsize", "3000")], now);
    t.handle_datagram(now, &error(ErrorCode::OptionRefused));
    peer_error(&t, "before the OACK was sent");
    // After DATA was acknowledged it is a transfer given up part-way.
    let mut t = with_oack(&[("tsize", "3000")], now);
    drain(&mut t);
    t.handle_datagram(now, &ack(0));
    t.handle_block(now, block(&[1; 512]));
    drain(&mut t);
    assert!(t.size_told(), "ACK 0 acknowledges no DATA");
    t.handle_datagram(now, &ack(1));
    assert!(!t.size_told(), "DATA 1 acknowledged");
    t.handle_datagram(now, &error(ErrorCode::OptionRefused));
    peer_error(&t, "after DATA 1 was acknowledged");
    // Without an OACK there is no size to probe.
    let mut t = ReadTransfer::new(config(512, 1, false), now);
    t.handle_block(now, block(&[1; 100]));
    drain(&mut t);
    t.handle_datagram(now, &error(ErrorCode::OptionRefused));
    peer_error(&t, "no OACK");
}

fn block(payload: &[u8]) -> Vec<u8> {
    let mut d = vec![0; 4];
    d.extend_from_slice(payload);
    d
}

fn drain(t: &mut ReadTransfer) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| t.poll_transmit().map(|x| x.datagram.to_vec())).collect()
}
