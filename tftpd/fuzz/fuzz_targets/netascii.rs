//! Fuzzes netascii: decoding arbitrary wire bytes split at any point never panics, and
//! encoding arbitrary file bytes in small output buffers then decoding gives them back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tftpd::proto::netascii::{Decoder, Encoder};

fuzz_target!(|data: &[u8]| {
    let Some((&knob, rest)) = data.split_first() else {
        return;
    };
    let split = usize::from(knob) % (rest.len() + 1);
    let mut out = Vec::new();
    let mut dec = Decoder::new();
    dec.decode(&rest[..split], &mut out);
    dec.decode(&rest[split..], &mut out);
    dec.finish(&mut out);

    let chunk = usize::from(knob % 16) + 1;
    let mut enc = Encoder::new();
    let mut wire = Vec::new();
    let mut buf = vec![0u8; chunk];
    let mut pos = 0;
    loop {
        let (used, wrote) = enc.encode(&rest[pos..], &mut buf);
        pos += used;
        wire.extend_from_slice(&buf[..wrote]);
        if used == 0 && wrote == 0 {
            break;
        }
    }
    let mut back = Vec::new();
    let mut dec = Decoder::new();
    dec.decode(&wire, &mut back);
    dec.finish(&mut back);
    assert_eq!(back, rest, "netascii round trip");
});
