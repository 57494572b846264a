//! DATA sent from the file itself rather than from a buffer the core holds: by `MSG_MORE` +
//! `sendfile` (Linux, `performance.file_io.sendfile`), or by `pread` + send when the kernel
//! refuses it. The core holds same-length DATA with a placeholder payload for such a transfer, so
//! every DATA of it, retransmissions too, goes out through here.

use std::io;
use std::net::SocketAddr;

use super::transfer_socket::{SendReport, TransferSocket};

/// A DATA datagram whose payload the shell sends from the file itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileBlock {
    /// The DATA header (opcode and wire block number).
    pub header: [u8; 4],
    /// Where the payload starts in the file.
    pub offset: u64,
    /// The payload's length.
    pub len: usize,
}

impl TransferSocket {
    /// Sends one DATA whose payload is `len` bytes of `file` at `offset`: by `MSG_MORE` +
    /// `sendfile` (Linux) when `sendfile` is set, else (or when the kernel refuses it) by
    /// `pread` into a buffer and one send. A file that has shrunk ends in an
    /// `UnexpectedEof` error, after whatever was read has gone out.
    pub async fn send_file_block(
        &self,
        block: &FileBlock,
        file: &std::fs::File,
        to: SocketAddr,
        sendfile: bool,
        report: &mut SendReport,
    ) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if sendfile {
            return self.sendfile_block(block, file, to, report).await;
        }
        let _ = sendfile;
        self.pread_block(block, file, to, report).await
    }

    #[cfg(target_os = "linux")]
    async fn sendfile_block(
        &self,
        block: &FileBlock,
        file: &std::fs::File,
        to: SocketAddr,
        report: &mut SendReport,
    ) -> io::Result<()> {
        use crate::fastpath::sendfile;
        if block.len == 0 {
            // The empty final DATA of a file of whole blocks: nothing to append, and a
            // corked header would wait for the next send.
            self.send_counted(&block.header, to, report).await;
            return Ok(());
        }
        self.write_with(|fd| sendfile::send_header(&fd, &block.header, to))
            .await?;
        report.sendfile_calls += 1;
        let mut done = 0;
        while done < block.len {
            let offset = block.offset + done as u64;
            let sent = self
                .write_with(|fd| sendfile::send_payload(&fd, file, offset, block.len - done))
                .await;
            match sent {
                Ok(0) => {
                    // The file shrank: let the partial datagram go, the caller aborts.
                    self.write_with(|fd| sendfile::finish(&fd)).await?;
                    report.datagrams += 1;
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                Ok(n) => done += n,
                Err(e) => return self.sendfile_failed(e, block, file, to, done, report).await,
            }
        }
        report.datagrams += 1;
        Ok(())
    }

    /// After `sendfile` failed with `done` bytes appended: completes the corked datagram
    /// from a `pread`. A failed append makes the kernel drop the corked datagram
    /// (`udp_sendmsg` flushes its pending frames on error; e.g. EAGAIN on a full send
    /// buffer, after which tokio's retry meets no cork and no address: EDESTADDRREQ), so
    /// that case sends the whole DATA afresh. Only other errors count as a refusal.
    #[cfg(target_os = "linux")]
    async fn sendfile_failed(
        &self,
        e: io::Error,
        block: &FileBlock,
        file: &std::fs::File,
        to: SocketAddr,
        done: usize,
        report: &mut SendReport,
    ) -> io::Result<()> {
        use crate::fastpath::sendfile;
        let dropped = |e: &io::Error| e.raw_os_error() == Some(nix::libc::EDESTADDRREQ);
        if !dropped(&e) {
            let mut rest = vec![0u8; block.len - done];
            let offset = block.offset + done as u64;
            let n = super::file::read_full_at(file, &mut rest, offset)?;
            let finished = self
                .write_with(|fd| sendfile::finish_with(&fd, &rest[..n]))
                .await;
            match finished {
                Ok(()) => {
                    report.single_calls += 1;
                    report.datagrams += 1;
                    report.sendfile_refused = Some(e);
                    return if n < rest.len() {
                        Err(io::ErrorKind::UnexpectedEof.into())
                    } else {
                        Ok(())
                    };
                }
                Err(f) if dropped(&f) => {}
                Err(f) => return Err(f),
            }
        }
        self.pread_block(block, file, to, report).await
    }

    /// The portable way: `pread` the block into a buffer after its header, one send. A file
    /// that has shrunk ends in `UnexpectedEof`, after what was read has gone out.
    async fn pread_block(
        &self,
        block: &FileBlock,
        file: &std::fs::File,
        to: SocketAddr,
        report: &mut SendReport,
    ) -> io::Result<()> {
        let mut d = vec![0u8; block.header.len() + block.len];
        d[..block.header.len()].copy_from_slice(&block.header);
        let n = super::file::read_full_at(file, &mut d[block.header.len()..], block.offset)?;
        d.truncate(block.header.len() + n);
        self.send_counted(&d, to, report).await;
        if n < block.len {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }
}
