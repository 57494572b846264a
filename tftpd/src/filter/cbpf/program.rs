//! The shared rules of `tftp-ebpf-common` as classic BPF programs: a tiny assembler with
//! forward labels, and the listener, transfer and single-port programs built with it. Pure:
//! attaching them and reading the sockets' drop counters is the parent module's job.

use socket2::SockFilter;
use tftp_ebpf_common::rules::REQUEST_SCAN_LIMIT;

const UDP_HEADER_LEN: u32 = 8;
/// The smallest datagram (with UDP header) either rule keeps: a 4-byte TFTP header.
const MIN_LEN: u32 = UDP_HEADER_LEN + 4;
/// Keep the whole datagram.
const KEEP: u32 = u32::MAX;

// Classic BPF opcodes (linux/filter.h): class | size | mode, or class | op | source.
/// `BPF_LD | BPF_W | BPF_LEN`: A = datagram length.
const LD_W_LEN: u16 = 0x80;
/// `BPF_LD | BPF_H | BPF_ABS`: A = the 16-bit big-endian value at k.
const LD_H_ABS: u16 = 0x28;
/// `BPF_LD | BPF_B | BPF_IND`: A = the byte at X + k.
const LD_B_IND: u16 = 0x50;
/// `BPF_ALU | BPF_SUB | BPF_K`: A -= k.
const ALU_SUB_K: u16 = 0x14;
/// `BPF_JMP | BPF_JA`: jump k ahead.
const JA: u16 = 0x05;
/// `BPF_JMP | BPF_JEQ | BPF_K`.
const JEQ_K: u16 = 0x15;
/// `BPF_JMP | BPF_JGT | BPF_K`.
const JGT_K: u16 = 0x25;
/// `BPF_JMP | BPF_JGE | BPF_K`.
const JGE_K: u16 = 0x35;
/// `BPF_RET | BPF_K`: return k (bytes to keep; 0 drops).
const RET_K: u16 = 0x06;
/// `BPF_MISC | BPF_TAX`: X = A.
const TAX: u16 = 0x07;
/// `BPF_MISC | BPF_TXA`: A = X.
const TXA: u16 = 0x87;

/// Classic BPF's limit on a program's length (`BPF_MAXINSNS`).
pub(super) const MAX_INSNS: usize = 4096;

/// Where a jump goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum To {
    /// The next instruction.
    Next,
    /// A label, resolved when the program is finished.
    Label(usize),
}

#[derive(Debug, Clone, Copy)]
struct Insn {
    code: u16,
    jt: To,
    jf: To,
    k: u32,
}

/// A tiny assembler with forward labels; conditional jumps reach at most 255 instructions.
#[derive(Debug, Default)]
struct Asm {
    insns: Vec<Insn>,
    labels: Vec<Option<usize>>,
}

/// A program that could not be assembled (a bug in this module, caught by its tests).
#[derive(Debug, thiserror::Error)]
pub enum AssembleError {
    /// A conditional jump's target is more than 255 instructions ahead.
    #[error("classic BPF jump from {from} to {to} is too far")]
    TooFar {
        /// The jump.
        from: usize,
        /// Its target.
        to: usize,
    },
    /// The program exceeds `BPF_MAXINSNS`.
    #[error("classic BPF program of {0} instructions is over the kernel's 4096")]
    TooLong(usize),
}

impl Asm {
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }

    fn bind(&mut self, label: usize) {
        self.labels[label] = Some(self.insns.len());
    }

    fn op(&mut self, code: u16, k: u32) {
        self.jump(code, k, To::Next, To::Next);
    }

    fn jump(&mut self, code: u16, k: u32, jt: To, jf: To) {
        self.insns.push(Insn { code, jt, jf, k });
    }

    fn finish(self) -> Result<Vec<SockFilter>, AssembleError> {
        if self.insns.len() > MAX_INSNS {
            return Err(AssembleError::TooLong(self.insns.len()));
        }
        let at = |to: To, i: usize| -> usize {
            match to {
                To::Next => i + 1,
                // Every label used is bound by the builders below.
                To::Label(l) => self.labels[l].unwrap_or(usize::MAX),
            }
        };
        let mut out = Vec::with_capacity(self.insns.len());
        for (i, insn) in self.insns.iter().enumerate() {
            if insn.code == JA {
                let to = at(insn.jt, i);
                let k = u32::try_from(to - (i + 1))
                    .map_err(|_| AssembleError::TooFar { from: i, to })?;
                out.push(SockFilter::new(JA, 0, 0, k));
                continue;
            }
            let rel = |to: To| -> Result<u8, AssembleError> {
                let to = at(to, i);
                to.checked_sub(i + 1)
                    .and_then(|d| u8::try_from(d).ok())
                    .ok_or(AssembleError::TooFar { from: i, to })
            };
            out.push(SockFilter::new(
                insn.code,
                rel(insn.jt)?,
                rel(insn.jf)?,
                insn.k,
            ));
        }
        Ok(out)
    }

    /// The two exits every program ends with.
    fn exits(&mut self, pass: usize, drop: usize) {
        self.bind(drop);
        self.op(RET_K, 0);
        self.bind(pass);
        self.op(RET_K, KEEP);
    }
}

/// How many scan steps share one pair of trampolines: each step is 6 instructions, and a
/// conditional jump reaches 255 ahead.
const STEPS_PER_GROUP: usize = 40;

/// `classify_request` in classic BPF: RRQ or WRQ, at least 4 bytes, the last byte a NUL and
/// another NUL within `REQUEST_SCAN_LIMIT` bytes before it (never in the opcode).
pub fn listener_program() -> Result<Vec<SockFilter>, AssembleError> {
    requests_and(None)
}

