//! Drop reasons and the per-reason counter. The reasons index per-CPU array maps, so their
//! numbers are part of the map layout operators read with `bpftool`: never renumber one.

/// Why a datagram was dropped (or `Passed`). The discriminant is the counter map index.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Kept: handed to the daemon.
    Passed = 0,
    /// Shorter than any TFTP packet of its kind.
    TooShort = 1,
    /// An opcode this socket never takes (e.g. DATA to the listener, RRQ to a transfer).
    BadOpcode = 2,
    /// An RRQ/WRQ without a NUL-terminated file name and mode.
    MalformedRequest = 3,
    /// A DATA block larger than the largest block size the server agrees to.
    Oversized = 4,
    /// An ACK that is not exactly 4 bytes.
    BadAckLength = 5,
    /// A well-formed request over its source's rate limit (XDP only).
    RateLimited = 6,
    /// From a source on the deny list (XDP only).
    Denied = 7,
    /// A UDP fragment, passed to the stack for reassembly; the socket filter judges the
    /// whole datagram (XDP only).
    FragmentPassed = 8,
    /// A UDP fragment from a denied source: every fragment carries the source, so none
    /// passes and the datagram never reassembles (XDP only).
    FragmentDenied = 9,
    /// The first fragment of a request over its source's rate limit (XDP only).
    FragmentRateLimited = 10,
    /// A UDP datagram found behind IPv6 extension headers, passed by the rules, the deny
    /// list and the rate limit (its drops count under those reasons) (XDP only).
    ExtHeaderPassed = 11,
    /// IPv6 whose extension-header chain does not reach UDP within the walk's bound: its
    /// ports cannot be known, so it passes, charged to its source's rate (XDP only).
    ExtHeaderUnparsed = 12,
    /// IPv6 with extension headers from a denied source (XDP only).
    ExtHeaderDenied = 13,
    /// IPv6 with extension headers over its source's rate limit (XDP only).
    ExtHeaderRateLimited = 14,
}

impl Reason {
    /// Every reason, in index order.
    pub const ALL: [Self; 15] = [
        Self::Passed,
        Self::TooShort,
        Self::BadOpcode,
        Self::MalformedRequest,
        Self::Oversized,
        Self::BadAckLength,
        Self::RateLimited,
        Self::Denied,
        Self::FragmentPassed,
        Self::FragmentDenied,
        Self::FragmentRateLimited,
        Self::ExtHeaderPassed,
        Self::ExtHeaderUnparsed,
        Self::ExtHeaderDenied,
        Self::ExtHeaderRateLimited,
    ];

    /// The reasons a socket filter (eBPF, classic BPF or userspace) can give: it sees one
    /// socket's datagrams, without addresses, fragments or a clock. The first indices.
    pub const SOCKET: &'static [Self] = Self::ALL.split_at(6).0;

    /// Number of reasons: the size of a counter map.
    pub const COUNT: u32 = Self::ALL.len() as u32;

    /// The map index.
    pub const fn index(self) -> u32 {
        self as u32
    }

    /// The metric label value (a closed set).
    pub const fn label(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::TooShort => "too_short",
            Self::BadOpcode => "bad_opcode",
            Self::MalformedRequest => "malformed_request",
            Self::Oversized => "oversized",
            Self::BadAckLength => "bad_ack_length",
            Self::RateLimited => "rate_limited",
            Self::Denied => "denied",
            Self::FragmentPassed => "fragment_passed",
            Self::FragmentDenied => "fragment_denied",
            Self::FragmentRateLimited => "fragment_rate_limited",
            Self::ExtHeaderPassed => "ext_header_passed",
            Self::ExtHeaderUnparsed => "ext_header_unparsed",
            Self::ExtHeaderDenied => "ext_header_denied",
            Self::ExtHeaderRateLimited => "ext_header_rate_limited",
        }
    }

    /// Whether the datagram went on to the stack.
    pub const fn passes(self) -> bool {
        matches!(
            self,
            Self::Passed | Self::FragmentPassed | Self::ExtHeaderPassed | Self::ExtHeaderUnparsed
        )
    }
}

/// Packets and bytes counted for one reason on one CPU. Two u64s: no padding, so the layout
/// is the same on every side and `bpftool map dump` shows both fields.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter {
    /// Datagrams.
    pub packets: u64,
    /// Bytes of UDP payload.
    pub bytes: u64,
}

/// Userspace reads map values through aya's `Pod`.
#[cfg(feature = "user")]
#[expect(
    unsafe_code,
    reason = "aya reads map values through Pod; the impl is sound as stated"
)]
mod pod {
    // SAFETY: Counter is repr(C), Copy, made of two u64s with no padding, so any byte
    // pattern the kernel hands back is a valid value.
    unsafe impl aya::Pod for super::Counter {}
    // SAFETY: XdpConfig is repr(C), Copy, made of integers laid out without padding (4 u16,
    // 2 u16, 2 u32, 2 u16, 2 u64: 40 bytes), so any byte pattern is a valid value.
    unsafe impl aya::Pod for crate::xdp::XdpConfig {}
}

#[cfg(test)]
mod tests {
    use super::Reason;

    #[test]
    fn reason_indices_are_dense_and_stable() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(r.index() as usize, i, "{r:?} must sit at index {i}");
        }
        assert_eq!(Reason::COUNT, 15);
        assert_eq!(
            &Reason::ALL[..Reason::SOCKET.len()],
            Reason::SOCKET,
            "the socket reasons are the first indices"
        );
    }
}
