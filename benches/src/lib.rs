//! tftpd-benches: `tftp-load`, a load generator for TFTP servers, and the raw loopback
//! ceiling its figures are compared with.
//!
//! The entry points are [`run`] (a [`LoadSpec`] in, a [`Report`] out; both downloads and
//! uploads, many concurrent clients, every byte verified) and [`ceiling`]. Reports serialise
//! to JSON with serde, so `cargo xtask bench` can call these and tabulate the results.
//!
//! # Layout
//! - [`spec`]: what a run does (server, transfer, options, clients, duration, impairment).
//! - [`load`]: runs a spec: one tokio task per client, one socket per transfer.
//! - [`client`]: one download or upload (lock-step or windowed, rollover, retransmission).
//! - [`blocks`]: 16-bit wire block numbers against 64-bit indices.
//! - [`link`]: a transfer's socket with the impairment applied both ways.
//! - [`impair`]: the seeded loss/duplication/reordering decisions (pure).
//! - [`content`]: deterministic upload content and the download verifier.
//! - [`stats`] and [`report`]: percentiles, throughput, the text and JSON report.
//! - [`ceiling`]: the in-process responder that measures what the machine can do.
//! - [`raw_server`]: the concurrent ceiling, a TFTP-shaped responder with no server behind
//!   it (epoll, or one io_uring) that the real clients and the bench can run against.
//! - [`cli`]: the `tftp-load` command line, translated into specs.
//!
//! The TFTP codec is tftpd's own (`tftpd::proto`), so the generator and the server agree
//! on the wire format by construction, and a codec bug cannot hide in a second copy.

pub mod blocks;
pub mod ceiling;
pub mod cli;
pub mod client;
pub mod content;
pub mod impair;
pub mod link;
pub mod load;
pub mod raw_server;
pub mod report;
pub mod spec;
pub mod stats;

pub use ceiling::{CeilingReport, CeilingSpec, ceiling};
pub use load::{LoadError, run, run_async};
pub use report::Report;
pub use spec::{Expected, LoadSpec, RequestOptions, Stop, Transfer};
