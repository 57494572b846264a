//! The responder on level-triggered `epoll`: per block a `recv` of the ACK and a `send` of
//! the DATA, one `epoll_wait` for whatever is ready, as a C server's loop does.

use std::io;
use std::net::UdpSocket;
use std::os::fd::AsFd as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

use super::{Accepted, Files, RECV_LEN, REQUEST_LEN, Served, Slab, TICK, Transfer, accept};

/// The listening socket's token; transfers use their slot.
const LISTENER: u64 = u64::MAX;

pub(super) fn serve(listen: UdpSocket, files: &Files, stop: &AtomicBool) -> io::Result<Served> {
    listen.set_nonblocking(true)?;
    let local = listen.local_addr()?.ip();
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    epoll.add(
        listen.as_fd(),
        EpollEvent::new(EpollFlags::EPOLLIN, LISTENER),
    )?;
    let mut transfers: Slab<Transfer> = Slab::new();
    let mut served = Served::default();
    let mut events = vec![EpollEvent::empty(); 256];
    let mut request = [0u8; REQUEST_LEN];
    let mut ack = [0u8; RECV_LEN];
    let tick = EpollTimeout::try_from(TICK).map_err(io::Error::other)?;
    let mut swept = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let n = match epoll.wait(&mut events, tick) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => 0,
            Err(e) => return Err(e.into()),
        };
        let now = Instant::now();
        for event in &events[..n] {
            if event.data() == LISTENER {
                while let Ok((len, peer)) = listen.recv_from(&mut request) {
                    match accept(&request[..len], peer, local, files) {
                        Accepted::Transfer(t) => {
                            let _ = t.socket.send(&t.out);
                            served.blocks_sent += u64::from(t.sends_data());
                            let slot = transfers.insert(t);
                            if let Some(t) = transfers.get_mut(slot) {
                                let interest = EpollEvent::new(EpollFlags::EPOLLIN, slot as u64);
                                epoll.add(t.socket.as_fd(), interest)?;
                            }
                        }
                        Accepted::Refused(error) => {
                            let _ = listen.send_to(error, peer);
                        }
                        Accepted::Ignored => {}
                    }
                }
                continue;
            }
            let slot = event.data() as usize;
            let Some(t) = transfers.get_mut(slot) else {
                continue;
            };
            let Ok(len) = t.socket.recv(&mut ack) else {
                continue;
            };
            if t.on_datagram(&ack[..len], now) {
                let _ = t.socket.send(&t.out);
                served.blocks_sent += 1;
            }
            if t.done {
                served.completed += u64::from(t.sent == t.total);
                transfers.remove(slot);
            }
        }
        if now.duration_since(swept) > TICK {
            swept = now;
            for slot in transfers.indices() {
                if transfers.get_mut(slot).is_some_and(|t| t.idle(now)) {
                    transfers.remove(slot);
                }
            }
        }
    }
    Ok(served)
}
