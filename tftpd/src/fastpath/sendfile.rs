//! DATA by `sendfile` (Linux): the 4-byte header goes out with `MSG_MORE`, which corks the
//! datagram, and `sendfile` appends the block from the file without a copy through user
//! space; the datagram leaves when the block is complete. The socket need not be connected:
//! the corked header carries the destination and the kernel appends later sends to it
//! (`udp_sendmsg` checks for pending frames before it looks for an address).
//!
//! Measured before it was built (shared/notes/fastpath-facts.md §3): one datagram per pair
//! at every block size, but slower than `pread` + `send` at 512–8192 bytes (two system calls
//! and splice set-up per block), on par at 65464. See docs/adr/0019 for the daemon's figures.
//!
//! # Minimum kernel version
//! 2.6.33 (`sendfile` to any file descriptor); the probe at start decides.

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;

use nix::sys::socket::{MsgFlags, SockaddrStorage, sendto};

/// Whether the kernel puts a corked header and a `sendfile` block into one datagram, tried
/// once on a loopback socket pair with the daemon's own executable as the file.
pub fn probe() -> bool {
    probe_once().unwrap_or(false)
}

fn probe_once() -> io::Result<bool> {
    let rx = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let tx = std::net::UdpSocket::bind("127.0.0.1:0")?;
    rx.set_read_timeout(Some(std::time::Duration::from_secs(1)))?;
    let file = File::open("/proc/self/exe")?;
    send_header(&tx, &[0, 3, 0, 1], rx.local_addr()?)?;
    let n = send_payload(&tx, &file, 0, 16)?;
    if n != 16 {
        finish(&tx)?;
    }
    let mut buf = [0u8; 64];
    let got = rx.recv(&mut buf)?;
    Ok(n == 16 && got == 20 && buf[..4] == [0, 3, 0, 1])
}

/// Queues `header` to `to` with `MSG_MORE`: nothing leaves until the payload completes it.
pub fn send_header(socket: &impl AsFd, header: &[u8], to: SocketAddr) -> io::Result<()> {
    let addr = SockaddrStorage::from(to);
    let sent = sendto(
        std::os::fd::AsRawFd::as_raw_fd(&socket.as_fd()),
        header,
        &addr,
        // nix has no name for MSG_MORE (Linux 2.4.4); the bit is libc's.
        MsgFlags::from_bits_retain(nix::libc::MSG_MORE),
    )?;
    if sent == header.len() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "short header send",
        ))
    }
}

/// Appends up to `len` bytes of `file` at `offset` to the corked datagram, closing it when
/// they are the last; returns how many were sent (0: the file ended).
pub fn send_payload(socket: &impl AsFd, file: &File, offset: u64, len: usize) -> io::Result<usize> {
    let mut off = i64::try_from(offset).map_err(io::Error::other)?;
    Ok(nix::sys::sendfile::sendfile(
        socket.as_fd(),
        file.as_fd(),
        Some(&mut off),
        len,
    )?)
}

/// Closes a corked datagram with what it holds (an empty append without `MSG_MORE`).
pub fn finish(socket: &impl AsFd) -> io::Result<()> {
    nix::sys::socket::send(
        std::os::fd::AsRawFd::as_raw_fd(&socket.as_fd()),
        &[],
        MsgFlags::empty(),
    )?;
    Ok(())
}

/// Appends `bytes` to the corked datagram and closes it: the fallback when the kernel
/// refuses `sendfile` after the header was queued.
pub fn finish_with(socket: &impl AsFd, bytes: &[u8]) -> io::Result<()> {
    let sent = nix::sys::socket::send(
        std::os::fd::AsRawFd::as_raw_fd(&socket.as_fd()),
        bytes,
        MsgFlags::empty(),
    )?;
    if sent == bytes.len() {
        Ok(())
    } else {
        Err(io::Error::new(io::ErrorKind::WriteZero, "short send"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_finds_sendfile_on_this_kernel() {
        assert!(probe(), "Linux has had UDP sendfile since 2.6.33");
    }

    #[test]
    fn header_and_block_arrive_as_one_datagram_on_an_unconnected_socket() {
        let dir = crate::fs::testdir_for_config();
        let p = dir.path().join("f");
        let data: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
        std::fs::write(&p, &data).expect("write");
        let f = File::open(&p).expect("open");
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        rx.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let to = rx.local_addr().expect("addr");
        for (block, off, len) in [(1u8, 0u64, 1428usize), (2, 1428, 1428), (3, 2856, 144)] {
            send_header(&tx, &[0, 3, 0, block], to).expect("header");
            assert_eq!(send_payload(&tx, &f, off, len).expect("sendfile"), len);
            let mut buf = [0u8; 2000];
            let n = rx.recv(&mut buf).expect("datagram");
            assert_eq!(
                n,
                4 + len,
                "block {block}: one datagram of header and payload"
            );
            assert_eq!(&buf[..4], &[0, 3, 0, block]);
            let o = off as usize;
            assert!(buf[4..n] == data[o..o + len], "block {block}: bytes");
        }
        // Past the end: nothing appended; finish() sends what is corked (the header alone).
        send_header(&tx, &[0, 3, 0, 4], to).expect("header");
        assert_eq!(
            send_payload(&tx, &f, 3000, 100).expect("sendfile at EOF"),
            0
        );
        finish(&tx).expect("finish");
        let mut buf = [0u8; 64];
        assert_eq!(rx.recv(&mut buf).expect("datagram"), 4);
        // With no corked header, an unconnected socket has nowhere to send: the session
        // reads EDESTADDRREQ as "the kernel dropped the cork" and sends the DATA afresh.
        let e = send_payload(&tx, &f, 0, 10).expect_err("no cork, no address");
        assert_eq!(e.raw_os_error(), Some(nix::libc::EDESTADDRREQ), "{e}");
    }
}
