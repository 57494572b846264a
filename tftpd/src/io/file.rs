//! File blocks for transfers: a block source for downloads (octet by `pread`, netascii by
//! streaming conversion) and an upload sink (netascii decoding in front of `fs::Upload`).
//!
//! Reads are synchronous `pread`s on the async worker: blocks are at most 64 KiB and, for a
//! TFTP server's working set, served from the page cache (even cold reads run at GB/s on
//! the machine the benchmarks ran on), so a hop to a blocking pool would cost more than it
//! saves. Commit (fsync) is the slow step and the session runs it on the blocking pool.
//!
//! The fast paths of `[performance.file_io]` plug in here: the bytes may come from the shared
//! hot-file cache instead of the file, reads of large files may carry `posix_fadvise` hints,
//! and octet reads may go ahead in larger chunks.

use std::fs::File;
use std::io;
use std::sync::Arc;

use super::cache::{FileCache, FileKey, Loader, Lookup};
use super::read_full::read_full_at;
use crate::fs::{Upload, UploadError};
use crate::proto::mode::Mode;
use crate::proto::netascii::{Decoder, Encoder};
use crate::proto::packet::DATA_HEADER_LEN;

/// Where a download's bytes come from after [`BlockSource::use_cache`].
#[derive(Debug)]
pub enum CacheUse {
    /// Memory: the hot-file cache held the file.
    Hit,
    /// The file; and the cache wants this version loaded, by the caller, off this transfer's
    /// path.
    Load(Loader),
    /// The file.
    File,
}

/// The bytes of a download, block by block.
#[derive(Debug)]
pub struct BlockSource {
    backing: Backing,
    kind: SourceKind,
    /// `posix_fadvise` hints for a large file read from disk.
    #[cfg(linux)]
    advisor: Option<crate::fastpath::fadvise::Advisor>,
    /// Octet blocks read from the file in larger chunks (`performance.file_io.read_ahead`).
    read_ahead: Option<ReadAhead>,
    /// The file's cache key when the opener took it already (its `fstat` at open).
    key: Option<FileKey>,
}

/// A window of the file read ahead of the blocks the transfer sends: one `pread` for many
/// blocks instead of one per block.
#[derive(Debug)]
struct ReadAhead {
    /// The chunk size asked for.
    size: usize,
    buf: Vec<u8>,
    /// The file offset of `buf[0]`.
    start: u64,
    /// True when the last read ended the file: nothing lies past `start + buf.len()`.
    eof: bool,
}

impl ReadAhead {
    /// Copies `out.len()` bytes at `offset` (fewer at the end of the file) from the window,
    /// reading the chunk that starts at `offset` when the window does not hold them.
    fn read(&mut self, file: &File, out: &mut [u8], offset: u64) -> io::Result<usize> {
        let end = self.start + self.buf.len() as u64;
        let inside = offset >= self.start
            && (offset + out.len() as u64 <= end || (self.eof && offset <= end));
        if !inside {
            // Chunks start at the block asked for: a retransmission of an old block reads
            // from there, and the next blocks follow on from it.
            let size = self.size.max(out.len());
            self.buf.resize(size, 0);
            let n = read_full_at(file, &mut self.buf, offset)?;
            self.buf.truncate(n);
            self.start = offset;
            self.eof = n < size;
        }
        let from = usize::try_from(offset - self.start).unwrap_or(usize::MAX);
        let n = out.len().min(self.buf.len().saturating_sub(from));
        out[..n].copy_from_slice(&self.buf[from..from + n]);
        Ok(n)
    }
}

/// Where a source's bytes come from.
#[derive(Debug)]
enum Backing {
    File(File),
    /// The whole file, from the hot-file cache.
    Memory(Arc<[u8]>),
}

#[derive(Debug)]
enum SourceKind {
    /// Block n is the file's bytes at (n-1)*blksize: read at any offset.
    Octet,
    /// Netascii output is longer than the file, so blocks are produced in order.
    Netascii {
        encoder: Encoder,
        /// File bytes read but not yet converted.
        input: Vec<u8>,
        consumed: usize,
        offset: u64,
        eof: bool,
        next_index: u64,
    },
}

/// How much of the file a netascii source reads at a time.
const NETASCII_READ: usize = 16 * 1024;

impl BlockSource {
    /// A source over `file` in `mode`.
    pub fn new(file: File, mode: Mode) -> Self {
        Self::over(Backing::File(file), mode)
    }

