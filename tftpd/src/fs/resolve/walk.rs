//! The portable resolver: the path is walked one component at a time relative to the last
//! directory opened, with `O_NOFOLLOW`, so no symlink is followed at all.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

/// Without openat2: one component at a time, never following a symlink.
pub(super) fn open_beneath(
    root: BorrowedFd<'_>,
    rel: &str,
    flags: OFlag,
    mode: Mode,
) -> Result<OwnedFd, Errno> {
    use nix::fcntl::openat;
    let dir_flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut parts: Vec<&str> = rel
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let Some(last) = parts.pop() else {
        return openat(root, ".", flags, mode);
    };
    let mut dir: Option<OwnedFd> = None;
    for part in parts {
        let next = match &dir {
            None => openat(root, part, dir_flags, Mode::empty())?,
            Some(d) => openat(d.as_fd(), part, dir_flags, Mode::empty())?,
        };
        dir = Some(next);
    }
    let flags = flags | OFlag::O_NOFOLLOW;
    match &dir {
        None => openat(root, last, flags, mode),
        Some(d) => openat(d.as_fd(), last, flags, mode),
    }
}