/// `classify_transfer` in classic BPF: an ACK of exactly 4 bytes, DATA of at most
/// `max_blksize` bytes, or an ERROR.
pub fn transfer_program(max_blksize: u16) -> Result<Vec<SockFilter>, AssembleError> {
    let mut a = Asm::default();
    let (pass, drop) = (a.label(), a.label());
    load_opcode(&mut a, drop);
    transfer_body(&mut a, max_blksize, pass, drop);
    a.exits(pass, drop);
    a.finish()
}

/// `classify_single_port` in classic BPF: requests by the request rule, everything else by
/// the transfer rule (a listening socket that carries the transfers too).
pub fn single_port_program(max_blksize: u16) -> Result<Vec<SockFilter>, AssembleError> {
    requests_and(Some(max_blksize))
}

/// The request rule for RRQ/WRQ; any other opcode is dropped, or with `transfers` (the block
/// size limit) judged by the transfer rule.
fn requests_and(transfers: Option<u16>) -> Result<Vec<SockFilter>, AssembleError> {
    let mut a = Asm::default();
    let (pass, drop) = (a.label(), a.label());
    let (is_request, early_drop) = (a.label(), a.label());
    load_opcode(&mut a, early_drop);
    a.jump(JEQ_K, 1, To::Label(is_request), To::Next);
    a.jump(JEQ_K, 2, To::Label(is_request), To::Next);
    if let Some(max_blksize) = transfers {
        transfer_body(&mut a, max_blksize, pass, drop);
    }
    // The exits sit past the unrolled scan, out of a conditional jump's reach: the checks
    // before the scan drop through a trampoline of their own.
    a.bind(early_drop);
    a.jump(JA, 0, To::Label(drop), To::Next);
    a.bind(is_request);
    request_body(&mut a, pass, drop);
    a.exits(pass, drop);
    a.finish()
}

/// Drops (via `drop`) anything shorter than a TFTP header; leaves the opcode in A.
fn load_opcode(a: &mut Asm, drop: usize) {
    a.op(LD_W_LEN, 0);
    a.jump(JGE_K, MIN_LEN, To::Next, To::Label(drop));
    a.op(LD_H_ABS, UDP_HEADER_LEN);
}

/// The transfer rule on the opcode in A. Ends in jumps only; its exits go through local
/// trampolines, so `pass` and `drop` may lie anywhere ahead.
fn transfer_body(a: &mut Asm, max_blksize: u16, pass: usize, drop: usize) {
    let (ack, data, near_pass, near_drop) = (a.label(), a.label(), a.label(), a.label());
    a.jump(JEQ_K, 4, To::Label(ack), To::Next);
    a.jump(JEQ_K, 3, To::Label(data), To::Next);
    a.jump(JEQ_K, 5, To::Label(near_pass), To::Label(near_drop));
    a.bind(ack);
    a.op(LD_W_LEN, 0);
    a.jump(JEQ_K, MIN_LEN, To::Label(near_pass), To::Label(near_drop));
    a.bind(data);
    a.op(LD_W_LEN, 0);
    a.jump(
        JGT_K,
        MIN_LEN + u32::from(max_blksize),
        To::Label(near_drop),
        To::Label(near_pass),
    );
    a.bind(near_pass);
    a.jump(JA, 0, To::Label(pass), To::Next);
    a.bind(near_drop);
    a.jump(JA, 0, To::Label(drop), To::Next);
}

/// The request rule after the opcode check: the last byte a NUL, another within the scan.
/// Ends in a jump to `drop`.
fn request_body(a: &mut Asm, pass: usize, drop: usize) {
    let scan = a.label();
    let last_is_nul = a.label();
    // X = offset of the last byte; it must be the NUL that ends the mode or last option.
    a.op(LD_W_LEN, 0);
    a.op(ALU_SUB_K, 1);
    a.op(TAX, 0);
    a.op(LD_B_IND, 0);
    a.jump(JEQ_K, 0, To::Label(last_is_nul), To::Next);
    a.jump(JA, 0, To::Label(drop), To::Next);
    a.bind(last_is_nul);
    a.jump(JA, 0, To::Label(scan), To::Next);
    a.bind(scan);
    // Step back one byte at a time (`back` = 2..=REQUEST_SCAN_LIMIT), never below payload
    // offset 2; a NUL passes. Classic BPF cannot loop, so the scan is unrolled, and the far
    // exits are reached through local trampolines.
    let steps = REQUEST_SCAN_LIMIT - 1;
    let mut done = 0;
    while done < steps {
        let (near_pass, near_drop, next_group) = (a.label(), a.label(), a.label());
        for _ in 0..STEPS_PER_GROUP.min(steps - done) {
            a.op(TXA, 0);
            a.op(ALU_SUB_K, 1);
            a.op(TAX, 0);
            a.jump(JGE_K, UDP_HEADER_LEN + 2, To::Next, To::Label(near_drop));
            a.op(LD_B_IND, 0);
            a.jump(JEQ_K, 0, To::Label(near_pass), To::Next);
            done += 1;
        }
        a.jump(JA, 0, To::Label(next_group), To::Next);
        a.bind(near_pass);
        a.jump(JA, 0, To::Label(pass), To::Next);
        a.bind(near_drop);
        a.jump(JA, 0, To::Label(drop), To::Next);
        a.bind(next_group);
    }
    // No second NUL near the end: a lone field.
    a.jump(JA, 0, To::Label(drop), To::Next);
}