    /// A source over a file's whole contents in memory (a hot-file cache hit before the file
    /// was opened), in `mode`.
    pub fn cached(bytes: Arc<[u8]>, mode: Mode) -> Self {
        Self::over(Backing::Memory(bytes), mode)
    }

    /// Gives the file's cache key, taken by whoever opened it, so [`use_cache`]
    /// (Self::use_cache) needs no `stat` of its own.
    #[must_use]
    pub fn with_key(mut self, key: FileKey) -> Self {
        self.key = Some(key);
        self
    }

    fn over(backing: Backing, mode: Mode) -> Self {
        let kind = match mode {
            Mode::Octet => SourceKind::Octet,
            Mode::Netascii => SourceKind::Netascii {
                encoder: Encoder::new(),
                input: Vec::new(),
                consumed: 0,
                offset: 0,
                eof: false,
                next_index: 1,
            },
        };
        Self {
            backing,
            kind,
            #[cfg(linux)]
            advisor: None,
            read_ahead: None,
            key: None,
        }
    }

    /// Reads an octet file `size` bytes at a time, serving blocks from that window (0: a
    /// `pread` per block). Returns whether it applies: not to netascii (read in chunks
    /// already) or a cached file.
    pub fn read_ahead(&mut self, size: usize) -> bool {
        let applies = size > 0
            && matches!(
                (&self.kind, &self.backing),
                (SourceKind::Octet, Backing::File(_))
            );
        self.read_ahead = applies.then(|| ReadAhead {
            size,
            buf: Vec::new(),
            start: 0,
            eof: false,
        });
        applies
    }

    /// Serves the file from `cache` when the cache holds it. On a miss of a file the cache
    /// would keep, the loader is handed back for the caller to run elsewhere; this transfer
    /// reads its file meanwhile.
    pub fn use_cache(&mut self, cache: &Arc<FileCache>) -> io::Result<CacheUse> {
        let Backing::File(file) = &self.backing else {
            return Ok(CacheUse::Hit);
        };
        let looked_up = match self.key {
            Some(key) => cache.lookup_as(key, file)?,
            None => cache.lookup(file)?,
        };
        Ok(match looked_up {
            Lookup::Hit(bytes) => {
                self.backing = Backing::Memory(bytes);
                CacheUse::Hit
            }
            Lookup::Load(loader) => CacheUse::Load(loader),
            Lookup::Miss | Lookup::Bypass => CacheUse::File,
        })
    }

    /// Serves the rest of the download from `bytes`, the file's contents a cache load just
    /// read from this source's own file (the caller ran the [`Loader`] `use_cache` gave).
    pub fn use_loaded(&mut self, bytes: Arc<[u8]>) {
        if matches!(self.backing, Backing::File(_)) {
            self.backing = Backing::Memory(bytes);
        }
    }

    /// Starts `posix_fadvise` hints when the file is read from disk and is larger than
    /// `threshold` bytes. Returns whether it did.
    #[cfg(linux)]
    pub fn advise_over(&mut self, threshold: u64) -> io::Result<bool> {
        let Backing::File(file) = &self.backing else {
            return Ok(false);
        };
        let size = file.metadata()?.len();
        if size <= threshold {
            return Ok(false);
        }
        self.advisor = Some(crate::fastpath::fadvise::Advisor::start(file, size)?);
        Ok(true)
    }

    /// Reads block `index` (1-based) of up to `max_len` payload bytes into a new datagram
    /// buffer with the DATA header's 4 bytes reserved in front. Fewer than `max_len` bytes
    /// means the file has ended. Netascii blocks must be asked for in order, which the read
    /// state machine guarantees.
    pub fn read_block(&mut self, index: u64, max_len: usize) -> io::Result<Vec<u8>> {
        self.read_block_into(index, max_len, Vec::new())
    }

