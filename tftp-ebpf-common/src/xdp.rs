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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// The rate limit's key for an IPv4 source: its first this many bits (0..=32).
    pub rate_prefix_v4: u16,
    /// The rate limit's key for an IPv6 source: its first this many bits (0..=128).
    pub rate_prefix_v6: u16,
    /// Nanoseconds between requests a source may send on average; 0 turns the limit off.
    pub rate_interval_ns: u64,
    /// How far ahead of that pace a source may run (the burst, in nanoseconds).
    pub rate_tolerance_ns: u64,
}

impl Default for XdpConfig {
    /// No ports, no limit; rate keys of a /32 (IPv4) and a /64 (IPv6), the daemon's defaults.
    fn default() -> Self {
        Self {
            listen_ports: [0; LISTEN_PORTS],
            transfer_port_first: 0,
            transfer_port_last: 0,
            max_blksize: 0,
            single_port: 0,
            rate_prefix_v4: 32,
            rate_prefix_v6: 64,
            rate_interval_ns: 0,
            rate_tolerance_ns: 0,
        }
    }
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

    fn is_ours(&self, port: u16) -> bool {
        self.is_listen_port(port) || self.is_transfer_port(port)
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

    /// The rate limiter's key for `source`: its prefix, the rest zeroed, so one budget is
    /// shared by a whole IPv6 /64 (which one host may hold entirely) or IPv4 prefix.
    pub fn rate_key(&self, source: &[u8; 16]) -> [u8; 16] {
        let v4_mapped = source[..10].iter().all(|b| *b == 0) && source[10..12] == [0xff, 0xff];
        let bits = if v4_mapped {
            96 + usize::from(self.rate_prefix_v4)
        } else {
            usize::from(self.rate_prefix_v6)
        };
        let mut key = [0u8; 16];
        let mut i = 0;
        while i < 16 {
            let keep = bits.saturating_sub(i * 8);
            key[i] = if keep >= 8 {
                source[i]
            } else if keep == 0 {
                0
            } else {
                source[i] & (0xffu8 << (8 - keep))
            };
            i += 1;
        }
        key
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

impl<F: Datagram + ?Sized> Payload<'_, F> {
    /// Whether the payload starts with the RRQ or WRQ opcode.
    fn starts_like_request(&self) -> bool {
        self.byte(0) == Some(0) && matches!(self.byte(1), Some(1 | 2))
    }
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
    /// Bytes to count: the UDP payload, or for a fragment or an unparsed chain the frame.
    pub bytes: usize,
}

/// The reasons for one kind of frame, by outcome.
struct Outcomes {
    passed: Reason,
    denied: Reason,
    rate_limited: Reason,
}

const WHOLE: Outcomes = Outcomes {
    passed: Reason::Passed,
    denied: Reason::Denied,
    rate_limited: Reason::RateLimited,
};
const FRAGMENT: Outcomes = Outcomes {
    passed: Reason::FragmentPassed,
    denied: Reason::FragmentDenied,
    rate_limited: Reason::FragmentRateLimited,
};
const EXT_HEADER: Outcomes = Outcomes {
    passed: Reason::ExtHeaderPassed,
    denied: Reason::ExtHeaderDenied,
    rate_limited: Reason::ExtHeaderRateLimited,
};

/// The XDP decision for a frame: `None` for traffic that is certainly not for the server's
/// ports (passed, not counted), else what to count. `denied` looks the source up in the
/// deny list; `within_rate` charges a rate key ([`XdpConfig::rate_key`]) one request and
/// says whether it had one left.
///
/// Fragments and unparsed IPv6 chains are judged by their source, which every one of them
/// carries: a denied source's are dropped. A first fragment to a listening port (or of
/// unknown port) is charged as a request; later fragments are not (they cannot reassemble
/// without the first). An unparsed chain is charged, as it may be a request.
pub fn decide<F, D, R>(frame: &F, config: &XdpConfig, denied: D, within_rate: R) -> Option<Decision>
where
    F: Datagram + ?Sized,
    D: FnOnce(&[u8; 16]) -> bool,
    R: FnOnce(&[u8; 16]) -> bool,
{
    let limit = config.rate_interval_ns != 0;
    let udp = match parse_frame(frame) {
        Frame::Other => return None,
        Frame::Fragment(f) => {
            if f.dst_port != 0 && !config.is_ours(f.dst_port) {
                return None;
            }
            let payload = Payload {
                frame,
                offset: f.payload_offset,
                len: f.payload_len,
            };
            // In single-port mode a listening port also takes an upload's DATA, which may
            // be fragmented: only what may be a request (or is too short to tell) is charged.
            let may_be_request =
                config.single_port == 0 || payload.len < 2 || payload.starts_like_request();
            let request =
                f.first && (f.dst_port == 0 || config.is_listen_port(f.dst_port) && may_be_request);
            let reason = by_source(
                &FRAGMENT,
                &f.source,
                config,
                request && limit,
                denied,
                within_rate,
            );
            return Some(Decision {
                reason,
                bytes: frame.len(),
            });
        }
        Frame::Unparsed { source } => {
            let outcomes = Outcomes {
                passed: Reason::ExtHeaderUnparsed,
                ..EXT_HEADER
            };
            let reason = by_source(&outcomes, &source, config, limit, denied, within_rate);
            return Some(Decision {
                reason,
                bytes: frame.len(),
            });
        }
        Frame::Udp(udp) => udp,
    };
    let listener = config.is_listen_port(udp.dst_port);
    if !listener && !config.is_transfer_port(udp.dst_port) {
        return None;
    }
    // Each parser path (every IPv4 header length, every IPv6 chain length) arrives with
    // offsets of its own, and the verifier would walk the request scan below once per path,
    // past its budget. Made opaque, they share one verifier state.
    let payload = Payload {
        frame,
        offset: frame.opaque(udp.payload_offset),
        len: frame.opaque(udp.payload_len),
    };
    let outcomes = if frame.opaque(usize::from(udp.ext_headers)) == 0 {
        &WHOLE
    } else {
        &EXT_HEADER
    };
    let counted = |reason| {
        Some(Decision {
            reason,
            bytes: payload.len,
        })
    };
    if denied(&udp.source) {
        return counted(outcomes.denied);
    }
    let looks_like_request = payload.starts_like_request();
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
        Verdict::Pass if request && limit && !within_rate(&config.rate_key(&udp.source)) => {
            counted(outcomes.rate_limited)
        }
        Verdict::Pass => counted(outcomes.passed),
    }
}

/// The decision on a frame whose payload cannot be judged: the deny list, then (when
/// `charge`) the rate.
fn by_source<D, R>(
    outcomes: &Outcomes,
    source: &[u8; 16],
    config: &XdpConfig,
    charge: bool,
    denied: D,
    within_rate: R,
) -> Reason
where
    D: FnOnce(&[u8; 16]) -> bool,
    R: FnOnce(&[u8; 16]) -> bool,
{
    if denied(source) {
        outcomes.denied
    } else if charge && !within_rate(&config.rate_key(source)) {
        outcomes.rate_limited
    } else {
        outcomes.passed
    }
}

#[cfg(test)]
mod tests;
