//! Requests held while every transfer place is taken (`limits.max_queued`,
//! `limits.max_queue_wait_ms`), one queue per listening socket.
//!
//! An ERROR "server busy" makes PXE firmware give up and boot the next device, so a request
//! that finds no place is not refused: it waits here, oldest first, and starts as soon as a
//! place comes free (`Admission::freed`). A request held too long, or one that finds the
//! queue full, is dropped without an answer; the client's own retry brings it back. A retry
//! of a held request is a duplicate and changes nothing.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::metrics::Kind;

use super::request::OwnedRequest;

/// A request that passed every check and waits for a place.
#[derive(Debug)]
pub(super) struct Held {
    /// The request.
    pub(super) req: OwnedRequest,
    /// Its client.
    pub(super) peer: SocketAddr,
    /// The address it was sent to (the transfer socket binds there).
    pub(super) local: SocketAddr,
    /// When it arrived.
    pub(super) at: Instant,
}

/// One listener's held requests, oldest first.
#[derive(Debug, Default)]
pub(super) struct Deferred {
    queue: VecDeque<Held>,
    peers: HashSet<SocketAddr>,
}

impl Deferred {
    /// True when nothing is held.
    pub(super) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Requests held.
    pub(super) fn len(&self) -> usize {
        self.queue.len()
    }

    /// True when a request from `peer` is held.
    pub(super) fn holds(&self, peer: SocketAddr) -> bool {
        self.peers.contains(&peer)
    }

    /// Holds `h` behind the others; false (and `h` dropped) when `max` are held already.
    pub(super) fn push(&mut self, h: Held, max: usize) -> bool {
        if self.queue.len() >= max {
            return false;
        }
        self.peers.insert(h.peer);
        self.queue.push_back(h);
        true
    }

    /// The oldest held request.
    pub(super) fn pop(&mut self) -> Option<Held> {
        let h = self.queue.pop_front()?;
        self.peers.remove(&h.peer);
        Some(h)
    }

    /// Puts back a request just popped that still found no place.
    pub(super) fn unpop(&mut self, h: Held) {
        self.peers.insert(h.peer);
        self.queue.push_front(h);
    }

    /// Drops the requests held longer than `wait`; returns how many of each kind.
    pub(super) fn expire(&mut self, now: Instant, wait: Duration) -> [(Kind, u64); 2] {
        let mut expired = [(Kind::Read, 0), (Kind::Write, 0)];
        while self
            .queue
            .front()
            .is_some_and(|h| now.saturating_duration_since(h.at) >= wait)
        {
            if let Some(h) = self.pop() {
                let i = usize::from(h.req.kind == Kind::Write);
                expired[i].1 += 1;
            }
        }
        expired
    }

    /// When the oldest held request expires.
    pub(super) fn next_expiry(&self, wait: Duration) -> Option<Instant> {
        self.queue.front().map(|h| h.at + wait)
    }

    /// Drops everything held (the drain began); returns how many.
    pub(super) fn clear(&mut self) -> usize {
        let n = self.queue.len();
        self.queue.clear();
        self.peers.clear();
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(port: u16, at: Instant) -> Held {
        Held {
            req: OwnedRequest {
                kind: Kind::Read,
                filename: b"f".to_vec(),
                mode: b"octet".to_vec(),
                options: Vec::new(),
            },
            peer: SocketAddr::from(([192, 0, 2, 1], port)),
            local: SocketAddr::from(([192, 0, 2, 254], 69)),
            at,
        }
    }

    #[test]
    fn requests_wait_oldest_first_up_to_the_limit() {
        let t0 = Instant::now();
        let mut d = Deferred::default();
        assert!(d.push(held(1, t0), 2), "room");
        assert!(d.push(held(2, t0), 2), "room");
        assert!(!d.push(held(3, t0), 2), "full: dropped");
        assert!(d.holds(SocketAddr::from(([192, 0, 2, 1], 1))));
        let first = d.pop().expect("one held");
        assert_eq!(first.peer.port(), 1, "oldest first");
        assert!(!d.holds(first.peer));
        d.unpop(first);
        assert_eq!(d.pop().map(|h| h.peer.port()), Some(1), "put back in front");
    }

    #[test]
    fn requests_held_too_long_are_dropped() {
        let t0 = Instant::now();
        let wait = Duration::from_secs(5);
        let mut d = Deferred::default();
        assert!(d.push(held(1, t0), 10), "room");
        assert!(d.push(held(2, t0 + Duration::from_secs(3)), 10), "room");
        assert_eq!(d.next_expiry(wait), Some(t0 + wait));
        let gone = d.expire(t0 + Duration::from_secs(6), wait);
        assert_eq!(gone[0], (Kind::Read, 1), "the first waited 6 s");
        assert_eq!(d.len(), 1, "the second waited 3 s");
        assert_eq!(d.clear(), 1);
        assert!(d.is_empty());
    }
}
