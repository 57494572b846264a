//! RFC 2090 multicast downloads: the option's answer and the state of one group.
//!
//! A group serves one file, with one set of options, to every client that asked for it
//! with `multicast`. DATA goes to the group address; only the master client (the oldest
//! member) sends ACKs, and an ACK of block n asks for block n + 1 (RFC 2090 §Data
//! Transfer), so a member that joined late asks for what it missed once it is master.
//! When the master is done (it ACKs the last block), the next oldest member is told with
//! an OACK carrying `mc=1`; members that send ERROR or stop answering are dropped.
//!
//! Pure, like the rest of `proto`: the shell (`server::multicast`) hands in datagrams with
//! their source, joins, file blocks and the time, and sends what `poll_transmit` gives out,
//! either to the group or to one member.
//!
//! This file holds the option's wire format and the types a group takes and gives out;
//! `group.rs` holds the group's state machine.

use std::net::Ipv4Addr;
use std::time::Duration;

use super::transfer::Outcome;

mod group;

pub use group::MulticastGroup;

/// The option's name on the wire (RFC 2090; case-insensitive like every option).
pub const OPTION: &str = "multicast";

/// The most blocks a group sends. Members place a block by its number (atftp keeps a
/// bitmap of 65536 blocks) and RFC 2090 says nothing of rollover, so a file needing more is
/// served by unicast instead.
pub const MAX_BLOCKS: u64 = 65535;

/// The OACK value `addr,port,mc` (RFC 2090 §Multicast Option Specification).
pub fn oack_value(addr: Ipv4Addr, port: u16, master: bool) -> String {
    format!("{addr},{port},{}", u8::from(master))
}

/// Parses an OACK value `addr,port,mc`; `None` when malformed. (The server only writes
/// these; the parser pins the format down in tests and serves test clients.)
pub fn parse_oack_value(value: &str) -> Option<(Ipv4Addr, u16, bool)> {
    let mut parts = value.split(',');
    let addr = parts.next()?.trim().parse().ok()?;
    let port = parts.next()?.trim().parse().ok()?;
    let master = match parts.next()?.trim() {
        "0" => false,
        "1" => true,
        _ => return None,
    };
    parts.next().is_none().then_some((addr, port, master))
}

/// The number of DATA blocks a file of `size` bytes takes at `blksize` (the last one is
/// short, possibly empty).
pub fn block_count(size: u64, blksize: u16) -> u64 {
    size / u64::from(blksize.max(1)) + 1
}

/// A group's fixed settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// The group address DATA is sent to.
    pub addr: Ipv4Addr,
    /// The group port DATA is sent to.
    pub port: u16,
    /// Blocks in the file (at most [`MAX_BLOCKS`]).
    pub blocks: u64,
    /// Bytes per block.
    pub blksize: u16,
    /// Time the master has to answer before a retransmission (or a switch).
    pub timeout: Duration,
    /// Timeouts a member may run up as master before it is dropped.
    pub max_retries: u32,
    /// On a timeout with other members waiting, make the next one master at once, rather
    /// than retransmitting to the silent one (atftpd `--mcast-switch-client`).
    pub switch_on_timeout: bool,
}

/// Where a datagram goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination<P> {
    /// The group address and port.
    Group,
    /// One member (or stranger), from the group's socket.
    Peer(P),
}

/// A datagram to send.
#[derive(Debug, PartialEq, Eq)]
pub struct Transmit<'a, P> {
    /// Where it goes.
    pub to: Destination<P>,
    /// The datagram.
    pub datagram: &'a [u8],
    /// What it is.
    pub kind: super::TransmitKind,
}

/// A member that left the group, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Departure<P> {
    /// The member.
    pub peer: P,
    /// How its download ended.
    pub outcome: Outcome,
}

#[cfg(test)]
mod tests;
