//! What tftpd's packet filters share: the classification rules (the only copy, used by the
//! eBPF programs, the classic-BPF fallback and the userspace fallback alike), the drop
//! reasons and the counter layout. `no_std` so the eBPF crate can use it; plain Rust so the
//! rules are unit-tested on the host.
// The crate is no_std for the eBPF side; its own tests run with std (proptest needs it).
#![cfg_attr(not(test), no_std)]

pub mod counters;
pub mod frame;
pub mod rules;
pub mod xdp;

pub use counters::{Counter, Reason};
pub use rules::{Datagram, Verdict, classify_request, classify_single_port, classify_transfer};
pub use xdp::{Decision, XdpConfig, decide};
