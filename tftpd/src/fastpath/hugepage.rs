//! Packet memory on huge pages (Linux, `performance.memory.huge_pages`): the listeners'
//! `recvmmsg` slots (32 × 64 KiB = one 2 MiB page at `recv_batch = 32`) come from an
//! anonymous mapping backed by a reserved huge page (`MAP_HUGETLB`, when `vm.nr_hugepages`
//! has some free), else by a transparent huge page (`MADV_HUGEPAGE`, when THP is in
//! `madvise` or `always` mode), else by ordinary pages from the heap. One TLB entry then
//! covers every slot. The kind that was had is reported, so the start-up log can say it.

use std::io;
use std::num::NonZeroUsize;
use std::ptr::NonNull;

use nix::sys::mman::{MapFlags, MmapAdvise, ProtFlags, madvise, mmap_anonymous, munmap};

/// What backs a [`PacketMemory`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageKind {
    /// Reserved huge pages (`MAP_HUGETLB`).
    HugeTlb,
    /// A mapping the kernel may back with transparent huge pages (`MADV_HUGEPAGE`).
    Transparent,
    /// Ordinary pages from the heap.
    Normal,
}

impl PageKind {
    /// The name the log and the docs use.
    pub fn name(self) -> &'static str {
        match self {
            Self::HugeTlb => "hugetlb",
            Self::Transparent => "transparent",
            Self::Normal => "normal",
        }
    }
}

/// Zeroed bytes for packets, on huge pages when asked and possible.
pub struct PacketMemory {
    backing: Backing,
    len: usize,
}

enum Backing {
    Heap(Vec<u8>),
    Mapped {
        ptr: NonNull<u8>,
        mapped: usize,
        kind: PageKind,
    },
}

// SAFETY: a mapping is owned by exactly one PacketMemory, which hands out access only
// through &self / &mut self, as a Vec would.
unsafe impl Send for PacketMemory {}

/// The huge page size mappings are rounded to (x86-64 and arm64 with 4 KiB pages).
const HUGE_PAGE: usize = 2 * 1024 * 1024;

impl PacketMemory {
    /// `len` zeroed bytes; with `huge`, on huge pages where the kernel gives them.
    pub fn new(len: usize, huge: bool) -> Self {
        if huge && let Some(m) = Self::mapped(len) {
            return m;
        }
        Self {
            backing: Backing::Heap(vec![0; len]),
            len,
        }
    }

    fn mapped(len: usize) -> Option<Self> {
        let mapped = len.checked_next_multiple_of(HUGE_PAGE)?;
        let size = NonZeroUsize::new(mapped)?;
        let prot = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
        let private = MapFlags::MAP_PRIVATE | MapFlags::MAP_ANONYMOUS;
        // SAFETY: a fresh anonymous mapping at an address of the kernel's choosing aliases
        // no Rust object; it is unmapped only by this value's drop.
        let hugetlb = unsafe { mmap_anonymous(None, size, prot, private | MapFlags::MAP_HUGETLB) };
        if let Ok(ptr) = hugetlb {
            return Some(Self {
                backing: Backing::Mapped {
                    ptr: ptr.cast(),
                    mapped,
                    kind: PageKind::HugeTlb,
                },
                len,
            });
        }
        // SAFETY: as above.
        let ptr = unsafe { mmap_anonymous(None, size, prot, private) }.ok()?;
        // SAFETY: the advice covers exactly the mapping just made.
        let advised = unsafe { madvise(ptr, mapped, MmapAdvise::MADV_HUGEPAGE) };
        if advised.is_err() {
            // THP is off ("never") or not built: ordinary pages, from the heap as usual.
            // SAFETY: the mapping just made, unmapped once, before anything could use it.
            let _ = unsafe { munmap(ptr, mapped) };
            return None;
        }
        Some(Self {
            backing: Backing::Mapped {
                ptr: ptr.cast(),
                mapped,
                kind: PageKind::Transparent,
            },
            len,
        })
    }

    /// What backs the bytes.
    pub fn kind(&self) -> PageKind {
        match &self.backing {
            Backing::Heap(_) => PageKind::Normal,
            Backing::Mapped { kind, .. } => *kind,
        }
    }
}

impl std::ops::Deref for PacketMemory {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.backing {
            Backing::Heap(v) => v,
            // SAFETY: the mapping holds `mapped` >= `len` readable bytes (zeroed by the
            // kernel) for as long as `self` lives.
            Backing::Mapped { ptr, .. } => unsafe {
                std::slice::from_raw_parts(ptr.as_ptr(), self.len)
            },
        }
    }
}

impl std::ops::DerefMut for PacketMemory {
    fn deref_mut(&mut self) -> &mut [u8] {
        match &mut self.backing {
            Backing::Heap(v) => v,
            // SAFETY: as in deref, writable, and `&mut self` makes this the only reference.
            Backing::Mapped { ptr, .. } => unsafe {
                std::slice::from_raw_parts_mut(ptr.as_ptr(), self.len)
            },
        }
    }
}

impl Drop for PacketMemory {
    fn drop(&mut self) {
        if let Backing::Mapped { ptr, mapped, .. } = self.backing {
            // SAFETY: the mapping this value made, unmapped once; no slice of it outlives
            // `self`.
            let _ = unsafe { munmap(ptr.cast(), mapped) };
        }
    }
}

/// How many huge pages the kernel has free (`HugePages_Free` in /proc/meminfo).
pub fn free_huge_pages() -> io::Result<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")?;
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("HugePages_Free:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| io::Error::other("no HugePages_Free in /proc/meminfo"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_memory_is_zeroed_and_writable_whatever_backs_it() {
        for huge in [false, true] {
            let mut m = PacketMemory::new(3 * 65536 + 5, huge);
            assert_eq!(m.len(), 3 * 65536 + 5);
            assert!(m.iter().all(|&b| b == 0), "zeroed");
            m[0] = 1;
            let last = m.len() - 1;
            m[last] = 2;
            assert_eq!((m[0], m[last]), (1, 2));
            if !huge {
                assert_eq!(m.kind(), PageKind::Normal);
            }
        }
    }
}
