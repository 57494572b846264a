//! `uploads.min_free_bytes`: the free space an upload must leave on its filesystem. Checked
//! with `fstatvfs` on the upload's directory when a WRQ is accepted (with its announced
//! `tsize`, if any) and then once per [`CHECK_EVERY`] bytes written, not on every block: the
//! reserve may be undercut by at most that much per running upload.

use std::os::fd::AsFd;

/// Bytes an upload writes between two looks at the free space.
pub(super) const CHECK_EVERY: u64 = 1 << 20;

/// When an upload next looks at the free space.
#[derive(Debug)]
pub(super) struct Reserve {
    /// The bytes to leave free; 0: no reserve.
    min_free: u64,
    /// The upload's size at which it looks next.
    next_check: u64,
}

impl Reserve {
    pub(super) fn new(min_free: u64) -> Self {
        Self {
            min_free,
            next_check: 0,
        }
    }

    /// The bytes to leave free.
    pub(super) fn min_free(&self) -> u64 {
        self.min_free
    }

    /// Whether writing up to `total` bytes (and `more` expected after them) leaves the
    /// reserve; `available` is only asked when a check is due. `Ok(false)`: it does not.
    pub(super) fn allows(
        &mut self,
        total: u64,
        more: u64,
        available: impl FnOnce() -> nix::Result<u64>,
    ) -> nix::Result<bool> {
        if self.min_free == 0 || total < self.next_check {
            return Ok(true);
        }
        self.next_check = total.saturating_add(CHECK_EVERY);
        Ok(available()? >= self.min_free.saturating_add(more))
    }
}

/// Bytes an unprivileged writer may still use on the filesystem holding `dir` (`f_bavail`:
/// the root-only reserve of ext4 and others does not count).
pub(super) fn available(dir: impl AsFd) -> nix::Result<u64> {
    let st = nix::sys::statvfs::fstatvfs(dir)?;
    #[cfg_attr(
        linux,
        expect(
            clippy::useless_conversion,
            reason = "the field widths differ between Linux and the BSDs"
        )
    )]
    let (blocks, size) = (
        u64::from(st.blocks_available()),
        u64::from(st.fragment_size()),
    );
    Ok(blocks.saturating_mul(size))
}
