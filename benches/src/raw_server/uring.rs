//! The responder on one io_uring: every transfer keeps a `RECV` queued on its socket, an
//! ACK's completion queues the next DATA's `SEND` and the next `RECV`, and each loop turn
//! hands all of the turn's entries to the kernel in the one `io_uring_enter` that also waits
//! for the next completions. What this engine is worth against [`super::epoll`] is what a
//! shared ring could be worth to a server (issue #5's "third lane").
//!
//! Memory the kernel writes or reads (receive buffers, the listener's message header, the
//! DATA being sent) is on the heap, owned by a slot that is freed only when none of its
//! operations is still in flight; at the end every pending operation is cancelled and its
//! completion awaited, and what the kernel has not let go of within a second is leaked, not
//! freed.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use io_uring::types::{Fd, SubmitArgs, Timespec};
use io_uring::{IoUring, opcode, squeue};
use nix::libc;

use super::{Accepted, Files, RECV_LEN, REQUEST_LEN, Served, Slab, TICK, Transfer, accept};

/// Submission queue entries (the completion queue gets twice as many): room for a storm
/// of a thousand transfers' receives and sends in one turn.
const DEPTH: u32 = 4096;
/// The listener's receive, and its cancellation at the end.
const LISTENER: u64 = u64::MAX;
const LISTENER_CANCEL: u64 = u64::MAX - 1;
/// How long the end waits for the kernel to complete what was cancelled.
const DRAIN: Duration = Duration::from_secs(1);

/// What an operation of a slot was, in the low bits of its `user_data`.
const RECV: u64 = 0;
const SEND: u64 = 1;
const CANCEL: u64 = 2;

fn user_data(slot: usize, kind: u64) -> u64 {
    (slot as u64) << 2 | kind
}

/// A transfer and the memory its operations use.
struct Slot {
    transfer: Transfer,
    recv_buf: Box<[u8; RECV_LEN]>,
    /// Operations queued and not yet completed (the slot lives until this is 0).
    in_flight: u32,
    /// A SEND is in flight: `transfer.out` must not change until it completes.
    sending: bool,
    /// A RECV is in flight.
    receiving: bool,
    /// A datagram that arrived while a SEND was in flight, answered when it completes.
    pending: Option<Vec<u8>>,
    /// Cancelled (idle, the client gone, or the end): no new operations.
    closing: bool,
}

/// The listener's receive: buffer, source address and header, boxed so the kernel's
/// pointers stay put.
struct ListenerRecv {
    buf: [u8; REQUEST_LEN],
    addr: libc::sockaddr_storage,
    iov: libc::iovec,
    msg: libc::msghdr,
}

pub(super) fn serve(listen: UdpSocket, files: &Files, stop: &AtomicBool) -> io::Result<Served> {
    let mut ring = IoUring::new(DEPTH)?;
    // SAFETY: all-zero is a valid sockaddr_storage, iovec and msghdr (null pointers, zero
    // lengths); the pointers are set below, once the box has its final address.
    let mut lrecv: Box<ListenerRecv> = Box::new(unsafe { std::mem::zeroed() });
    lrecv.iov.iov_base = lrecv.buf.as_mut_ptr().cast();
    lrecv.iov.iov_len = REQUEST_LEN;
    lrecv.msg.msg_name = (&raw mut lrecv.addr).cast();
    lrecv.msg.msg_iov = &raw mut lrecv.iov;
    lrecv.msg.msg_iovlen = 1;
    let mut slots: Slab<Slot> = Slab::new();
    let mut served = Served::default();
    let mut listener_armed = false;
    // Whatever ends the loop, nothing is freed while the kernel may still use it.
    let result = run(
        &mut ring,
        &listen,
        files,
        stop,
        (&mut slots, &mut lrecv, &mut listener_armed),
        &mut served,
    );
    finish(&mut ring, slots, lrecv, listener_armed);
    result.map(|()| served)
}

