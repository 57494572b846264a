//! File blocks for transfers: a block source for downloads (octet by `pread`, netascii by
//! streaming conversion) and an upload sink (netascii decoding in front of `fs::Upload`).
//!
//! Reads are synchronous `pread`s on the async worker: blocks are at most 64 KiB and, for a
//! TFTP server's working set, served from the page cache (`notes/fastpath-facts.md` §8:
//! even cold reads here run at GB/s), so a hop to a blocking pool would cost more than it
//! saves. Commit (fsync) is the slow step and the session runs it on the blocking pool.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use crate::fs::{Upload, UploadError};
use crate::proto::mode::Mode;
use crate::proto::netascii::{Decoder, Encoder};
use crate::proto::packet::DATA_HEADER_LEN;

/// The bytes of a download, block by block.
#[derive(Debug)]
pub struct BlockSource {
    file: File,
    kind: SourceKind,
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
        Self { file, kind }
    }

    /// Reads block `index` (1-based) of up to `max_len` payload bytes into a new datagram
    /// buffer with the DATA header's 4 bytes reserved in front. Fewer than `max_len` bytes
    /// means the file has ended. Netascii blocks must be asked for in order, which the read
    /// state machine guarantees.
    pub fn read_block(&mut self, index: u64, max_len: usize) -> io::Result<Vec<u8>> {
        let mut out = vec![0u8; DATA_HEADER_LEN + max_len];
        let len = match &mut self.kind {
            SourceKind::Octet => {
                let offset = (index - 1)
                    .checked_mul(max_len as u64)
                    .ok_or_else(|| io::Error::other("block offset overflows"))?;
                read_full_at(&self.file, &mut out[DATA_HEADER_LEN..], offset)?
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
                        let n = read_full_at(&self.file, input, *offset)?;
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

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn read_full_at(file: &File, buf: &mut [u8], mut offset: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset) {
            Ok(0) => break,
            Ok(n) => {
                filled += n;
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
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
