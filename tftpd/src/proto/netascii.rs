//! Netascii conversion (RFC 764, RFC 1350 §5, RFC 1123 §4.2.3.1), streaming and pure.
//!
//! On the wire a line ends with CR LF and a bare CR is sent as CR NUL. Local files are Unix
//! text (LF). Both directions keep state across calls, because a two-byte sequence can be
//! split across DATA blocks: an expansion may straddle the end of an output block, and a CR
//! at the end of one received block pairs with the first byte of the next.

const CR: u8 = b'\r';
const LF: u8 = b'\n';
const NUL: u8 = 0;

/// Local bytes to netascii.
#[derive(Debug, Default, Clone)]
pub struct Encoder {
    /// The second byte of an expansion that did not fit the last output buffer.
    pending: Option<u8>,
}

impl Encoder {
    /// A fresh encoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Converts from `input` into `out` as far as both allow; returns (input bytes consumed,
    /// output bytes written). LF becomes CR LF, CR becomes CR NUL.
    pub fn encode(&mut self, input: &[u8], out: &mut [u8]) -> (usize, usize) {
        let mut used = 0;
        let mut wrote = 0;
        if let Some(p) = self.pending {
            let Some(slot) = out.first_mut() else {
                return (0, 0);
            };
            *slot = p;
            wrote = 1;
            self.pending = None;
        }
        while wrote < out.len() {
            let Some(&b) = input.get(used) else { break };
            used += 1;
            // RFC 764 (p. 11), kept by RFC 1350 §5: an end of line is CR LF and a CR that
            // is not an end of line is CR NUL, so both local bytes expand to two.
            let second = match b {
                LF => Some(LF),
                CR => Some(NUL),
                _ => None,
            };
            match second {
                None => {
                    out[wrote] = b;
                    wrote += 1;
                }
                Some(s) => {
                    out[wrote] = CR;
                    wrote += 1;
                    if wrote < out.len() {
                        out[wrote] = s;
                        wrote += 1;
                    } else {
                        self.pending = Some(s);
                    }
                }
            }
        }
        (used, wrote)
    }

    /// True while the second byte of an expansion waits to be written. The read side must not
    /// end the transfer while this holds, even when the file is at EOF: the byte belongs in
    /// the next block.
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }
}

/// Netascii to local bytes.
#[derive(Debug, Default, Clone)]
pub struct Decoder {
    /// A CR seen at the end of the last input, waiting for its pair.
    pending_cr: bool,
}

impl Decoder {
    /// A fresh decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the decoded form of `input` to `out`: CR LF becomes LF, CR NUL becomes CR, and
    /// a CR followed by anything else is kept as CR plus that byte (lenient, as tftp-hpa is,
    /// since some clients send bare CRs).
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len());
        for &b in input {
            if self.pending_cr {
                self.pending_cr = false;
                match b {
                    LF => out.push(LF),
                    NUL => out.push(CR),
                    CR => {
                        out.push(CR);
                        self.pending_cr = true;
                    }
                    other => {
                        out.push(CR);
                        out.push(other);
                    }
                }
            } else if b == CR {
                self.pending_cr = true;
            } else {
                out.push(b);
            }
        }
    }

    /// Ends the stream: a lone trailing CR is kept.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.pending_cr) {
            out.push(CR);
        }
    }
}