/// The loop: until `stop`, take completions and queue what they call for.
fn run(
    ring: &mut IoUring,
    listen: &UdpSocket,
    files: &Files,
    stop: &AtomicBool,
    (slots, lrecv, listener_armed): (&mut Slab<Slot>, &mut ListenerRecv, &mut bool),
    served: &mut Served,
) -> io::Result<()> {
    let local = listen.local_addr()?.ip();
    arm_listener(ring, listen, lrecv)?;
    *listener_armed = true;
    let mut done: Vec<(u64, i32)> = Vec::new();
    let mut swept = Instant::now();
    let tick = Timespec::from(TICK);
    while !stop.load(Ordering::Relaxed) {
        wait(ring, &tick)?;
        done.clear();
        done.extend(ring.completion().map(|c| (c.user_data(), c.result())));
        let now = Instant::now();
        for &(ud, res) in &done {
            if ud == LISTENER {
                *listener_armed = false;
                if let Ok(len) = usize::try_from(res)
                    && let Some(peer) = source(&lrecv.addr)
                {
                    match accept(&lrecv.buf[..len], peer, local, files) {
                        Accepted::Transfer(t) => start(ring, slots, t, served)?,
                        Accepted::Refused(error) => {
                            let _ = listen.send_to(error, peer);
                        }
                        Accepted::Ignored => {}
                    }
                }
                arm_listener(ring, listen, lrecv)?;
                *listener_armed = true;
                continue;
            }
            let index = (ud >> 2) as usize;
            let Some(slot) = slots.get_mut(index) else {
                continue;
            };
            slot.in_flight -= 1;
            match ud & 3 {
                RECV => received(ring, index, slot, res, now, served)?,
                SEND => {
                    slot.sending = false;
                    if let Some(d) = slot.pending.take()
                        && !slot.closing
                    {
                        answer(ring, index, slot, &d, now, served)?;
                    }
                }
                _ => {}
            }
            if (slot.transfer.done || slot.closing) && slot.in_flight == 0 {
                served.completed += u64::from(slot.transfer.sent == slot.transfer.total);
                slots.remove(index);
            }
        }
        if now.duration_since(swept) > TICK {
            swept = now;
            for index in slots.indices() {
                if let Some(slot) = slots.get_mut(index)
                    && !slot.closing
                    && slot.transfer.idle(now)
                {
                    close(ring, index, slot)?;
                }
            }
        }
    }
    Ok(())
}

