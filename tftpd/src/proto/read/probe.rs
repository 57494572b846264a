//! What the read machine knows of a size probe (RFC 2349 `tsize` asked, the OACK answering
//! it sent, no DATA acknowledged), so an ERROR 8 then ends the download as
//! [`Outcome::SizeProbe`](crate::proto::Outcome::SizeProbe) rather than as a peer error.

use super::{Packet, ReadTransfer};

impl ReadTransfer {
    /// True while an ERROR 8 from the client ends a size probe
    /// ([`Outcome::SizeProbe`](crate::proto::Outcome::SizeProbe)): the
    /// OACK it was sent answers `tsize`, and no DATA has been acknowledged. An ERROR 8 after
    /// DATA, or to an OACK without the size, is the client refusing the transfer.
    pub fn size_told(&self) -> bool {
        self.oack_sent && self.oack_tells_size && self.base == 1
    }
}

/// True when the encoded OACK `oack` carries `tsize` (RFC 2349), in any case.
pub(super) fn tells_size(oack: &[u8]) -> bool {
    matches!(Packet::decode(oack), Ok(Packet::Oack { options })
        if options.iter().any(|(name, _)| name.eq_ignore_ascii_case(b"tsize")))
}
