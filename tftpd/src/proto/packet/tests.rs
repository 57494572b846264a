//! Packet codec tests: decode cases field by field, malformed input, and the
//! decode/encode round trip.

use super::*;
use proptest::prelude::*;

fn enc(p: &Packet<'_>) -> Vec<u8> {
    let mut v = Vec::new();
    p.encode(&mut v);
    v
}

#[test]
fn rrq_with_options_decodes_field_by_field() {
    let d = b"\x00\x01boot/pxelinux.0\x00octet\x00blksize\x001428\x00tsize\x000\x00";
    let p = Packet::decode(d).expect("valid RRQ must decode");
    assert_eq!(
        p,
        Packet::Rrq(Request {
            filename: b"boot/pxelinux.0",
            mode: b"octet",
            options: vec![(&b"blksize"[..], &b"1428"[..]), (b"tsize", b"0")],
        })
    );
    assert_eq!(enc(&p), d.to_vec(), "re-encoding must give the same bytes");
}

#[test]
fn malformed_datagrams_are_errors_not_panics() {
    let cases: &[(&[u8], DecodeError)] = &[
        (b"", DecodeError::TooShort { len: 0 }),
        (b"\x00", DecodeError::TooShort { len: 1 }),
        (b"\x00\x09abc", DecodeError::UnknownOpcode(9)),
        (b"\x00\x00", DecodeError::UnknownOpcode(0)),
        (
            b"\x00\x01file",
            DecodeError::Unterminated { field: "filename" },
        ),
        (
            b"\x00\x01file\x00octet",
            DecodeError::Unterminated { field: "mode" },
        ),
        (
            b"\x00\x02f\x00octet\x00blksize\x00",
            DecodeError::OptionWithoutValue,
        ),
        (
            b"\x00\x02f\x00octet\x00blksize\x00512",
            DecodeError::OptionWithoutValue,
        ),
        (b"\x00\x03\x00", DecodeError::TooShort { len: 3 }),
        (
            b"\x00\x04\x00\x01\x00",
            DecodeError::BadAckLength { len: 5 },
        ),
        (b"\x00\x04\x00", DecodeError::BadAckLength { len: 3 }),
        (b"\x00\x05\x00", DecodeError::TooShort { len: 3 }),
    ];
    for (bytes, want) in cases {
        assert_eq!(
            Packet::decode(bytes),
            Err(*want),
            "decoding {bytes:?} must fail with {want:?}"
        );
    }
}

#[test]
fn trailing_nul_padding_after_a_request_is_ignored() {
    let p = Packet::decode(b"\x00\x01f\x00octet\x00\x00\x00\x00").expect("padded RRQ");
    let Packet::Rrq(req) = p else {
        panic!("expected an RRQ, got {p:?}")
    };
    assert!(req.options.is_empty(), "padding is not an option");
}

#[test]
fn empty_data_block_and_error_without_nul_decode() {
    assert_eq!(
        Packet::decode(b"\x00\x03\x00\x07"),
        Ok(Packet::Data {
            block: 7,
            data: b""
        })
    );
    assert_eq!(
        Packet::decode(b"\x00\x05\x00\x01gone"),
        Ok(Packet::Error {
            code: ErrorCode::FileNotFound,
            message: b"gone"
        })
    );
}

#[test]
fn error_encoding_strips_nuls_from_the_message() {
    let mut v = Vec::new();
    encode_error(&mut v, ErrorCode::AccessViolation, b"a\0b");
    assert_eq!(v, b"\x00\x05\x00\x02ab\x00");
}

fn cstr() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(1u8..=255, 0..40)
}

/// An option name is never empty: an empty name followed by an empty value is
/// indistinguishable from the NUL padding that decode accepts.
fn option_name() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(1u8..=255, 1..40)
}

type Parts = (u8, Vec<u8>, Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>, u16);

fn packet_parts() -> impl Strategy<Value = Parts> {
    (
        0u8..6,
        cstr(),
        cstr(),
        proptest::collection::vec((option_name(), cstr()), 0..5),
        any::<u16>(),
    )
}

proptest! {
    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        let _ = Packet::decode(&bytes);
    }

    #[test]
    fn encode_then_decode_is_identity((kind, a, b, opts, n) in packet_parts()) {
        let options: Vec<(&[u8], &[u8])> =
            opts.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
        let req = Request { filename: &a, mode: &b, options: options.clone() };
        let p = match kind {
            0 => Packet::Rrq(req),
            1 => Packet::Wrq(req),
            2 => Packet::Data { block: n, data: &a },
            3 => Packet::Ack { block: n },
            4 => Packet::Error { code: ErrorCode::from_u16(n), message: &a },
            _ => Packet::Oack { options },
        };
        let bytes = enc(&p);
        let back = Packet::decode(&bytes).expect("an encoded packet must decode");
        prop_assert_eq!(back, p);
    }
}
