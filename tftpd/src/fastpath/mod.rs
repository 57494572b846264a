//! Platform fast paths behind the `io` seams, probed once at start and chosen by the
//! `[performance]` config. Each falls back to the portable path in `io`, which is always
//! built and tested.

#[cfg(linux)]
pub mod fadvise;
#[cfg(linux)]
pub mod gso;
#[cfg(linux)]
#[expect(
    unsafe_code,
    reason = "anonymous mappings for huge pages have no safe wrapper"
)]
pub mod hugepage;
#[cfg(linux)]
#[expect(
    unsafe_code,
    reason = "recvmmsg has no safe wrapper that restores its headers"
)]
pub mod mmsg;
#[cfg(linux)]
#[expect(
    unsafe_code,
    reason = "set_mempolicy and get_mempolicy have no safe wrapper"
)]
pub mod numa;

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
}

static SUPPORT: OnceLock<Support> = OnceLock::new();

/// Probes (the first time) and returns what the kernel supports.
pub fn support() -> Support {
    *SUPPORT.get_or_init(|| Support {
        #[cfg(linux)]
        gso: gso::probe(),
        #[cfg(not(linux))]
        gso: false,
        #[cfg(linux)]
        recvmmsg: mmsg::probe(),
        #[cfg(not(linux))]
        recvmmsg: false,
        fadvise: cfg!(linux),
    })
}
