//! `posix_fadvise` for large downloads (`performance.file_io.fadvise`): SEQUENTIAL on open
//! (a larger readahead window), WILLNEED for the next chunk before the reads reach it, and
//! DONTNEED for what lies well behind them, so one big image streamed to one client does not
//! push everything else out of the page cache.
//!
//! DONTNEED is safe for the transfer itself: the protocol core keeps the unacknowledged
//! window's datagrams, so a block is never read twice. It does cost other transfers of the
//! same file their cached pages, which is why it is limited to files over a threshold.
//! Measured (docs/adr/0020): no gain here, so it is off by default.

use std::fs::File;
use std::io;
use std::os::fd::AsFd as _;

use nix::fcntl::{PosixFadviseAdvice, posix_fadvise};

/// How far ahead WILLNEED reaches, and how far behind the reads DONTNEED stays.
pub const CHUNK: u64 = 4 * 1024 * 1024;

/// The advice state of one open file.
#[derive(Debug)]
pub struct Advisor {
    /// Everything below this has been advised WILLNEED.
    ahead_to: u64,
    /// Everything below this has been advised DONTNEED.
    dropped_to: u64,
    size: u64,
}

impl Advisor {
    /// Advises SEQUENTIAL for the whole file of `size` bytes.
    pub fn start(file: &File, size: u64) -> io::Result<Self> {
        advise(file, 0, 0, PosixFadviseAdvice::POSIX_FADV_SEQUENTIAL)?;
        Ok(Self {
            ahead_to: 0,
            dropped_to: 0,
            size,
        })
    }

    /// Called before reading `len` bytes at `offset`: keeps a chunk of WILLNEED ahead of the
    /// read and drops whole chunks more than one chunk behind it. Advice is a hint; a failure
    /// is returned for the log but changes nothing else.
    pub fn before_read(&mut self, file: &File, offset: u64, len: u64) -> io::Result<()> {
        let end = offset.saturating_add(len);
        if end + CHUNK / 2 > self.ahead_to && self.ahead_to < self.size {
            let from = self.ahead_to.max(offset);
            let to = (end + CHUNK).min(self.size);
            advise(
                file,
                from,
                to - from,
                PosixFadviseAdvice::POSIX_FADV_WILLNEED,
            )?;
            self.ahead_to = to;
        }
        let behind = offset.saturating_sub(CHUNK);
        if behind >= self.dropped_to + CHUNK {
            let (from, to) = (self.dropped_to, behind);
            advise(
                file,
                from,
                to - from,
                PosixFadviseAdvice::POSIX_FADV_DONTNEED,
            )?;
            self.dropped_to = to;
        }
        Ok(())
    }

    /// What has been advised so far: (WILLNEED up to, DONTNEED up to).
    pub fn progress(&self) -> (u64, u64) {
        (self.ahead_to, self.dropped_to)
    }
}

fn advise(file: &File, offset: u64, len: u64, advice: PosixFadviseAdvice) -> io::Result<()> {
    let off = i64::try_from(offset).map_err(io::Error::other)?;
    let len = i64::try_from(len).map_err(io::Error::other)?;
    posix_fadvise(file.as_fd(), off, len, advice).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn willneed_runs_ahead_and_dontneed_trails_by_a_chunk() {
        let dir = crate::fs::testdir_for_config();
        let p = dir.path().join("big");
        let size = 5 * CHUNK;
        let f = File::create(&p).expect("create");
        f.set_len(size).expect("sparse file");
        let mut a = Advisor::start(&f, size).expect("the kernel takes SEQUENTIAL");
        a.before_read(&f, 0, 8192).expect("advise");
        assert_eq!(
            a.progress(),
            (8192 + CHUNK, 0),
            "one chunk ahead, nothing dropped"
        );
        let mut off = 0;
        while off < size {
            a.before_read(&f, off, 8192).expect("advise");
            let (ahead, dropped) = a.progress();
            assert!(ahead >= (off + 8192).min(size), "WILLNEED ahead of {off}");
            assert!(dropped + CHUNK <= off.max(CHUNK), "DONTNEED behind {off}");
            off += 8192;
        }
        assert_eq!(a.progress().0, size, "never past the end");
        assert_eq!(
            a.progress().1,
            3 * CHUNK,
            "all but the last chunk and a half dropped"
        );
    }
}
