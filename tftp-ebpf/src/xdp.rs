//! The XDP program: sees every frame arriving on an interface it is attached to, decides
//! with `tftp_ebpf_common::xdp::decide` (the same rules as the socket filters, plus the deny
//! list and the per-prefix rate limit, applied to fragments and IPv6 extension-header chains
//! too), counts, and drops or passes. Frames that are certainly not for the server's ports
//! pass uncounted: it must never break other traffic.

use aya_ebpf::bindings::xdp_action;
use aya_ebpf::btf_maps::lpm_trie::Key;
use aya_ebpf::btf_maps::{Array, LpmTrie, LruHashMap, PerCpuArray};
use aya_ebpf::helpers::generated::{bpf_ktime_get_ns, bpf_xdp_load_bytes};
use aya_ebpf::macros::{btf_map, xdp};
use aya_ebpf::programs::XdpContext;
use tftp_ebpf_common::xdp::{XdpConfig, decide, gcra};
use tftp_ebpf_common::{Counter, Datagram};

use crate::{REASONS, count_reason};

/// Verdicts of the XDP program, by reason, per CPU.
#[btf_map]
static XDP_COUNTS: PerCpuArray<Counter, REASONS> = PerCpuArray::new();

/// The settings (ports, block size, rate), element 0, written by the daemon.
#[btf_map]
static XDP_CONFIG: Array<XdpConfig, 1> = Array::new();

/// Denied source prefixes (IPv4 as IPv4-mapped IPv6, prefix length + 96), written by the
/// daemon from the config and open to the operator (`bpftool map update pinned ...`).
#[btf_map]
static XDP_DENY: LpmTrie<[u8; 16], u32, 16384> = LpmTrie::new();

/// Each recent source prefix's theoretical arrival time (ns) for the rate limit, keyed by
/// `XdpConfig::rate_key` (the source masked to `rate_prefix_v4`/`_v6`); the least recently
/// seen prefixes are evicted first, so a spoofed flood cannot fill it for good.
#[btf_map]
static XDP_RATE: LruHashMap<[u8; 16], u64, 65536> = LruHashMap::new();

/// One slot per CPU that `Datagram::opaque` passes values through: what comes back from a
/// map is a value the verifier knows nothing about, so the parser's many paths merge.
#[btf_map]
static XDP_SCRATCH: PerCpuArray<u64, 1> = PerCpuArray::new();

/// The frame, read through `bpf_xdp_load_bytes`: bounds are checked by the helper, which
/// keeps the verifier's job small for the rules' variable offsets.
struct Frame<'a> {
    ctx: &'a XdpContext,
    len: usize,
}

impl Datagram for Frame<'_> {
    fn len(&self) -> usize {
        self.len
    }
    fn byte(&self, offset: usize) -> Option<u8> {
        if offset >= self.len {
            return None;
        }
        let mut b = 0u8;
        // SAFETY: the helper copies at most 1 byte into `b`, a live local, and fails (non-zero)
        // instead of reading outside the frame.
        let rc = unsafe {
            bpf_xdp_load_bytes(
                self.ctx.ctx,
                offset as u32,
                (&raw mut b).cast(),
                1,
            )
        };
        (rc == 0).then_some(b)
    }
    fn opaque(&self, value: usize) -> usize {
        let Some(slot) = XDP_SCRATCH.get_ptr_mut(0) else {
            return value;
        };
        // SAFETY: this CPU's slot of a per-CPU array, valid for the program's run and touched
        // by no other CPU; volatile, so the compiler keeps the round trip through the map.
        unsafe {
            core::ptr::write_volatile(slot, value as u64);
            core::ptr::read_volatile(slot) as usize
        }
    }
}

fn within_rate(key: &[u8; 16], config: &XdpConfig) -> bool {
    // SAFETY: a helper with no arguments and no side effects.
    let now = unsafe { bpf_ktime_get_ns() };
    let interval = config.rate_interval_ns;
    let tolerance = config.rate_tolerance_ns;
    match XDP_RATE.get_ptr_mut(key) {
        Some(tat) => {
            // SAFETY: the pointer is the map value for this key, valid for this run. Another
            // CPU may update the same source at once; a lost update lets one extra request
            // through, which a rate limit can afford.
            let current = unsafe { *tat };
            match gcra(current, now, interval, tolerance) {
                Some(next) => {
                    // SAFETY: as above.
                    unsafe { *tat = next };
                    true
                }
                None => false,
            }
        }
        None => {
            // A new source: the first request is always within the rate.
            let next = gcra(0, now, interval, tolerance).unwrap_or(now);
            let _ = XDP_RATE.insert(key, next, 0);
            true
        }
    }
}

/// The XDP entry point.
#[xdp]
pub fn tftp_xdp(ctx: XdpContext) -> u32 {
    let Some(config) = XDP_CONFIG.get(0) else {
        return xdp_action::XDP_PASS;
    };
    let frame = Frame {
        ctx: &ctx,
        len: ctx.data_end() - ctx.data(),
    };
    let decision = decide(
        &frame,
        config,
        |source| XDP_DENY.get(&Key::new(128, *source)).is_some(),
        |key| within_rate(key, config),
    );
    match decision {
        None => xdp_action::XDP_PASS,
        Some(d) => {
            count_reason(&XDP_COUNTS, d.reason, d.bytes);
            if d.reason.passes() {
                xdp_action::XDP_PASS
            } else {
                xdp_action::XDP_DROP
            }
        }
    }
}