/// The size of `data` once encoded (for tests and RFC 2349 tsize estimates).
pub fn encoded_len(data: &[u8]) -> u64 {
    data.len() as u64 + data.iter().filter(|&&b| b == CR || b == LF).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode_all(input: &[u8], chunk: usize) -> Vec<u8> {
        let mut enc = Encoder::new();
        let mut out = Vec::new();
        let mut buf = vec![0u8; chunk];
        let mut pos = 0;
        loop {
            let (used, wrote) = enc.encode(&input[pos..], &mut buf);
            pos += used;
            out.extend_from_slice(&buf[..wrote]);
            if used == 0 && wrote == 0 {
                break;
            }
        }
        assert!(!enc.has_pending(), "nothing left pending at the end");
        out
    }

    fn decode_split(input: &[u8], at: usize) -> Vec<u8> {
        let mut dec = Decoder::new();
        let mut out = Vec::new();
        let at = at.min(input.len());
        dec.decode(&input[..at], &mut out);
        dec.decode(&input[at..], &mut out);
        dec.finish(&mut out);
        out
    }

    #[test]
    fn line_ends_and_bare_cr_are_translated_both_ways() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"abc", b"abc"),
            (b"a\nb\n", b"a\r\nb\r\n"),
            (b"a\rb", b"a\r\0b"),
            (b"\r\n", b"\r\0\r\n"),
            (b"\n\n", b"\r\n\r\n"),
            (b"x\r", b"x\r\0"),
        ];
        for (local, wire) in cases {
            assert_eq!(&encode_all(local, 512), wire, "encoding {local:?}");
            assert_eq!(&decode_split(wire, usize::MAX), local, "decoding {wire:?}");
            assert_eq!(
                encoded_len(local),
                wire.len() as u64,
                "encoded_len of {local:?}"
            );
        }
    }

    fn decode_chunks(input: &[u8], chunk: usize) -> Vec<u8> {
        let mut dec = Decoder::new();
        let mut out = Vec::new();
        for part in input.chunks(chunk.max(1)) {
            dec.decode(part, &mut out);
        }
        dec.finish(&mut out);
        out
    }

    #[test]
    fn expansion_straddling_a_block_boundary_is_carried_over() {
        let local = b"ab\ncd\re\n";
        let want = encode_all(local, 1024);
        for chunk in 1..=8 {
            assert_eq!(
                encode_all(local, chunk),
                want,
                "output buffers of {chunk} bytes"
            );
        }
    }

    #[test]
    fn cr_or_lf_at_every_block_boundary_position_encodes_as_one_shot() {
        // Every offset up to 16 against every buffer size up to 8 puts the expansion's first
        // byte at every position in a block, including last, where its pair must carry over.
        for special in [CR, LF] {
            for at in 0..16 {
                let mut local = b"0123456789abcdef".to_vec();
                local.insert(at, special);
                let want = encode_all(&local, 1024);
                for chunk in 1..=8 {
                    assert_eq!(
                        encode_all(&local, chunk),
                        want,
                        "byte {special:#04x} at offset {at}, output buffers of {chunk} bytes"
                    );
                }
            }
        }
    }

    #[test]
    fn pending_byte_is_written_first_and_waits_for_a_nonempty_buffer() {
        let mut enc = Encoder::new();
        let mut one = [0u8; 1];
        assert_eq!(
            enc.encode(b"\nz", &mut one),
            (1, 1),
            "LF consumed, CR written"
        );
        assert_eq!(one, [CR], "first half of the expansion");
        assert!(enc.has_pending(), "LF waits for the next buffer");
        assert_eq!(
            enc.encode(b"z", &mut []),
            (0, 0),
            "an empty buffer takes nothing"
        );
        assert!(enc.has_pending(), "still pending after an empty buffer");
        let mut two = [0u8; 2];
        assert_eq!(enc.encode(b"z", &mut two), (1, 2), "pending LF, then z");
        assert_eq!(two, [LF, b'z'], "pending byte comes first");
        assert!(!enc.has_pending(), "nothing pending afterwards");
    }

    #[test]
    fn cr_at_the_end_of_a_received_block_pairs_with_the_next() {
        assert_eq!(decode_split(b"a\r\nb", 2), b"a\nb", "CR | LF");
        assert_eq!(decode_split(b"a\r\0b", 2), b"a\rb", "CR | NUL");
        assert_eq!(decode_split(b"a\r", 2), b"a\r", "a trailing CR is kept");
        assert_eq!(
            decode_split(b"a\rb", 2),
            b"a\rb",
            "a bare CR is kept (lenient)"
        );
        assert_eq!(decode_split(b"\r\r\n", 1), b"\r\n", "CR CR LF");
    }

    #[test]
    fn decode_is_lenient_with_malformed_wire_bytes() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"\r", b"\r"),
            (b"\r\r", b"\r\r"),
            (b"\rx", b"\rx"),
            (b"\r\r\0", b"\r\r"),
            (b"a\0b", b"a\0b"),
            (b"\n", b"\n"),
        ];
        for (wire, local) in cases {
            for chunk in 1..=3 {
                assert_eq!(
                    &decode_chunks(wire, chunk),
                    local,
                    "decoding {wire:?} in chunks of {chunk}"
                );
            }
        }
    }

    proptest! {
        #[test]
        fn decode_of_encode_is_identity_at_any_split(
            data in proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(0u8), any::<u8>()], 0..300),
            chunk in 1usize..20,
            at in 0usize..700,
        ) {
            let wire = encode_all(&data, chunk);
            prop_assert_eq!(wire.len() as u64, encoded_len(&data), "encoded_len matches the encoding");
            prop_assert_eq!(decode_split(&wire, at), data.clone(), "decode split at {}", at);
            prop_assert_eq!(decode_chunks(&wire, chunk), data, "decode in chunks of {}", chunk);
        }

        #[test]
        fn encoding_in_chunks_equals_one_shot(
            data in proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), any::<u8>()], 0..300),
            chunk in 1usize..20,
        ) {
            let one_shot = encode_all(&data, data.len() * 2 + 1);
            prop_assert_eq!(encode_all(&data, chunk), one_shot, "output buffers of {} bytes", chunk);
        }

        #[test]
        fn decode_never_panics_and_never_grows(
            data in proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(0u8), any::<u8>()], 0..300),
            at in 0usize..300,
        ) {
            // Every wire pair decodes to at most two bytes and a lone CR to one.
            let out = decode_split(&data, at);
            prop_assert!(out.len() <= data.len(), "{} decoded bytes from {} wire bytes", out.len(), data.len());
        }
    }
}
