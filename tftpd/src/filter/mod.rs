//! Packet filtering on every socket: datagrams that cannot be TFTP for the socket's role are
//! dropped and counted by reason before the protocol code sees them.
//!
//! The rules live once, in `tftp-ebpf-common`. This build applies them in userspace (the
//! `userspace` path); the eBPF socket filter, classic BPF and XDP backends (issue #3) apply
//! the same rules in the kernel and report into the same metric with their own `path`.

pub mod counters;

use tftp_ebpf_common::{Verdict, classify_request, classify_transfer};

pub use self::counters::{FilterCounters, Path};

/// Which socket a datagram arrived on; each role has its own rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A listening socket: only RRQ/WRQ.
    Listener,
    /// A transfer's socket: only ACK, DATA within the block size limit, and ERROR.
    Transfer {
        /// The largest block size the server agrees to (`protocol.max_blksize`).
        max_blksize: u16,
    },
}

/// The userspace path: applies the rule for `role`, counts the verdict, and says whether to
/// keep the datagram.
pub fn admit(role: Role, datagram: &[u8], counters: &FilterCounters) -> bool {
    let verdict = match role {
        Role::Listener => classify_request(datagram),
        Role::Transfer { max_blksize } => classify_transfer(datagram, usize::from(max_blksize)),
    };
    counters.record(verdict.reason(), datagram.len() as u64);
    verdict == Verdict::Pass
}

#[cfg(test)]
mod tests {
    use tftp_ebpf_common::Reason;

    use super::*;

    #[test]
    fn junk_is_dropped_and_counted_by_reason() {
        let c = FilterCounters::default();
        let xfer = Role::Transfer { max_blksize: 512 };
        assert!(
            admit(Role::Listener, b"\x00\x01f\x00octet\x00", &c),
            "a request passes"
        );
        assert!(
            !admit(Role::Listener, b"\x00\x03\x00\x01x", &c),
            "DATA to the listener"
        );
        assert!(!admit(Role::Listener, b"\x00", &c), "too short");
        assert!(admit(xfer, b"\x00\x04\x00\x01", &c), "an ACK passes");
        assert!(!admit(xfer, b"\x00\x04\x00\x01\x00", &c), "a 5-byte ACK");
        assert_eq!(c.get(Reason::Passed).packets, 2);
        assert_eq!(
            c.get(Reason::BadOpcode),
            tftp_ebpf_common::Counter {
                packets: 1,
                bytes: 5
            }
        );
        assert_eq!(c.get(Reason::TooShort).packets, 1);
        assert_eq!(c.get(Reason::BadAckLength).packets, 1);
    }
}
