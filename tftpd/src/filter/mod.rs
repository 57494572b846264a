//! Packet filtering on every socket: datagrams that cannot be TFTP for the socket's role are
//! dropped and counted by reason before the protocol code sees them.
//!
//! The rules live once, in `tftp-ebpf-common`. They run in one of three places, best first:
//! the eBPF socket filters (`path="socket"`, counted by reason in per-CPU maps), classic BPF
//! (`path="cbpf"`, which cannot count by reason: see [`cbpf`]), or the daemon itself
//! (`path="userspace"`, after the kernel has woken it). All report into the same metric.

#[cfg(linux)]
pub mod cbpf;
pub mod counters;
#[cfg(linux)]
pub mod ebpf;
mod kernel;
#[cfg(linux)]
pub mod pin_dir;
#[cfg(linux)]
pub mod xdp;
#[cfg(not(linux))]
#[path = "xdp_unsupported.rs"]
pub mod xdp;

use tftp_ebpf_common::{Verdict, classify_request, classify_transfer};

pub use self::counters::{Breakdown, FilterCounters, Path};
pub use self::kernel::{KernelFilter, TransferAttachError};

use crate::config::EbpfMode;

/// Why the configured filter could not be set up (`ebpf.mode = "required"`).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// eBPF was required but could not be loaded or attached.
    #[cfg(linux)]
    #[error("ebpf.mode = \"required\" but the eBPF filters could not be set up")]
    Ebpf(#[source] ebpf::AttachError),
    /// eBPF was required on a platform without it.
    #[cfg(not(linux))]
    #[error("ebpf.mode = \"required\" but eBPF socket filters exist only on Linux")]
    Unsupported,
}

/// Sets up the kernel filter per `mode` and attaches it to the listening sockets: eBPF, else
/// classic BPF, else none (the userspace rules). Which one, and why not a better one, is
/// logged once.
pub fn setup(
    mode: EbpfMode,
    pin_dir: &std::path::Path,
    max_blksize: u16,
    single_port: bool,
    listeners: &[std::net::UdpSocket],
) -> Result<Option<KernelFilter>, SetupError> {
    if mode == EbpfMode::Off {
        tracing::info!(
            path = "userspace",
            "packet filter: userspace rules (ebpf.mode = \"off\")"
        );
        return Ok(None);
    }
    #[cfg(linux)]
    {
        if mode != EbpfMode::Cbpf {
            match kernel::setup_ebpf(pin_dir, max_blksize, single_port, listeners) {
                Ok(f) => {
                    tracing::info!(
                        path = "socket",
                        pinned = %pin_dir.display(),
                        "packet filter: eBPF socket filters attached"
                    );
                    return Ok(Some(f));
                }
                Err(e) if mode == EbpfMode::Required => return Err(SetupError::Ebpf(e)),
                Err(e) => tracing::warn!(
                    error = %crate::logging::error_chain(&e),
                    "packet filter: eBPF unavailable, trying classic BPF"
                ),
            }
        }
        match kernel::setup_cbpf(max_blksize, single_port, listeners) {
            Ok(f) => {
                tracing::info!(
                    path = "cbpf",
                    "packet filter: classic BPF socket filters attached (drops are counted \
                     without a reason)"
                );
                Ok(Some(f))
            }
            Err(e) => {
                tracing::warn!(
                    path = "userspace",
                    error = %crate::logging::error_chain(&e),
                    "packet filter: classic BPF unavailable, using the userspace rules"
                );
                Ok(None)
            }
        }
    }
    #[cfg(not(linux))]
    {
        let _ = (pin_dir, max_blksize, single_port, listeners);
        if mode == EbpfMode::Required {
            return Err(SetupError::Unsupported);
        }
        tracing::info!(
            path = "userspace",
            "packet filter: userspace rules (no socket filter that drops on this platform)"
        );
        Ok(None)
    }
}

/// Why XDP could not be set up as configured (`ebpf.mode = "required"`).
#[derive(Debug, thiserror::Error)]
#[error(
    "ebpf.mode = \"required\" but XDP could not be set up on {failed} of the interfaces in ebpf.xdp_interfaces"
)]
pub struct XdpSetupError {
    failed: usize,
}

/// Loads the XDP program and attaches it to `ebpf.xdp_interfaces` (nothing to do when that
/// is empty). With `ebpf.mode = "auto"` a failure is logged and the daemon goes on with what
/// worked; with `"required"` any failure stops the start.
pub fn setup_xdp(
    config: &crate::config::Config,
    listen_ports: Vec<u16>,
) -> Result<Option<xdp::XdpFilter>, XdpSetupError> {
    let interfaces = &config.ebpf.xdp_interfaces;
    if interfaces.is_empty() {
        return Ok(None);
    }
    let required = config.ebpf.mode == EbpfMode::Required;
    let fail = |errors: Vec<String>| {
        for e in &errors {
            tracing::warn!(path = "xdp", error = %e, "packet filter: XDP not attached");
        }
        if required && !errors.is_empty() {
            Err(XdpSetupError {
                failed: errors.len(),
            })
        } else {
            Ok(())
        }
    };
    match xdp::XdpFilter::load(&config.ebpf.pin_dir, listen_ports) {
        Ok(f) => {
            let errors = f.reconfigure(config);
            let failed = fail(
                errors
                    .iter()
                    .map(|e| crate::logging::error_chain(e))
                    .collect(),
            );
            if let Err(e) = failed {
                f.detach_all();
                f.unpin();
                return Err(e);
            }
            Ok(Some(f))
        }
        Err(e) => {
            fail(vec![crate::logging::error_chain(&e); interfaces.len()])?;
            Ok(None)
        }
    }
}

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
    /// A listening socket in single-port mode: requests, and what transfers carry.
    SinglePort {
        /// As for `Transfer`.
        max_blksize: u16,
    },
}

/// The userspace path: applies the rule for `role`, counts the verdict, and says whether to
/// keep the datagram.
pub fn admit(role: Role, datagram: &[u8], counters: &FilterCounters) -> bool {
    let verdict = match role {
        Role::Listener => classify_request(datagram),
        Role::Transfer { max_blksize } => classify_transfer(datagram, usize::from(max_blksize)),
        Role::SinglePort { max_blksize } => {
            tftp_ebpf_common::classify_single_port(datagram, usize::from(max_blksize))
        }
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
