//! The raw ceiling: what this machine can move over loopback with TFTP's traffic shape and
//! no TFTP server at all, so a server's figure can be stated as a fraction of it.
//!
//! A responder thread answers each ACK with the next window of "blocks" (a DATA header and
//! `blksize` zero bytes; the last one short), keeping only the index of the last ACK; the
//! calling thread receives in order and ACKs each window, exactly as a download does.
//! Blocking std sockets, no runtime, no files, no options, no verification beyond order.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use tftpd::proto::packet::{DATA_HEADER_LEN, OP_DATA, OP_ERROR, ack, data_header};

use crate::blocks::{Position, acked_index, position, wire};
use crate::load::LoadError;
use crate::report::throughput;

/// How long the receiver waits before it ACKs again (a datagram lost on loopback: a full
/// socket buffer).
const RESEND_AFTER: Duration = Duration::from_millis(200);
/// How long the responder waits for an ACK before it gives up (the receiver has gone).
const RESPONDER_IDLE: Duration = Duration::from_secs(5);

/// One ceiling measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CeilingSpec {
    /// Payload bytes per block.
    pub blksize: u16,
    /// Blocks per ACK (1: lock-step).
    pub windowsize: u16,
    /// Payload bytes to move.
    pub bytes: u64,
}

/// What the ceiling run measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CeilingReport {
    /// Payload bytes per block.
    pub blksize: u16,
    /// Blocks per ACK.
    pub windowsize: u16,
    /// Payload bytes received in order.
    pub bytes: u64,
    /// Blocks received in order.
    pub blocks: u64,
    /// From the first ACK to the last block, seconds.
    pub wall_secs: f64,
    /// Payload MB (10^6 bytes) per second.
    pub mb_per_s: f64,
    /// Payload MiB (2^20 bytes) per second.
    pub mib_per_s: f64,
    /// Blocks per second.
    pub blocks_per_s: f64,
    /// ACKs sent again after [`RESEND_AFTER`] without a block.
    pub resent_acks: u64,
}

impl std::fmt::Display for CeilingReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "raw ceiling, blksize {} windowsize {}: {} bytes ({} blocks) in {:.3} s",
            self.blksize, self.windowsize, self.bytes, self.blocks, self.wall_secs
        )?;
        writeln!(
            f,
            "{:.2} MB/s ({:.2} MiB/s), {:.0} blocks/s, {} ACKs resent",
            self.mb_per_s, self.mib_per_s, self.blocks_per_s, self.resent_acks
        )
    }
}

/// Runs the responder and the receiver on loopback and measures.
pub fn ceiling(spec: &CeilingSpec) -> Result<CeilingReport, LoadError> {
    let io_err = |what| move |source| LoadError::Ceiling { what, source };
    let blksize = spec.blksize.max(1);
    let windowsize = spec.windowsize.max(1);
    let total = spec.bytes / u64::from(blksize) + 1;
    let responder = UdpSocket::bind("127.0.0.1:0").map_err(io_err("binding the responder"))?;
    let receiver = UdpSocket::bind("127.0.0.1:0").map_err(io_err("binding the receiver"))?;
    tftpd::io::buffers::apply(&receiver, crate::link::RECV_BUFFER, 0)
        .map_err(io_err("sizing the receiver's buffer"))?;
    let responder_addr = responder
        .local_addr()
        .map_err(io_err("responder address"))?;
    receiver
        .connect(responder_addr)
        .map_err(io_err("connecting the receiver"))?;
    receiver
        .set_read_timeout(Some(RESEND_AFTER))
        .map_err(io_err("setting the receive timeout"))?;
    let (bytes, window) = (spec.bytes, windowsize);
    let thread = std::thread::Builder::new()
        .name("ceiling-responder".into())
        .spawn(move || respond(&responder, blksize, window, bytes, total))
        .map_err(io_err("starting the responder thread"))?;
    let received = receive(&receiver, blksize, windowsize);
    // Tell the responder to stop whatever happened, then collect it.
    let _ = receiver.send(&[0, OP_ERROR as u8, 0, 0, 0]);
    let responded = thread
        .join()
        .map_err(|_| io_err("the responder thread")(io::Error::other("panicked")))?;
    responded.map_err(io_err("responding"))?;
    let (bytes, blocks, resent_acks, wall) = received.map_err(io_err("receiving"))?;
    let (mb_per_s, mib_per_s) = throughput(bytes, wall);
    let secs = wall.as_secs_f64();
    Ok(CeilingReport {
        blksize,
        windowsize,
        bytes,
        blocks,
        wall_secs: secs,
        mb_per_s,
        mib_per_s,
        blocks_per_s: if secs > 0.0 {
            blocks as f64 / secs
        } else {
            0.0
        },
        resent_acks,
    })
}

