//! tftpd: a correct, safe and fast TFTP server.
//!
//! # Layout
//! - [`proto`]: the pure protocol core (codec, options, netascii, transfer state machines,
//!   RFC 2090 multicast groups).
//!   No sockets, files or clocks: time is passed in.
//! - [`fs`]: the root jail (every path resolved beneath the served root) and atomic uploads.
//! - [`config`] and [`cli`]: the validated configuration and the command line that overrides it.
//! - [`io`]: the narrow seams for datagram and file I/O, with the portable implementation.
//! - [`server`]: the I/O shell: listeners, one task per transfer (or per multicast group),
//!   limits, reload, drain.
//! - [`filter`]: the packet filter on every socket (the shared rules, applied in userspace).
//! - [`fastpath`]: Linux fast paths behind the `io` seams (UDP GSO, `recvmmsg`), probed once.
//! - [`daemon`]: privilege drop, signals, CPU affinity and systemd.
//! - [`health`]: `tftpd health`, the probe of a running daemon (metrics, a TFTP download).
//! - [`metrics`] and [`logging`]: Prometheus text metrics and the tracing subscriber
//!   (stderr, the journal's native protocol, or syslog).
//! - [`stats`]: `tftpd stats`, a running daemon's counters read from outside it.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod fastpath;
pub mod filter;
pub mod fs;
pub mod health;
pub mod io;
pub mod logging;
pub mod metrics;
pub mod proto;
pub mod server;
pub mod stats;