/// Submits what is queued and waits up to `tick` for a completion.
fn wait(ring: &mut IoUring, tick: &Timespec) -> io::Result<()> {
    let args = SubmitArgs::new().timespec(tick);
    match ring.submitter().submit_with_args(1, &args) {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ETIME | libc::EINTR | libc::EBUSY)
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Queues `entry`, submitting first when the queue is full.
///
/// # Safety
/// Whatever `entry` points at must stay valid until its completion is reaped.
unsafe fn push(ring: &mut IoUring, entry: &squeue::Entry) -> io::Result<()> {
    loop {
        // SAFETY: the caller keeps the entry's memory valid until its completion.
        if unsafe { ring.submission().push(entry) }.is_ok() {
            return Ok(());
        }
        ring.submit()?;
    }
}

fn arm_listener(ring: &mut IoUring, listen: &UdpSocket, r: &mut ListenerRecv) -> io::Result<()> {
    r.msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let entry = opcode::RecvMsg::new(Fd(listen.as_raw_fd()), &raw mut r.msg)
        .build()
        .user_data(LISTENER);
    // SAFETY: `r` is boxed and outlives the ring's use of it (`finish` waits for, or leaks).
    unsafe { push(ring, &entry) }
}

/// A new transfer: its first datagram and its first receive.
fn start(
    ring: &mut IoUring,
    slots: &mut Slab<Slot>,
    transfer: Transfer,
    served: &mut Served,
) -> io::Result<()> {
    served.blocks_sent += u64::from(transfer.sends_data());
    let index = slots.insert(Slot {
        transfer,
        recv_buf: Box::new([0; RECV_LEN]),
        in_flight: 0,
        sending: false,
        receiving: false,
        pending: None,
        closing: false,
    });
    let Some(slot) = slots.get_mut(index) else {
        return Ok(());
    };
    send(ring, index, slot)?;
    recv(ring, index, slot)
}

fn send(ring: &mut IoUring, index: usize, slot: &mut Slot) -> io::Result<()> {
    let out = &slot.transfer.out;
    let entry = opcode::Send::new(
        Fd(slot.transfer.socket.as_raw_fd()),
        out.as_ptr(),
        out.len() as u32,
    )
    .build()
    .user_data(user_data(index, SEND));
    // SAFETY: `out` is not changed while `sending` (see `received`) and the slot is freed
    // only when nothing is in flight.
    unsafe { push(ring, &entry)? };
    slot.in_flight += 1;
    slot.sending = true;
    Ok(())
}

fn recv(ring: &mut IoUring, index: usize, slot: &mut Slot) -> io::Result<()> {
    let entry = opcode::Recv::new(
        Fd(slot.transfer.socket.as_raw_fd()),
        slot.recv_buf.as_mut_ptr(),
        RECV_LEN as u32,
    )
    .build()
    .user_data(user_data(index, RECV));
    // SAFETY: the buffer is boxed in the slot, which lives until its completion.
    unsafe { push(ring, &entry)? };
    slot.in_flight += 1;
    slot.receiving = true;
    Ok(())
}

/// A receive completed: answer it (after the SEND in flight, if any), and receive again
/// unless the transfer is over.
fn received(
    ring: &mut IoUring,
    index: usize,
    slot: &mut Slot,
    res: i32,
    now: Instant,
    served: &mut Served,
) -> io::Result<()> {
    slot.receiving = false;
    let Ok(len) = usize::try_from(res) else {
        // Cancelled, or the client's port is gone (ECONNREFUSED): the transfer ends.
        slot.closing = true;
        return Ok(());
    };
    if slot.closing {
        return Ok(());
    }
    let datagram = slot.recv_buf[..len].to_vec();
    if slot.sending {
        slot.pending = Some(datagram);
    } else {
        answer(ring, index, slot, &datagram, now, served)?;
    }
    if !slot.transfer.done && !slot.receiving {
        recv(ring, index, slot)?;
    }
    Ok(())
}

/// Hands a client's datagram to the transfer and sends what it answers; a transfer that is
/// over has its receive cancelled.
fn answer(
    ring: &mut IoUring,
    index: usize,
    slot: &mut Slot,
    datagram: &[u8],
    now: Instant,
    served: &mut Served,
) -> io::Result<()> {
    if slot.transfer.on_datagram(datagram, now) {
        served.blocks_sent += 1;
        send(ring, index, slot)?;
    }
    if slot.transfer.done && slot.receiving {
        close(ring, index, slot)?;
    }
    Ok(())
}

/// Cancels `slot`'s receive; the slot is freed when its operations have completed.
fn close(ring: &mut IoUring, index: usize, slot: &mut Slot) -> io::Result<()> {
    slot.closing = true;
    let entry = opcode::AsyncCancel::new(user_data(index, RECV))
        .build()
        .user_data(user_data(index, CANCEL));
    // SAFETY: a cancellation points at no memory.
    unsafe { push(ring, &entry)? };
    slot.in_flight += 1;
    Ok(())
}

/// The end: cancels everything in flight and waits for it; leaks what the kernel keeps.
fn finish(
    ring: &mut IoUring,
    mut slots: Slab<Slot>,
    lrecv: Box<ListenerRecv>,
    mut listener_armed: bool,
) {
    if listener_armed {
        let entry = opcode::AsyncCancel::new(LISTENER)
            .build()
            .user_data(LISTENER_CANCEL);
        // SAFETY: a cancellation points at no memory.
        let _ = unsafe { push(ring, &entry) };
    }
    for index in slots.indices() {
        if let Some(slot) = slots.get_mut(index)
            && slot.receiving
            && !slot.closing
        {
            let _ = close(ring, index, slot);
        }
    }
    let deadline = Instant::now() + DRAIN;
    let tick = Timespec::from(Duration::from_millis(10));
    let busy = |slots: &mut Slab<Slot>| {
        slots
            .indices()
            .into_iter()
            .any(|i| slots.get_mut(i).is_some_and(|s| s.in_flight > 0))
    };
    while (listener_armed || busy(&mut slots)) && Instant::now() < deadline {
        let _ = wait(ring, &tick);
        let done: Vec<u64> = ring.completion().map(|c| c.user_data()).collect();
        for ud in done {
            if ud == LISTENER {
                listener_armed = false;
            } else if ud != LISTENER_CANCEL
                && let Some(slot) = slots.get_mut((ud >> 2) as usize)
            {
                slot.in_flight = slot.in_flight.saturating_sub(1);
            }
        }
    }
    if listener_armed || busy(&mut slots) {
        // The kernel may still write into these: never free them.
        std::mem::forget(slots);
        std::mem::forget(lrecv);
    }
}

/// The source address the listener's receive wrote (the daemon's own decoding).
fn source(addr: &libc::sockaddr_storage) -> Option<SocketAddr> {
    tftpd::fastpath::mmsg::peer(addr, size_of::<libc::sockaddr_storage>() as libc::socklen_t)
}
