//! Which resolver runs: `openat2` where the kernel and any seccomp profile allow it, else the
//! `O_NOFOLLOW` walk. Probed once, on the first root opened at start, with one log line that
//! says which resolver runs and why; demoted once, with one more line, if `openat2` starts
//! answering ENOSYS or EPERM later (a sandbox that changed under a running daemon), so no
//! request fails for a missing syscall. The choice is the process's: every [`super::Root`]
//! shares it.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU8, Ordering};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

#[cfg(linux)]
use super::openat2;
use super::walk;

/// A way to resolve a path beneath the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolver {
    /// `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)` (Linux 5.6 and later): the kernel
    /// refuses what leaves the root; symlinks that stay inside it work.
    Openat2,
    /// One `openat(O_NOFOLLOW)` per component: no symlink is followed at all.
    Walk,
}

impl Resolver {
    /// The name in logs.
    pub fn label(self) -> &'static str {
        match self {
            Self::Openat2 => "openat2",
            Self::Walk => "O_NOFOLLOW walk",
        }
    }
}

const UNPROBED: u8 = 0;
const OPENAT2: u8 = 1;
const WALK: u8 = 2;

/// The resolver in force. A `static` so that one probe serves every root and one demotion
/// reaches every root.
#[derive(Debug)]
pub(super) struct ResolverChoice {
    state: AtomicU8,
}

/// The process's choice, probed on the first [`super::Root::open`].
pub(super) static PROCESS: ResolverChoice = ResolverChoice {
    state: AtomicU8::new(UNPROBED),
};

impl ResolverChoice {
    /// A choice made up front and never probed (tests run each resolver this way).
    #[cfg(test)]
    pub(super) const fn fixed(resolver: Resolver) -> Self {
        let state = match resolver {
            Resolver::Openat2 => OPENAT2,
            Resolver::Walk => WALK,
        };
        Self {
            state: AtomicU8::new(state),
        }
    }

    /// The resolver in force; before the first probe, `openat2` is assumed (the first
    /// failure would demote it).
    pub(super) fn current(&self) -> Resolver {
        match self.state.load(Ordering::Acquire) {
            WALK => Resolver::Walk,
            _ => Resolver::Openat2,
        }
    }

    /// Chooses on the first call, by a harmless resolution of `root` itself, and logs the
    /// choice; later calls do nothing.
    pub(super) fn probe(&self, root: BorrowedFd<'_>) {
        if self.state.load(Ordering::Acquire) != UNPROBED {
            return;
        }
        let (chosen, why) = first_choice(root);
        if self
            .state
            .compare_exchange(UNPROBED, chosen, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        match (chosen, why) {
            (OPENAT2, _) => tracing::info!(resolver = "openat2", "path resolver: openat2"),
            (_, Some(e)) => tracing::warn!(
                resolver = "walk",
                "path resolver: O_NOFOLLOW walk (openat2: {e:?}); symlinks in the root are refused"
            ),
            (_, None) => tracing::info!(
                resolver = "walk",
                "path resolver: O_NOFOLLOW walk (no openat2 on this system); symlinks in the \
                 root are refused"
            ),
        }
    }

    /// Opens `rel` beneath `root` with the resolver in force; an `openat2` that turns out to
    /// be gone is demoted and the walk answers in its place.
    pub(super) fn open_beneath(
        &self,
        root: BorrowedFd<'_>,
        rel: &str,
        flags: OFlag,
        mode: Mode,
    ) -> Result<OwnedFd, Errno> {
        #[cfg(linux)]
        if self.current() == Resolver::Openat2 {
            return match openat2::open_beneath(root, rel, flags, mode) {
                Err(e) if openat2::means_unavailable(e) && self.demote(root, e) => {
                    walk::open_beneath(root, rel, flags, mode)
                }
                answer => answer,
            };
        }
        walk::open_beneath(root, rel, flags, mode)
    }

    /// Whether `openat2` is gone after it answered `e`: only if the probe fails too, since
    /// EPERM and EINVAL can be a file's own answer. Switches to the walk (once, logged).
    #[cfg(linux)]
    fn demote(&self, root: BorrowedFd<'_>, e: Errno) -> bool {
        match openat2::probe(root) {
            Err(again) if openat2::means_unavailable(again) => {
                let was = self.state.swap(WALK, Ordering::AcqRel);
                if was != WALK {
                    tracing::warn!(
                        resolver = "walk",
                        "path resolver: O_NOFOLLOW walk from now on (openat2 began to answer \
                         {e:?}); symlinks in the root are refused"
                    );
                }
                true
            }
            _ => false,
        }
    }
}

/// The first choice and, for the walk on Linux, the probe's answer that made it.
#[cfg(linux)]
fn first_choice(root: BorrowedFd<'_>) -> (u8, Option<Errno>) {
    match openat2::probe(root) {
        Err(e) if openat2::means_unavailable(e) => (WALK, Some(e)),
        // Another failure (a root without search permission) says nothing about openat2, and
        // the walk would fail the same way.
        _ => (OPENAT2, None),
    }
}

#[cfg(not(linux))]
fn first_choice(_root: BorrowedFd<'_>) -> (u8, Option<Errno>) {
    (WALK, None)
}
