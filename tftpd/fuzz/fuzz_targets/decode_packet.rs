//! Fuzzes the packet decoder: any datagram decodes to a value or an error, never a panic, and
//! whatever decodes re-encodes to bytes that decode to the same packet.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tftpd::proto::Packet;

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = Packet::decode(data) {
        let mut again = Vec::new();
        packet.encode(&mut again);
        let back = Packet::decode(&again).expect("an encoded packet must decode");
        assert_eq!(back, packet, "decode(encode(p)) == p");
    }
});
