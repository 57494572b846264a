//! The hot-file cache (`performance.file_io.cache_size`): whole small files kept in memory and
//! shared by every transfer, for the boot storm where many clients fetch the same image at
//! once. Bounded in bytes, least-recently-used out first.
//!
//! Entries are keyed by what changes when the file does: device, inode, size and the mtime
//! and ctime in nanoseconds, read with `fstat` on the descriptor the transfer opened. A file
//! replaced by rename has a new inode; a file rewritten in place has a new mtime and ctime.
//! So a lookup never finds stale bytes: it misses, and the old version ages out (or is
//! dropped at once when the same inode is loaded again). The key is taken from the open
//! descriptor, not the path, so it describes exactly the bytes this transfer would read.
//!
//! One caveat, shared by every mtime-based check: a rewrite of the same size within one tick
//! of the file system's timestamp clock is indistinguishable. Linux 6.13+ multigrain
//! timestamps (ext4, xfs, btrfs, tmpfs) make ctime fine-grained once it has been queried,
//! which the cache does on every lookup.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

/// What identifies one version of a file's contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl FileKey {
    /// The key of the file behind `file`, now.
    pub fn of(file: &File) -> io::Result<Self> {
        Ok(Self::from_stat(&nix::sys::stat::fstat(file)?))
    }

    /// The key of the file an `fstat` described (the one taken when a download found its
    /// file, so the lookup costs no second `stat`).
    // The stat fields' integer types differ between platforms; on some the conversions are
    // no-ops.
    #[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
    pub fn from_stat(st: &nix::sys::stat::FileStat) -> Self {
        let ns = |secs: i64, nsec: i64| i128::from(secs) * 1_000_000_000 + i128::from(nsec);
        Self {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            size: u64::try_from(st.st_size).unwrap_or(0),
            mtime_ns: ns(st.st_mtime as i64, st.st_mtime_nsec as i64),
            ctime_ns: ns(st.st_ctime as i64, st.st_ctime_nsec as i64),
        }
    }

    /// The file's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The device it is on.
    pub fn dev(&self) -> u64 {
        self.dev
    }

    /// Its inode number.
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// Its modification time, in ns since the epoch.
    pub fn mtime_ns(&self) -> i128 {
        self.mtime_ns
    }
}

/// Files shared by all transfers; see the module doc.
#[derive(Debug, Default)]
pub struct FileCache {
    state: Mutex<State>,
    hits: AtomicU64,
    misses: AtomicU64,
    /// Bytes held, mirrored out of the lock for the metrics page.
    bytes: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    capacity: u64,
    max_file: u64,
    used: u64,
    /// Bumped on every hit and insert; the entry with the smallest stamp goes first.
    clock: u64,
    entries: HashMap<FileKey, Entry>,
    /// Keys some transfer is reading in now. Others serve from their file meanwhile rather
    /// than wait (a wait would block an async worker) or read the same bytes twice.
    loading: Vec<FileKey>,
}

#[derive(Debug)]
struct Entry {
    bytes: Arc<[u8]>,
    used_at: u64,
}

impl State {
    /// Drops least-recently-used entries until `extra` more bytes fit.
    /// A linear scan: the cache holds few entries (its bytes over files of megabytes).
    fn make_room(&mut self, extra: u64) {
        while self.used + extra > self.capacity {
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used_at)
                .map(|(k, _)| *k)
            else {
                return;
            };
            self.remove(&oldest);
        }
    }

    fn remove(&mut self, key: &FileKey) {
        if let Some(e) = self.entries.remove(key) {
            self.used -= e.bytes.len() as u64;
        }
    }
}

/// Hits and misses, for the metrics page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheCounts {
    /// Lookups served from memory.
    pub hits: u64,
    /// Lookups of cacheable files that were not in memory.
    pub misses: u64,
    /// Bytes held now.
    pub bytes: u64,
}

impl FileCache {
    /// Applies the configured bounds (from the transfer's config snapshot, so a reload takes
    /// effect with the next transfer) and drops what no longer fits.
    pub fn configure(&self, capacity: u64, max_file: u64) {
        let mut s = self.lock();
        s.capacity = capacity;
        s.max_file = max_file;
        s.make_room(0);
        let too_big: Vec<FileKey> = s
            .entries
            .iter()
            .filter(|(_, e)| e.bytes.len() as u64 > max_file)
            .map(|(k, _)| *k)
            .collect();
        for k in too_big {
            s.remove(&k);
        }
        self.bytes.store(s.used, Relaxed);
    }

