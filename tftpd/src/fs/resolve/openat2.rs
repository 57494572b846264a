//! The Linux resolver: `openat2(2)` with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`, so the
//! kernel refuses any resolution that leaves the root and any `/proc` magic link, while
//! symlinks that stay inside the root work.
//!
//! # Minimum kernel version
//!
//! `openat2` and both flags came in Linux 5.6; a seccomp profile may also hide the syscall.
//! [`super::choice`] probes for it and falls back to [`super::walk`].

use std::os::fd::{BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::Mode;

/// Opens `rel` beneath `root`; the kernel refuses (EXDEV, ELOOP) what would leave it.
pub(super) fn open_beneath(
    root: BorrowedFd<'_>,
    rel: &str,
    flags: OFlag,
    mode: Mode,
) -> Result<OwnedFd, Errno> {
    let how = OpenHow::new()
        .flags(flags)
        .mode(mode)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    openat2(root, rel, how)
}

/// A harmless resolution: `root` itself, as an `O_PATH` handle that opens nothing. It fails
/// only when `openat2` cannot be used (or the root is not searchable at all).
pub(super) fn probe(root: BorrowedFd<'_>) -> Result<(), Errno> {
    open_beneath(
        root,
        ".",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(drop)
}

/// The answers that mean "no `openat2` here" rather than anything about a file: ENOSYS from
/// a kernel before 5.6 or a seccomp profile that says so (podman, newer Docker), EPERM from
/// older container runtimes' profiles, EINVAL from a sandbox that knows the syscall but not
/// the resolve flags. EPERM and EINVAL can also be a file's own answer (an immutable file, a
/// flag the filesystem refuses), so at run time a probe decides; see [`super::choice`].
pub(super) fn means_unavailable(e: Errno) -> bool {
    matches!(e, Errno::ENOSYS | Errno::EPERM | Errno::EINVAL)
}
