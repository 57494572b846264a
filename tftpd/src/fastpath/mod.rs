//! Platform fast paths behind the `io` seams, probed once at start and chosen by the
//! `[performance]` config. Each falls back to the portable path in `io`, which is always
//! built and tested.

#[cfg(target_os = "linux")]
pub mod fadvise;
#[cfg(target_os = "linux")]
pub mod gso;
#[cfg(target_os = "linux")]
#[expect(
    unsafe_code,
    reason = "anonymous mappings for huge pages have no safe wrapper"
)]
pub mod hugepage;
#[cfg(target_os = "linux")]
#[expect(
    unsafe_code,
    reason = "recvmmsg has no safe wrapper that restores its headers"
)]
pub mod mmsg;
#[cfg(target_os = "linux")]
#[expect(
    unsafe_code,
    reason = "set_mempolicy and get_mempolicy have no safe wrapper"
)]
pub mod numa;
#[cfg(target_os = "linux")]
pub mod sendfile;
#[cfg(all(target_os = "linux", feature = "io-uring"))]
#[expect(
    unsafe_code,
    reason = "io_uring entries point at our buffers until the kernel completes them"
)]
pub mod uring;
#[cfg(target_os = "linux")]
pub mod zerocopy;

use std::sync::OnceLock;

/// What this kernel supports, probed once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Support {
    /// UDP generic segmentation offload (`UDP_SEGMENT`, Linux 4.18).
    pub gso: bool,
    /// `recvmmsg` (Linux 2.6.33; a seccomp profile may still refuse it).
    pub recvmmsg: bool,
    /// `posix_fadvise` hints (built for Linux only: elsewhere the key logs that it is off).
    pub fadvise: bool,
    /// A `MSG_MORE` header and a `sendfile` block make one UDP datagram.
    pub sendfile: bool,
    /// `MSG_ZEROCOPY` sends on UDP are accepted and completed.
    pub zerocopy: bool,
    /// io_uring rings with SENDMSG, RECVMSG, ASYNC_CANCEL and timed waits (Linux 5.11; built
    /// with the `io-uring` feature; `kernel.io_uring_disabled` or seccomp may refuse it).
    pub io_uring: bool,
}

static SUPPORT: OnceLock<Support> = OnceLock::new();

/// Probes (the first time) and returns what the kernel supports.
pub fn support() -> Support {
    *SUPPORT.get_or_init(|| Support {
        #[cfg(target_os = "linux")]
        gso: gso::probe(),
        #[cfg(not(target_os = "linux"))]
        gso: false,
        #[cfg(target_os = "linux")]
        recvmmsg: mmsg::probe(),
        #[cfg(not(target_os = "linux"))]
        recvmmsg: false,
        fadvise: cfg!(target_os = "linux"),
        #[cfg(target_os = "linux")]
        sendfile: sendfile::probe(),
        #[cfg(not(target_os = "linux"))]
        sendfile: false,
        #[cfg(target_os = "linux")]
        zerocopy: zerocopy::probe(),
        #[cfg(not(target_os = "linux"))]
        zerocopy: false,
        #[cfg(all(target_os = "linux", feature = "io-uring"))]
        io_uring: uring::probe(),
        #[cfg(not(all(target_os = "linux", feature = "io-uring")))]
        io_uring: false,
    })
}