    /// Looks `file` up. A hit gives its bytes. A miss of a file that fits, which no one is
    /// loading yet, gives a [`Loader`] that holds a duplicate descriptor: the caller runs it
    /// (on a thread of its own, so the transfer that missed does not wait for a whole file
    /// before its first block) and serves this transfer from the file. Anything else (too
    /// big, cache off, already being loaded) says read from the file.
    pub fn lookup(self: &Arc<Self>, file: &File) -> io::Result<Lookup> {
        self.lookup_as(FileKey::of(file)?, file)
    }

    /// As [`lookup`](Self::lookup), for `file` whose key the caller took already.
    pub fn lookup_as(self: &Arc<Self>, key: FileKey, file: &File) -> io::Result<Lookup> {
        let mut s = self.lock();
        if s.capacity == 0 || key.size > s.max_file || key.size > s.capacity {
            return Ok(Lookup::Bypass);
        }
        s.clock += 1;
        let now = s.clock;
        if let Some(e) = s.entries.get_mut(&key) {
            e.used_at = now;
            self.hits.fetch_add(1, Relaxed);
            return Ok(Lookup::Hit(e.bytes.clone()));
        }
        self.misses.fetch_add(1, Relaxed);
        if s.loading.contains(&key) {
            return Ok(Lookup::Miss);
        }
        let file = file.try_clone()?;
        s.loading.push(key);
        Ok(Lookup::Load(Loader {
            cache: self.clone(),
            key,
            file,
        }))
    }

    /// The bytes of the file version `key` when the cache holds them (a hit, counted); `None`
    /// otherwise, uncounted: the lookup made once the file is open counts the miss. This is
    /// how a download is served without opening its file.
    pub fn hit(&self, key: &FileKey) -> Option<Arc<[u8]>> {
        let mut s = self.lock();
        s.clock += 1;
        let now = s.clock;
        let e = s.entries.get_mut(key)?;
        e.used_at = now;
        self.hits.fetch_add(1, Relaxed);
        Some(e.bytes.clone())
    }

    /// Keeps `bytes`, read for `key`, unless a reload shrank the cache below them meanwhile.
    fn insert(&self, key: FileKey, bytes: &Arc<[u8]>) {
        let mut s = self.lock();
        // Older versions of the same file can never be hit again; free them now.
        let stale: Vec<FileKey> = s
            .entries
            .keys()
            .filter(|k| k.dev == key.dev && k.ino == key.ino)
            .copied()
            .collect();
        for k in stale {
            s.remove(&k);
        }
        if key.size <= s.capacity && key.size <= s.max_file {
            s.make_room(key.size);
            s.clock += 1;
            let used_at = s.clock;
            s.used += key.size;
            s.entries.insert(
                key,
                Entry {
                    bytes: bytes.clone(),
                    used_at,
                },
            );
        }
        self.bytes.store(s.used, Relaxed);
    }

    /// Hits, misses and bytes held.
    pub fn counts(&self) -> CacheCounts {
        CacheCounts {
            hits: self.hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state stays consistent at every unlock, so a panic elsewhere leaves it usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What [`FileCache::lookup`] found.
#[derive(Debug)]
pub enum Lookup {
    /// The file's bytes, from memory.
    Hit(Arc<[u8]>),
    /// Not in memory, and this caller is to load it.
    Load(Loader),
    /// Not in memory; another transfer is loading it.
    Miss,
    /// Not a file the cache holds (too big, or the cache is off): not counted.
    Bypass,
}

/// A pending load of one file version into the cache; its mark (which keeps others from
/// loading the same bytes) is cleared however the load ends, run or dropped.
#[derive(Debug)]
pub struct Loader {
    cache: Arc<FileCache>,
    key: FileKey,
    file: File,
}

impl Loader {
    /// The file's size: the bytes the load reads and keeps.
    pub fn size(&self) -> u64 {
        self.key.size
    }

    /// Reads the whole file and keeps it. `None` when the file changed while it was read (a
    /// writer in place): neither a mix of versions nor a stale one is kept.
    pub fn run(self) -> io::Result<Option<Arc<[u8]>>> {
        let len = usize::try_from(self.key.size).map_err(io::Error::other)?;
        // Made in place (a `TrustedLen` iterator allocates once): a `Vec` turned into an
        // `Arc<[u8]>` would be copied whole into a second allocation.
        let mut bytes: Arc<[u8]> = std::iter::repeat_n(0u8, len).collect();
        let buf = Arc::get_mut(&mut bytes).ok_or_else(|| io::Error::other("shared too early"))?;
        let n = super::read_full::read_full_at(&self.file, buf, 0)?;
        if n != len || FileKey::of(&self.file)? != self.key {
            return Ok(None);
        }
        self.cache.insert(self.key, &bytes);
        Ok(Some(bytes))
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        self.cache.lock().loading.retain(|k| *k != self.key);
    }
}

#[cfg(test)]
mod tests;
