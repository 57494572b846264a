//! UDP GSO (Linux): a window of equal-size DATA datagrams goes to the kernel in one
//! `sendmsg` with a `UDP_SEGMENT` control message; the kernel cuts it into datagrams (in the
//! NIC where it can). The receiver sees ordinary datagrams. Measured here before it was built
//! (shared/notes/fastpath-facts.md §1): about 3× fewer CPU per datagram for a window of 8
//! blocks of 1428 bytes.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};

use nix::sys::socket::{ControlMessage, MsgFlags, SockaddrStorage, sendmsg};

/// The kernel's cap on segments per GSO send (`UDP_MAX_SEGMENTS`; 64 before 6.x kernels
/// raised it, so the lower value is used).
pub const MAX_SEGMENTS: usize = 64;
/// The most bytes one UDP send may carry (65535 − 8 UDP − 20 IPv4 header).
pub const MAX_BYTES: usize = 65507;

/// Whether the kernel takes `UDP_SEGMENT` at all.
pub fn probe() -> bool {
    let Ok(s) = std::net::UdpSocket::bind("127.0.0.1:0") else {
        return false;
    };
    nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::UdpGsoSegment, &1400).is_ok()
}

/// Sends `bytes` to `to` as datagrams of `segment` bytes (the last may be shorter).
pub fn send(socket: &impl AsFd, bytes: &[u8], segment: usize, to: SocketAddr) -> io::Result<()> {
    let seg = u16::try_from(segment)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "segment over 65535 bytes"))?;
    let addr = SockaddrStorage::from(to);
    let sent = sendmsg(
        socket.as_fd().as_raw_fd(),
        &[IoSlice::new(bytes)],
        &[ControlMessage::UdpGsoSegments(&seg)],
        MsgFlags::empty(),
        Some(&addr),
    )?;
    if sent == bytes.len() {
        Ok(())
    } else {
        Err(io::Error::new(io::ErrorKind::WriteZero, "short GSO send"))
    }
}
