//! The I/O seams between the protocol core and the kernel: a transfer's datagrams through
//! [`datagram::DatagramIo`] (its backends: [`portable`], [`owned_socket`], [`blocking`],
//! [`shared_port`]), listening sockets ([`listen`], [`socket`]) and file blocks ([`file`]).
//! The portable backend is built and tested on every platform; the others plug in behind
//! the same trait.

pub mod alarms;
pub mod batch;
pub mod blocking;
pub mod buffers;
pub mod cache;
pub mod datagram;
pub mod file;
pub mod listen;
#[expect(
    unsafe_code,
    reason = "tokio's registration of a raw descriptor is unsafe; ours are owned"
)]
pub mod owned_socket;
pub mod path_mtu;
pub mod portable;
pub mod read_full;
pub mod received;
pub mod shared_port;
pub mod socket;
