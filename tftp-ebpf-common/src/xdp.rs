//! What the XDP program decides, as plain Rust: where a frame goes (not ours, or counted
//! under a reason), the deny list and the per-source rate limit. The program only supplies
//! the packet bytes, the map lookups and the clock.

use crate::counters::Reason;
use crate::frame::{Frame, parse_frame};
use crate::rules::{Datagram, Verdict, classify_request, classify_transfer};

/// How many listening ports the XDP program watches.
pub const LISTEN_PORTS: usize = 4;

/// The XDP program's settings: one element of an array map, written by the daemon at start
/// and on reload. `#[repr(C)]` with no padding, so `bpftool map dump` shows it as is.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XdpConfig {
    /// The listening ports (0 = unused slot).
    pub listen_ports: [u16; LISTEN_PORTS],
    /// First transfer port (`port_range`), or 0 with `transfer_port_last` 0: transfer ports
    /// are then ephemeral and only their socket filters judge them.
    pub transfer_port_first: u16,
    /// Last transfer port, inclusive.
    pub transfer_port_last: u16,
    /// The largest DATA payload a transfer port keeps.
    pub max_blksize: u32,
    /// 1 in single-port mode: the listening ports carry transfers too.
    pub single_port: u32,
    /// Keeps the u64s below 8-aligned without hidden padding.
    pub reserved: u32,
    /// Nanoseconds between requests a source may send on average; 0 turns the limit off.
    pub rate_interval_ns: u64,
    /// How far ahead of that pace a source may run (the burst, in nanoseconds).
    pub rate_tolerance_ns: u64,
}

impl XdpConfig {
    fn is_listen_port(&self, port: u16) -> bool {
        port != 0 && self.listen_ports.contains(&port)
    }

    fn is_transfer_port(&self, port: u16) -> bool {
        self.transfer_port_last != 0
            && port >= self.transfer_port_first
            && port <= self.transfer_port_last
    }

    /// The settings for a rate of `per_sec` requests a second with bursts of `burst`.
    pub fn set_rate(&mut self, per_sec: u32, burst: u32) {
        if per_sec == 0 {
            self.rate_interval_ns = 0;
            self.rate_tolerance_ns = 0;
            return;
        }
        self.rate_interval_ns = 1_000_000_000 / u64::from(per_sec);
        self.rate_tolerance_ns = self.rate_interval_ns * u64::from(burst.saturating_sub(1));
    }
}

/// The generic cell rate algorithm: `tat` is the source's theoretical arrival time (0 when
/// new). Returns the new `tat` when a request at `now` is within the rate, `None` when not.
/// Equivalent to a token bucket, with one number of state per source.
pub const fn gcra(tat: u64, now: u64, interval: u64, tolerance: u64) -> Option<u64> {
    let tat = if tat > now { tat } else { now };
    if tat - now > tolerance {
        None
    } else {
        Some(tat + interval)
    }
}

/// The payload of a UDP datagram inside a frame.
struct Payload<'a, F: ?Sized> {
    frame: &'a F,
    offset: usize,
    len: usize,
}

impl<F: Datagram + ?Sized> Datagram for Payload<'_, F> {
    fn len(&self) -> usize {
        self.len
    }
    fn byte(&self, offset: usize) -> Option<u8> {
        if offset < self.len {
            self.frame.byte(self.offset + offset)
        } else {
            None
        }
    }
}

/// A counted XDP decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The counter, which also says pass or drop (`Reason::passes`).
    pub reason: Reason,
    /// Bytes to count: the UDP payload, or for a fragment the whole frame.
    pub bytes: usize,
}

/// The XDP decision for a frame: `None` for traffic that is not for the server's ports
/// (passed, not counted), else what to count. `denied` looks the source up in the deny
/// list; `within_rate` charges the source one request and says whether it had one left.
pub fn decide<F, D, R>(frame: &F, config: &XdpConfig, denied: D, within_rate: R) -> Option<Decision>
where
    F: Datagram + ?Sized,
    D: FnOnce(&[u8; 16]) -> bool,
    R: FnOnce(&[u8; 16]) -> bool,
{
    let udp = match parse_frame(frame) {
        Frame::Other => return None,
        Frame::Fragment => {
            return Some(Decision {
                reason: Reason::FragmentPassed,
                bytes: frame.len(),
            });
        }
        Frame::Udp(udp) => udp,
    };
    let listener = config.is_listen_port(udp.dst_port);
    if !listener && !config.is_transfer_port(udp.dst_port) {
        return None;
    }
    let counted = |reason| {
        Some(Decision {
            reason,
            bytes: udp.payload_len,
        })
    };
    if denied(&udp.source) {
        return counted(Reason::Denied);
    }
    let payload = Payload {
        frame,
        offset: udp.payload_offset,
        len: udp.payload_len,
    };
    let looks_like_request = payload.byte(0) == Some(0) && matches!(payload.byte(1), Some(1 | 2));
    // One call site per rule: the request scan is the costly part for the verifier, and a
    // second inlined copy (as `classify_single_port` would make) exceeds its budget. This is
    // `classify_single_port` on a single-port listener, spelled out.
    let by_request_rule = listener && (looks_like_request || config.single_port == 0);
    let verdict = if by_request_rule {
        classify_request(&payload)
    } else {
        classify_transfer(&payload, config.max_blksize as usize)
    };
    // Only requests are charged: a transfer's ACKs in single-port mode are not new clients.
    let request = listener && looks_like_request;
    match verdict {
        Verdict::Drop(r) => counted(r),
        Verdict::Pass if request && config.rate_interval_ns != 0 && !within_rate(&udp.source) => {
            counted(Reason::RateLimited)
        }
        Verdict::Pass => counted(Reason::Passed),
    }
}

#[cfg(test)]
mod tests;
