//! systemd integration without libsystemd: `sd_notify` (READY, RELOADING, STOPPING, STATUS and
//! the watchdog) over the datagram socket named by `NOTIFY_SOCKET`, and socket activation
//! (`LISTEN_FDS`). Both are no-ops when systemd did not start the daemon.
//! Protocol: sd_notify(3), sd_listen_fds(3).

use std::io;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Where to send notifications, read once from the environment.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    target: std::os::unix::net::SocketAddr,
}

impl Notifier {
    /// The notifier for `NOTIFY_SOCKET`, if systemd set one. `@name` is an abstract socket.
    pub fn from_env() -> io::Result<Option<Self>> {
        let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
            return Ok(None);
        };
        let path = path.to_string_lossy().into_owned();
        let target = match path.strip_prefix('@') {
            #[cfg(linux)]
            Some(name) => {
                use std::os::linux::net::SocketAddrExt as _;
                std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?
            }
            #[cfg(not(linux))]
            Some(_) => return Err(io::Error::other("abstract NOTIFY_SOCKET needs Linux")),
            None => std::os::unix::net::SocketAddr::from_pathname(&path)?,
        };
        Ok(Some(Self {
            socket: UnixDatagram::unbound()?,
            target,
        }))
    }

    /// Sends one notification, e.g. "READY=1\nSTATUS=serving".
    pub fn notify(&self, state: &str) {
        if let Err(e) = self.socket.send_to_addr(state.as_bytes(), &self.target) {
            tracing::warn!(error = %e, "sd_notify failed");
        }
    }

    /// "RELOADING=1" with the monotonic time systemd requires for Type=notify-reload.
    pub fn reloading(&self) {
        let usec = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
            .map(|t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1_000)
            .unwrap_or(0);
        self.notify(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
    }
}

/// The watchdog interval systemd asked for (`WATCHDOG_USEC`, for this process), if any.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Some(pid) = std::env::var("WATCHDOG_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        && pid != std::process::id()
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_reach_the_socket_named_by_notify_socket() {
        let dir = std::env::temp_dir().join(format!("tftpd-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("notify");
        let listener = UnixDatagram::bind(&path).expect("bind");
        let target = std::os::unix::net::SocketAddr::from_pathname(&path).expect("addr");
        let n = Notifier {
            socket: UnixDatagram::unbound().expect("socket"),
            target,
        };
        n.notify("READY=1");
        n.reloading();
        let mut buf = [0u8; 256];
        let len = listener.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..len], b"READY=1");
        let len = listener.recv(&mut buf).expect("recv");
        let text = String::from_utf8_lossy(&buf[..len]);
        assert!(text.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn listen_fds_of_zero_is_refused_with_a_message_naming_the_socket_unit() {
        assert_eq!(fd_count("2").expect("two sockets"), 2);
        for bad in ["0", "-1"] {
            let err = fd_count(bad).expect_err("no sockets");
            assert!(matches!(err, ActivationError::NoSockets(_)), "{err}");
            assert!(err.to_string().contains("ListenDatagram="), "{err}");
        }
        assert!(matches!(
            fd_count("three"),
            Err(ActivationError::BadCount(_))
        ));
    }
}

/// The first fd systemd passes (SD_LISTEN_FDS_START).
const LISTEN_FDS_START: i32 = 3;

/// Why inherited sockets could not be adopted.
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    /// `LISTEN_FDS` is not a number.
    #[error("LISTEN_FDS={0:?} is not a number")]
    BadCount(String),
    /// `LISTEN_FDS` is 0 (or negative): socket activation with nothing to serve on. Falling
    /// back to `listen` would bind behind systemd's back, so the daemon refuses to start.
    #[error(
        "LISTEN_FDS={0} for this process: systemd passed no sockets (does the .socket unit \
         have a ListenDatagram= line, and is it the unit that started tftpd?)"
    )]
    NoSockets(i32),
    /// A passed fd is not a UDP socket.
    #[error("fd {fd} passed by systemd is not an IPv4/IPv6 datagram socket")]
    NotUdp {
        /// The fd.
        fd: i32,
    },
    /// Inspecting or configuring a passed fd failed.
    #[error("fd {fd} passed by systemd")]
    Io {
        /// The fd.
        fd: i32,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// The UDP sockets systemd passed (socket activation), or `None` when it passed none to this
/// process. They replace `listen`.
pub fn listen_fds() -> Result<Option<Vec<std::net::UdpSocket>>, ActivationError> {
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|pid| pid == std::process::id());
    let Some(count) = std::env::var("LISTEN_FDS").ok().filter(|_| for_us) else {
        return Ok(None);
    };
    let n = fd_count(&count)?;
    (LISTEN_FDS_START..LISTEN_FDS_START + n)
        .map(adopt)
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// The number of passed fds in `LISTEN_FDS`: at least one.
fn fd_count(text: &str) -> Result<i32, ActivationError> {
    let n: i32 = text
        .trim()
        .parse()
        .map_err(|_| ActivationError::BadCount(text.to_string()))?;
    if n < 1 {
        return Err(ActivationError::NoSockets(n));
    }
    Ok(n)
}

/// Takes ownership of an inherited fd after checking it is a UDP socket.
fn adopt(fd: i32) -> Result<std::net::UdpSocket, ActivationError> {
    use std::os::fd::{BorrowedFd, FromRawFd as _, OwnedFd};

    use nix::sys::socket::{
        AddressFamily, SockType, SockaddrLike as _, SockaddrStorage, getsockname, getsockopt,
        sockopt,
    };

    let io_err = |source: nix::Error| ActivationError::Io {
        fd,
        source: source.into(),
    };
    // Check the fd before owning it: it must be an open datagram socket of an IP family.
    {
        #[expect(unsafe_code, reason = "systemd hands over fds by number; see SAFETY")]
        // SAFETY: the fd is only borrowed for the checks below, while it is open: systemd
        // passed it to this process (LISTEN_PID matched) and nothing has closed it.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let kind = getsockopt(&borrowed, sockopt::SockType).map_err(io_err)?;
        let family = getsockname::<SockaddrStorage>(fd).map_err(io_err)?.family();
        if kind != SockType::Datagram
            || !matches!(family, Some(AddressFamily::Inet | AddressFamily::Inet6))
        {
            return Err(ActivationError::NotUdp { fd });
        }
    }
    #[expect(unsafe_code, reason = "systemd hands over fds by number; see SAFETY")]
    // SAFETY: the fd is an open UDP socket passed to this process by systemd, owned by nothing
    // else in it; it is adopted exactly once, since each number is visited once.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let socket = std::net::UdpSocket::from(owned);
    socket
        .set_nonblocking(true)
        .map_err(|source| ActivationError::Io { fd, source })?;
    nix::fcntl::fcntl(
        &socket,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map_err(io_err)?;
    Ok(socket)
}