/// The responder: each ACK of something new (or a repeated one: a lost window) is answered
/// with the `window` blocks after it.
fn respond(
    socket: &UdpSocket,
    blksize: u16,
    window: u16,
    bytes: u64,
    total: u64,
) -> io::Result<()> {
    socket.set_read_timeout(Some(RESPONDER_IDLE))?;
    let mut out = vec![0u8; DATA_HEADER_LEN + usize::from(blksize)];
    let mut rx = [0u8; 16];
    let mut acked = 0u64;
    let mut sent = 0u64;
    loop {
        let (n, peer): (usize, SocketAddr) = socket.recv_from(&mut rx)?;
        if n >= 2 && rx[..2] == OP_ERROR.to_be_bytes() {
            return Ok(());
        }
        if n != 4 {
            continue;
        }
        let block = u16::from_be_bytes([rx[2], rx[3]]);
        if block == wire(acked) && sent > acked {
            // The same ACK again: the receiver lost part of the window.
        } else if let Some(index) = acked_index(block, acked, sent.max(acked)) {
            acked = index;
        } else if !(acked == 0 && block == 0) {
            continue;
        }
        let last = (acked + u64::from(window)).min(total);
        for index in acked + 1..=last {
            let len = u64::from(blksize).min(bytes - (index - 1) * u64::from(blksize)) as usize;
            out[..DATA_HEADER_LEN].copy_from_slice(&data_header(wire(index)));
            socket.send_to(&out[..DATA_HEADER_LEN + len], peer)?;
        }
        sent = sent.max(last);
    }
}

/// The receiver: returns (bytes, blocks, resent ACKs, wall time).
fn receive(socket: &UdpSocket, blksize: u16, window: u16) -> io::Result<(u64, u64, u64, Duration)> {
    let mut rx = vec![0u8; DATA_HEADER_LEN + usize::from(blksize) + 1];
    let (mut next, mut bytes, mut resent, mut in_window) = (1u64, 0u64, 0u64, 0u16);
    let mut idle_since = Instant::now();
    let started = Instant::now();
    socket.send(&ack(0))?;
    loop {
        let n = match socket.recv(&mut rx) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if idle_since.elapsed() > RESPONDER_IDLE {
                    return Err(e);
                }
                socket.send(&ack(wire(next - 1)))?;
                resent += 1;
                in_window = 0;
                continue;
            }
            Err(e) => return Err(e),
        };
        if n < DATA_HEADER_LEN || rx[..2] != OP_DATA.to_be_bytes() {
            continue;
        }
        let block = u16::from_be_bytes([rx[2], rx[3]]);
        if position(block, next) != Position::Expected {
            continue;
        }
        idle_since = Instant::now();
        let len = n - DATA_HEADER_LEN;
        bytes += len as u64;
        next += 1;
        in_window += 1;
        let last = len < usize::from(blksize);
        if last || in_window >= window {
            socket.send(&ack(block))?;
            in_window = 0;
        }
        if last {
            return Ok((bytes, next - 1, resent, started.elapsed()));
        }
    }
}