    /// As [`read_block`](Self::read_block), into `out` (its old bytes overwritten or cut off), which saves an
    /// allocation per block when `out` is a buffer an earlier block used.
    pub fn read_block_into(
        &mut self,
        index: u64,
        max_len: usize,
        mut out: Vec<u8>,
    ) -> io::Result<Vec<u8>> {
        // Only the bytes a recycled buffer lacks are zeroed: every byte up to the block's
        // length is overwritten below, and the rest cut off. Zeroing the whole block again
        // was 2 % of the daemon's samples in a 1000-client storm (a cold cache line written
        // twice).
        out.resize(DATA_HEADER_LEN + max_len, 0);
        let block_offset = || {
            (index - 1)
                .checked_mul(max_len as u64)
                .ok_or_else(|| io::Error::other("block offset overflows"))
        };
        let len = match &mut self.kind {
            SourceKind::Octet => {
                let offset = block_offset()?;
                #[cfg(linux)]
                hint(&mut self.advisor, &self.backing, offset, max_len);
                let buf = &mut out[DATA_HEADER_LEN..];
                match (&mut self.read_ahead, &self.backing) {
                    // A chunk that cannot hold two blocks saves no pread, only adds a copy
                    // (blksize 65464 against 64 KiB): read straight into the datagram.
                    (Some(r), Backing::File(f)) if r.size >= 2 * max_len => {
                        r.read(f, buf, offset)?
                    }
                    _ => read_backing(&self.backing, buf, offset)?,
                }
            }
            SourceKind::Netascii {
                encoder,
                input,
                consumed,
                offset,
                eof,
                next_index,
            } => {
                if index != *next_index {
                    return Err(io::Error::other("netascii blocks must be read in order"));
                }
                *next_index += 1;
                let buf = &mut out[DATA_HEADER_LEN..];
                let mut filled = 0;
                while filled < buf.len() {
                    if *consumed == input.len() && !*eof {
                        input.resize(NETASCII_READ, 0);
                        let n = read_backing(&self.backing, input, *offset)?;
                        input.truncate(n);
                        *offset += n as u64;
                        *consumed = 0;
                        *eof = n < NETASCII_READ;
                    }
                    let (used, wrote) = encoder.encode(&input[*consumed..], &mut buf[filled..]);
                    *consumed += used;
                    filled += wrote;
                    if used == 0 && wrote == 0 {
                        break;
                    }
                }
                filled
            }
        };
        out.truncate(DATA_HEADER_LEN + len);
        Ok(out)
    }
}

/// Gives the fadvise hints for a read of `len` bytes at `offset`. A hint that fails is
/// logged once and the transfer reads on without hints.
#[cfg(linux)]
fn hint(
    advisor: &mut Option<crate::fastpath::fadvise::Advisor>,
    backing: &Backing,
    offset: u64,
    len: usize,
) {
    if let (Some(a), Backing::File(file)) = (advisor.as_mut(), backing)
        && let Err(e) = a.before_read(file, offset, len as u64)
    {
        tracing::debug!(error = %e, "posix_fadvise failed; no more hints for this transfer");
        *advisor = None;
    }
}

/// Reads the file's bytes at `offset` until `buf` is full or the file ends, from memory or
/// from the file.
fn read_backing(backing: &Backing, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    match backing {
        Backing::Memory(m) => {
            let start = usize::try_from(offset).unwrap_or(usize::MAX).min(m.len());
            let n = buf.len().min(m.len() - start);
            buf[..n].copy_from_slice(&m[start..start + n]);
            Ok(n)
        }
        Backing::File(f) => read_full_at(f, buf, offset),
    }
}

/// Where an upload's payload goes: decoded from netascii if needed, then into the temp file.
#[derive(Debug)]
pub struct UploadSink {
    upload: Upload,
    decoder: Option<Decoder>,
    scratch: Vec<u8>,
}

impl UploadSink {
    /// A sink writing into `upload` in `mode`.
    pub fn new(upload: Upload, mode: Mode) -> Self {
        Self {
            upload,
            decoder: (mode == Mode::Netascii).then(Decoder::new),
            scratch: Vec::new(),
        }
    }

    /// Writes one block's payload.
    pub fn write(&mut self, payload: &[u8]) -> Result<(), UploadError> {
        match &mut self.decoder {
            None => self.upload.write(payload),
            Some(decoder) => {
                self.scratch.clear();
                decoder.decode(payload, &mut self.scratch);
                self.upload.write(&self.scratch)
            }
        }
    }

    /// Flushes a pending netascii CR, then fsyncs and renames the upload into place.
    pub fn commit(mut self) -> Result<u64, UploadError> {
        if let Some(decoder) = &mut self.decoder {
            self.scratch.clear();
            decoder.finish(&mut self.scratch);
            self.upload.write(&self.scratch)?;
        }
        let written = self.upload.written();
        self.upload.commit()?;
        Ok(written)
    }
}

#[cfg(test)]
mod tests;
