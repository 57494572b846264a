//! tftpd's eBPF programs: two socket filters (here) and an XDP program (`xdp`). Each is a
//! thin entry point: read the packet through the shared rules in `tftp-ebpf-common`, count
//! the verdict per CPU by reason, and keep or drop. A socket filter on a UDP socket sees the
//! skb from the UDP header on, so the TFTP payload starts at offset 8.
#![no_std]
#![no_main]

mod xdp;

use aya_ebpf::btf_maps::PerCpuArray;
use aya_ebpf::macros::{btf_map, socket_filter};
use aya_ebpf::programs::SkBuffContext;
use tftp_ebpf_common::{
    Counter, Datagram, Reason, Verdict, classify_request, classify_single_port, classify_transfer,
};

/// Bytes of UDP header in front of the payload.
const UDP_HEADER_LEN: usize = 8;
/// One counter per reason (`Reason::COUNT`).
pub(crate) const REASONS: usize = Reason::COUNT as usize;

/// Verdicts on the listening sockets, by reason, per CPU.
#[btf_map]
static LISTEN_COUNTS: PerCpuArray<Counter, REASONS> = PerCpuArray::new();

/// Verdicts on the transfer sockets, by reason, per CPU.
#[btf_map]
static XFER_COUNTS: PerCpuArray<Counter, REASONS> = PerCpuArray::new();

/// The largest DATA payload a transfer socket keeps (`protocol.max_blksize`), set by the
/// loader before the program is loaded.
#[unsafe(no_mangle)]
static MAX_BLKSIZE: u32 = 65464;

/// The skb as the rules' byte accessor.
struct Skb<'a>(&'a SkBuffContext);

impl Datagram for Skb<'_> {
    fn len(&self) -> usize {
        (self.0.len() as usize).saturating_sub(UDP_HEADER_LEN)
    }
    fn byte(&self, offset: usize) -> Option<u8> {
        self.0.load::<u8>(UDP_HEADER_LEN + offset).ok()
    }
}

fn count(map: &PerCpuArray<Counter, REASONS>, verdict: Verdict, bytes: usize) {
    count_reason(map, verdict.reason(), bytes);
}

/// Adds one datagram of `bytes` to this CPU's counter for `reason`.
pub(crate) fn count_reason(map: &PerCpuArray<Counter, REASONS>, reason: Reason, bytes: usize) {
    if let Some(c) = map.get_ptr_mut(reason.index()) {
        // SAFETY: the pointer is this CPU's slot of a per-CPU array element, valid for the
        // program's run and touched by no other CPU.
        unsafe {
            (*c).packets += 1;
            (*c).bytes += bytes as u64;
        }
    }
}

/// Keep (the whole skb) or drop (0).
fn keep(ctx: &SkBuffContext, verdict: Verdict) -> i64 {
    if verdict == Verdict::Pass {
        i64::from(ctx.len())
    } else {
        0
    }
}

/// The listening sockets' filter: RRQ/WRQ with NUL-terminated name and mode only.
#[socket_filter]
pub fn tftp_listener(ctx: SkBuffContext) -> i64 {
    let d = Skb(&ctx);
    let verdict = classify_request(&d);
    count(&LISTEN_COUNTS, verdict, d.len());
    keep(&ctx, verdict)
}

/// The listening sockets' filter in single-port mode, where they carry the transfers too:
/// requests by the request rule, everything else by the transfer rule.
#[socket_filter]
pub fn tftp_single_port(ctx: SkBuffContext) -> i64 {
    let d = Skb(&ctx);
    // SAFETY: as in tftp_transfer.
    let max = unsafe { core::ptr::read_volatile(&MAX_BLKSIZE) };
    let verdict = classify_single_port(&d, max as usize);
    count(&LISTEN_COUNTS, verdict, d.len());
    keep(&ctx, verdict)
}

/// The transfer sockets' filter: 4-byte ACK, DATA within MAX_BLKSIZE, ERROR only.
#[socket_filter]
pub fn tftp_transfer(ctx: SkBuffContext) -> i64 {
    let d = Skb(&ctx);
    // SAFETY: a read of a global the loader may have patched; volatile so the compiler does
    // not fold in the default.
    let max = unsafe { core::ptr::read_volatile(&MAX_BLKSIZE) };
    let verdict = classify_transfer(&d, max as usize);
    count(&XFER_COUNTS, verdict, d.len());
    keep(&ctx, verdict)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
