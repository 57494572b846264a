//! The kernel-side filter the daemon runs with, whichever backend it is: what the server and
//! the metrics need from it, in one type.

use std::os::fd::AsFd;

use super::counters::{Breakdown, FilterCounters, Path};

/// The filter in the kernel: eBPF socket filters, or classic BPF.
#[cfg(linux)]
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "one value for the daemon's life: the per-reason counters are its size"
)]
pub enum KernelFilter {
    /// eBPF socket filters, counting by reason in per-CPU maps.
    Ebpf(super::ebpf::EbpfFilter),
    /// Classic BPF: the same rules, drops counted by the kernel without a reason.
    Cbpf(super::cbpf::CbpfFilter),
}

/// No socket filter that drops exists on this platform (BSD's BPF only observes), so there
/// is no kernel filter value: the userspace rules always apply.
#[cfg(not(linux))]
#[derive(Debug)]
pub enum KernelFilter {}

/// Attaching the filter to a transfer socket failed.
#[derive(Debug, thiserror::Error)]
pub enum TransferAttachError {
    /// The eBPF transfer program.
    #[cfg(linux)]
    #[error(transparent)]
    Ebpf(#[from] super::ebpf::AttachError),
    /// The classic BPF transfer program.
    #[cfg(linux)]
    #[error(transparent)]
    Cbpf(#[from] super::cbpf::CbpfError),
}

/// Reading the filter's counters failed.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct CountsError(Box<dyn std::error::Error + Send + Sync>);

#[cfg(linux)]
pub(super) fn setup_ebpf(
    pin_dir: &std::path::Path,
    max_blksize: u16,
    single_port: bool,
    listeners: &[std::net::UdpSocket],
) -> Result<KernelFilter, super::ebpf::AttachError> {
    let mut f = super::ebpf::EbpfFilter::load(max_blksize)?;
    for l in listeners {
        f.attach_listener(l, single_port)?;
    }
    f.pin(pin_dir)?;
    Ok(KernelFilter::Ebpf(f))
}

#[cfg(linux)]
pub(super) fn setup_cbpf(
    max_blksize: u16,
    single_port: bool,
    listeners: &[std::net::UdpSocket],
) -> Result<KernelFilter, super::cbpf::CbpfError> {
    let mut f = super::cbpf::CbpfFilter::new(max_blksize)?;
    for l in listeners {
        f.attach_listener(l, single_port)?;
    }
    Ok(KernelFilter::Cbpf(f))
}

#[cfg(linux)]
impl KernelFilter {
    /// The metric's `path` label.
    pub fn path(&self) -> Path {
        match self {
            Self::Ebpf(_) => Path::Socket,
            Self::Cbpf(_) => Path::Cbpf,
        }
    }

    /// Attaches the transfer rule to a transfer socket.
    pub fn attach_transfer(&self, socket: impl AsFd) -> Result<(), TransferAttachError> {
        match self {
            Self::Ebpf(f) => f.attach_transfer(socket)?,
            Self::Cbpf(f) => f.attach_transfer(socket)?,
        }
        Ok(())
    }

    /// The largest DATA the transfer programs keep: fixed when they were loaded, so a reload
    /// that raises `protocol.max_blksize` must not negotiate past it.
    pub fn data_limit(&self) -> u16 {
        match self {
            Self::Ebpf(f) => f.max_blksize(),
            Self::Cbpf(f) => f.max_blksize,
        }
    }

    /// Where the daemon must still count what arrives on a socket this filter guards: classic
    /// BPF cannot count, so the daemon counts the passes (re-applying the same rule, which
    /// keeps them all); eBPF counts everything itself.
    pub fn daemon_counters(&self) -> Option<&FilterCounters> {
        match self {
            Self::Ebpf(_) => None,
            Self::Cbpf(f) => Some(&f.passed),
        }
    }

    /// A transfer socket is closing: collect what only it knows.
    pub fn transfer_closed(&self, socket: impl AsFd) {
        if let Self::Cbpf(f) = self {
            f.transfer_closed(socket);
        }
    }

    /// The counters, as the metrics render them.
    pub fn counts(&self) -> Result<Breakdown, CountsError> {
        match self {
            Self::Ebpf(f) => f
                .totals()
                .map(Breakdown::ByReason)
                .map_err(|e| CountsError(Box::new(e))),
            Self::Cbpf(f) => Ok(Breakdown::Unclassified {
                passed: f.passed.get(tftp_ebpf_common::Reason::Passed),
                dropped: f.dropped(),
            }),
        }
    }

    /// Removes whatever the filter pinned in bpffs (shutdown).
    pub fn unpin(&self) {
        if let Self::Ebpf(f) = self {
            f.unpin();
        }
    }

    /// Hands pinned objects to the user the daemon drops to, so it can still remove them.
    pub fn chown_pins(&self, uid: u32, gid: u32) -> std::io::Result<()> {
        match self {
            Self::Ebpf(f) => f.chown_pins(uid, gid),
            Self::Cbpf(_) => Ok(()),
        }
    }
}

#[cfg(not(linux))]
impl KernelFilter {
    /// Never called: no value exists.
    pub fn data_limit(&self) -> u16 {
        match *self {}
    }
    /// Never called: no value exists.
    pub fn path(&self) -> Path {
        match *self {}
    }
    /// Never called: no value exists.
    pub fn attach_transfer(&self, _socket: impl AsFd) -> Result<(), TransferAttachError> {
        match *self {}
    }
    /// Never called: no value exists.
    pub fn daemon_counters(&self) -> Option<&FilterCounters> {
        match *self {}
    }
    /// Never called: no value exists.
    pub fn transfer_closed(&self, _socket: impl AsFd) {
        match *self {}
    }
    /// Never called: no value exists.
    pub fn counts(&self) -> Result<Breakdown, CountsError> {
        match *self {}
    }
    /// Never called: no value exists.
    pub fn unpin(&self) {
        match *self {}
    }
    /// Never called: no value exists.
    pub fn chown_pins(&self, _uid: u32, _gid: u32) -> std::io::Result<()> {
        match *self {}
    }
}
