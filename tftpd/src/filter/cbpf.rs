//! The classic-BPF fallback (Linux): the shared rules of `tftp-ebpf-common`, assembled as
//! classic BPF and attached with `SO_ATTACH_FILTER`. It needs no privilege and no eBPF object,
//! so it is what a plain `cargo build`, or a kernel that refuses eBPF, gets.
//!
//! Classic BPF has no maps, so it cannot count by reason. What the kernel does count is each
//! socket's drops (`SO_MEMINFO`, the `drops` column of `/proc/net/udp`), which a filter's drop
//! increments. The daemon counts what passes; the drops are reported with reason
//! `unclassified`, and that number also holds receive-buffer overflows of the same sockets.
//!
//! A socket filter on a UDP socket sees the datagram from the UDP header on: the TFTP payload
//! starts at offset 8, and `len` is the payload length plus 8. A load outside the packet would
//! end the program with "drop", so every load is guarded by a length check first.
//!
//! The programs are assembled in `program.rs`; this file attaches them and reads the counts.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use socket2::SockFilter;

use super::counters::FilterCounters;

mod program;

pub use program::{AssembleError, listener_program, single_port_program, transfer_program};

/// Why the classic-BPF filters could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum CbpfError {
    /// A program failed to assemble.
    #[error("assembling the classic BPF program")]
    Assemble(#[from] AssembleError),
    /// `SO_ATTACH_FILTER` failed.
    #[error("attaching the classic BPF {role} filter (SO_ATTACH_FILTER)")]
    Attach {
        /// Listener or transfer.
        role: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Keeping a handle on a listening socket (to read its drop counter) failed.
    #[error("duplicating a listening socket's descriptor")]
    Dup(#[source] std::io::Error),
}

/// The classic-BPF filters of one daemon: the assembled programs, the daemon-side count of
/// what passed, and the kernel's drop counters of the filtered sockets.
#[derive(Debug)]
pub struct CbpfFilter {
    /// The largest DATA the transfer program keeps (fixed when assembled).
    pub max_blksize: u16,
    listener: Vec<SockFilter>,
    single_port: Vec<SockFilter>,
    transfer: Vec<SockFilter>,
    /// Datagrams that passed, counted by the daemon as it reads them (classic BPF can't).
    pub passed: FilterCounters,
    /// Duplicates of the listening sockets, to read their drop counters.
    listeners: Vec<OwnedFd>,
    /// Drops of transfer sockets that have closed.
    closed_transfer_drops: AtomicU64,
}

impl CbpfFilter {
    /// Assembles both programs.
    pub fn new(max_blksize: u16) -> Result<Self, CbpfError> {
        Ok(Self {
            max_blksize,
            listener: listener_program()?,
            single_port: single_port_program(max_blksize)?,
            transfer: transfer_program(max_blksize)?,
            passed: FilterCounters::default(),
            listeners: Vec::new(),
            closed_transfer_drops: AtomicU64::new(0),
        })
    }

    /// Attaches the listener program to a listening socket (in single-port mode, the one that
    /// also keeps transfer packets).
    pub fn attach_listener(
        &mut self,
        socket: &std::net::UdpSocket,
        single_port: bool,
    ) -> Result<(), CbpfError> {
        let program = if single_port {
            &self.single_port
        } else {
            &self.listener
        };
        attach(socket, program).map_err(|source| CbpfError::Attach {
            role: "listener",
            source,
        })?;
        let dup = socket
            .as_fd()
            .try_clone_to_owned()
            .map_err(CbpfError::Dup)?;
        self.listeners.push(dup);
        Ok(())
    }

    /// Attaches the transfer program to a transfer socket.
    pub fn attach_transfer(&self, socket: impl AsFd) -> Result<(), CbpfError> {
        attach(socket, &self.transfer).map_err(|source| CbpfError::Attach {
            role: "transfer",
            source,
        })
    }

    /// Adds a closing transfer socket's drops to the total.
    pub fn transfer_closed(&self, socket: impl AsFd) {
        match socket_drops(socket) {
            Ok(n) => {
                self.closed_transfer_drops.fetch_add(u64::from(n), Relaxed);
            }
            Err(e) => tracing::debug!(error = %e, "reading a transfer socket's drop counter"),
        }
    }

    /// The kernel's drops on every filtered socket: the listeners (live) and the transfer
    /// sockets that have closed. Includes receive-buffer overflows.
    pub fn dropped(&self) -> u64 {
        let live: u64 = self
            .listeners
            .iter()
            .filter_map(|fd| socket_drops(fd).ok())
            .map(u64::from)
            .sum();
        live + self.closed_transfer_drops.load(Relaxed)
    }
}

fn attach(socket: impl AsFd, program: &[SockFilter]) -> std::io::Result<()> {
    socket2::SockRef::from(&socket).attach_filter(program)
}

/// The socket's drop counter (`SK_MEMINFO_DROPS` of `SO_MEMINFO`).
fn socket_drops(socket: impl AsFd) -> std::io::Result<u32> {
    use nix::libc;
    const SK_MEMINFO_VARS: usize = 9;
    const SK_MEMINFO_DROPS: usize = 8;
    let mut info = [0u32; SK_MEMINFO_VARS];
    let mut len = size_of_val(&info) as libc::socklen_t;
    #[expect(unsafe_code, reason = "SO_MEMINFO has no safe wrapper; see SAFETY")]
    // SAFETY: the fd is open for the borrow; `info` is a writable buffer of `len` bytes and the
    // kernel writes at most `len` bytes, updating `len`.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(info[SK_MEMINFO_DROPS])
}

#[cfg(test)]
mod tests;
