//! Socket buffer sizes (`[performance.socket]`). A listening socket takes a boot storm's
//! requests in a burst, and a window of DATA leaves in a burst: both want more than the
//! kernel's default (~208 KiB). Root (or CAP_NET_ADMIN) may exceed `net.core.rmem_max` /
//! `wmem_max` with the FORCE options; otherwise the kernel caps the request silently, so the
//! effective size is read back and reported.

use std::io;
use std::os::fd::AsFd;

/// The sizes the kernel reports after setting (it doubles a request for its bookkeeping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effective {
    /// SO_RCVBUF as read back.
    pub recv: usize,
    /// SO_SNDBUF as read back.
    pub send: usize,
}

/// Sets the receive and send buffers (0 leaves one at the kernel default).
pub fn apply(socket: &impl AsFd, recv: usize, send: usize) -> io::Result<()> {
    let s = socket2::SockRef::from(socket);
    if recv > 0 {
        set(socket, recv, Dir::Recv, &s)?;
    }
    if send > 0 {
        set(socket, send, Dir::Send, &s)?;
    }
    Ok(())
}

/// What the kernel granted.
pub fn effective(socket: &impl AsFd) -> io::Result<Effective> {
    let s = socket2::SockRef::from(socket);
    Ok(Effective {
        recv: s.recv_buffer_size()?,
        send: s.send_buffer_size()?,
    })
}

#[derive(Clone, Copy)]
enum Dir {
    Recv,
    Send,
}

fn set(socket: &impl AsFd, size: usize, dir: Dir, s: &socket2::SockRef<'_>) -> io::Result<()> {
    // Only root can force; trying without it would cost a failing call per transfer.
    #[cfg(linux)]
    if nix::unistd::geteuid().is_root() {
        use nix::sys::socket::{setsockopt, sockopt};
        let forced = match dir {
            Dir::Recv => setsockopt(socket, sockopt::RcvBufForce, &size),
            Dir::Send => setsockopt(socket, sockopt::SndBufForce, &size),
        };
        if forced.is_ok() {
            return Ok(());
        }
    }
    #[cfg(not(linux))]
    let _ = socket;
    match dir {
        Dir::Recv => s.set_recv_buffer_size(size),
        Dir::Send => s.set_send_buffer_size(size),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_grants_at_least_a_modest_request_and_says_so() {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let before = effective(&s).expect("read back");
        apply(&s, 1 << 20, 1 << 20).expect("set 1 MiB");
        let after = effective(&s).expect("read back");
        assert!(
            after.recv >= 1 << 20 && after.send >= 1 << 20,
            "1 MiB is under every default rmem_max cap here: {after:?}"
        );
        assert!(after.recv > before.recv, "{before:?} -> {after:?}");
    }
}
