//! The Linux resolver: `openat2(2)` with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`, so the
//! kernel refuses any resolution that leaves the root and any `/proc` magic link, while
//! symlinks that stay inside the root work.

use std::os::fd::{BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

pub(super) fn open_beneath(
    root: BorrowedFd<'_>,
    rel: &str,
    flags: OFlag,
    mode: Mode,
) -> Result<OwnedFd, Errno> {
    use nix::fcntl::{OpenHow, ResolveFlag, openat2};
    let how = OpenHow::new()
        .flags(flags)
        .mode(mode)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    openat2(root, rel, how)
}
