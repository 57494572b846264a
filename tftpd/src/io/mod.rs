//! The I/O seams between the protocol core and the kernel: datagram sockets
//! ([`socket`], [`transfer_socket`]) and file blocks ([`file`]). Everything here is the portable implementation,
//! built and tested on every platform; platform fast paths plug in behind the same types.

pub mod alarms;
pub mod batch;
pub mod buffers;
pub mod cache;
pub mod file;
pub mod listen;
#[expect(
    unsafe_code,
    reason = "tokio's registration of a raw descriptor is unsafe; ours are owned"
)]
pub mod owned_socket;
pub mod path_mtu;
pub mod read_full;
pub mod received;
pub mod socket;
pub mod transfer_socket;
