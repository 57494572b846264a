//! The attacker's datagrams, built byte by byte, and the IP-level accounting every row's ratio
//! uses. Its own tiny codec on purpose: hostile requests (CR/LF in a name, an option without a
//! sane value) are exactly what a well-behaved encoder refuses to produce.

/// IPv4 header (20) plus UDP header (8): what each datagram costs on the wire beyond its
/// payload, so a ratio is taken at the IP level, as a reflector's victim pays it.
pub(crate) const IPV4_UDP_OVERHEAD: u64 = 28;

/// TFTP opcodes (RFC 1350, RFC 2347).
pub(crate) const OP_RRQ: u16 = 1;
pub(crate) const OP_WRQ: u16 = 2;
pub(crate) const OP_DATA: u16 = 3;
pub(crate) const OP_ACK: u16 = 4;
pub(crate) const OP_ERROR: u16 = 5;
pub(crate) const OP_OACK: u16 = 6;

/// A request (RRQ or WRQ) from raw parts: nothing is checked or escaped.
pub(crate) fn request(op: u16, name: &[u8], mode: &[u8], options: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut d = op.to_be_bytes().to_vec();
    for field in [name, mode] {
        d.extend_from_slice(field);
        d.push(0);
    }
    for (k, v) in options {
        d.extend_from_slice(k);
        d.push(0);
        d.extend_from_slice(v);
        d.push(0);
    }
    d
}

/// An RRQ in octet mode with text options.
pub(crate) fn rrq(name: &str, options: &[(&str, &str)]) -> Vec<u8> {
    let options: Vec<(&[u8], &[u8])> = options
        .iter()
        .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
        .collect();
    request(OP_RRQ, name.as_bytes(), b"octet", &options)
}

pub(crate) fn ack(block: u16) -> Vec<u8> {
    let mut d = OP_ACK.to_be_bytes().to_vec();
    d.extend_from_slice(&block.to_be_bytes());
    d
}

pub(crate) fn data(block: u16, payload: &[u8]) -> Vec<u8> {
    let mut d = OP_DATA.to_be_bytes().to_vec();
    d.extend_from_slice(&block.to_be_bytes());
    d.extend_from_slice(payload);
    d
}

pub(crate) fn error(code: u16, message: &[u8]) -> Vec<u8> {
    let mut d = OP_ERROR.to_be_bytes().to_vec();
    d.extend_from_slice(&code.to_be_bytes());
    d.extend_from_slice(message);
    d.push(0);
    d
}

/// The opcode of a datagram, if it has one.
pub(crate) fn opcode(d: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*d.first()?, *d.get(1)?]))
}

/// The block number of a DATA or ACK (bytes 2..4).
pub(crate) fn block(d: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(2)?, *d.get(3)?]))
}

/// Datagrams and payload bytes, one way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Ledger {
    pub(crate) datagrams: u64,
    pub(crate) bytes: u64,
}

impl Ledger {
    pub(crate) fn add(&mut self, payload: usize) {
        self.datagrams += 1;
        self.bytes += payload as u64;
    }

    pub(crate) fn merge(&mut self, other: Self) {
        self.datagrams += other.datagrams;
        self.bytes += other.bytes;
    }

    /// Bytes at the IP level: every datagram's payload plus its IPv4 and UDP headers.
    pub(crate) fn ip_bytes(self) -> u64 {
        self.bytes + self.datagrams * IPV4_UDP_OVERHEAD
    }
}

/// What came back per byte sent, both at the IP level; `None` when nothing was sent.
pub(crate) fn amplification(sent: Ledger, received: Ledger) -> Option<f64> {
    (sent.ip_bytes() > 0).then(|| received.ip_bytes() as f64 / sent.ip_bytes() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_rrq_is_fourteen_bytes_and_forty_two_at_ip_level() {
        let d = rrq("f.bin", &[]);
        assert_eq!(d.len(), 14, "the issue's 14-byte RRQ");
        let mut l = Ledger::default();
        l.add(d.len());
        assert_eq!(l.ip_bytes(), 42);
        let mut back = Ledger::default();
        back.add(516);
        back.add(516);
        let ratio = amplification(l, back).expect("something was sent");
        assert!(
            ratio < 26.0,
            "two DATA 1 are the issue's 26x bound: {ratio}"
        );
    }

    #[test]
    fn raw_requests_keep_control_bytes() {
        let d = request(OP_RRQ, b"a\r\nb", b"octet", &[(b"k\n", b"v")]);
        assert_eq!(d, b"\x00\x01a\r\nb\x00octet\x00k\n\x00v\x00");
        assert_eq!(opcode(&d), Some(OP_RRQ));
        assert_eq!(block(&ack(64)), Some(64));
        assert_eq!(opcode(&[1]), None);
    }
}
