//! The portable resolver: the path is walked one component at a time, each opened relative
//! to the directory before it with `O_NOFOLLOW`, so no symlink is followed at all: one that
//! would stay inside the root is refused as surely as one that would leave it. The BSDs have
//! no `openat2`; on Linux this runs when `openat2` is missing (see [`super::choice`]).
//!
//! No `..` reaches this far ([`super::RequestPath`] refuses it), and every component is
//! opened relative to a descriptor, so a rename of a directory on the way cannot send the
//! walk elsewhere: each step starts from the directory the previous step opened.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstatat};

/// How the directories on the way are opened. On Linux as `O_PATH`, which needs search
/// permission only, as `openat2`'s own lookup does; elsewhere for reading.
fn dir_flags() -> OFlag {
    #[cfg(linux)]
    let open = OFlag::O_PATH;
    #[cfg(not(linux))]
    let open = OFlag::O_RDONLY;
    open | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// Opens `rel` beneath `root` without following any symlink: a symlink anywhere on the path
/// is ELOOP, a `..` component EXDEV (what `openat2`'s `RESOLVE_BENEATH` answers).
pub(super) fn open_beneath(
    root: BorrowedFd<'_>,
    rel: &str,
    flags: OFlag,
    mode: Mode,
) -> Result<OwnedFd, Errno> {
    let mut parts: Vec<&str> = rel
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(Errno::EXDEV);
    }
    let Some(last) = parts.pop() else {
        return openat(root, ".", flags, mode);
    };
    let mut dir: Option<OwnedFd> = None;
    for part in parts {
        let at = dir.as_ref().map_or(root, AsFd::as_fd);
        let next =
            openat(at, part, dir_flags(), Mode::empty()).map_err(|e| link_is_eloop(at, part, e))?;
        dir = Some(next);
    }
    let at = dir.as_ref().map_or(root, AsFd::as_fd);
    let fd = openat(at, last, flags | OFlag::O_NOFOLLOW, mode)
        .map_err(|e| link_is_eloop(at, last, e))?;
    // O_PATH | O_NOFOLLOW on a symlink does not fail: it hands out the link itself (open(2)).
    #[cfg(linux)]
    if flags.contains(OFlag::O_PATH) && is_symlink(&nix::sys::stat::fstat(fd.as_fd())?) {
        return Err(Errno::ELOOP);
    }
    Ok(fd)
}

/// ELOOP for a refusal caused by a symlink, so it is told (and audited) as one: Linux answers
/// `O_DIRECTORY | O_NOFOLLOW` on a symlink with ENOTDIR, as for a plain file.
fn link_is_eloop(at: BorrowedFd<'_>, name: &str, e: Errno) -> Errno {
    if e != Errno::ENOTDIR {
        return e;
    }
    match fstatat(at, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if is_symlink(&st) => Errno::ELOOP,
        _ => e,
    }
}

fn is_symlink(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFLNK
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::testdir::TestDir;

    #[test]
    fn the_walk_refuses_dot_dot_and_symlinks_anywhere_on_the_path() {
        let t = TestDir::new();
        std::fs::create_dir_all(t.path().join("root/sub")).expect("root/sub");
        std::fs::write(t.path().join("root/sub/f"), b"f").expect("f");
        std::os::unix::fs::symlink("sub", t.path().join("root/sub-link")).expect("link");
        std::os::unix::fs::symlink("f", t.path().join("root/sub/f-link")).expect("link");
        let root =
            nix::fcntl::open(&t.path().join("root"), dir_flags(), Mode::empty()).expect("root");
        let open = |rel, flags| open_beneath(root.as_fd(), rel, flags, Mode::empty());
        assert!(open("sub/f", OFlag::O_RDONLY).is_ok(), "a plain path opens");
        assert!(
            open("/sub//./f", OFlag::O_RDONLY).is_ok(),
            "empty and . parts are skipped"
        );
        for (rel, want) in [
            ("sub/../sub/f", Errno::EXDEV),
            ("..", Errno::EXDEV),
            ("sub-link/f", Errno::ELOOP),
            ("sub/f-link", Errno::ELOOP),
            ("sub-link", Errno::ELOOP),
        ] {
            for flags in [OFlag::O_RDONLY, dir_flags() - OFlag::O_NOFOLLOW] {
                assert_eq!(open(rel, flags).map(drop), Err(want), "{rel} ({flags:?})");
            }
        }
        #[cfg(linux)]
        assert_eq!(
            open("sub/f-link", OFlag::O_PATH).map(drop),
            Err(Errno::ELOOP),
            "an O_PATH open does not hand out the link itself"
        );
        assert_eq!(
            open("sub/f/x", OFlag::O_RDONLY).map(drop),
            Err(Errno::ENOTDIR),
            "a file on the way is ENOTDIR, not a refused link"
        );
    }
}
