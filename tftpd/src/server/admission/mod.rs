//! Admission of new transfers, in two pools, the way a TCP stack keeps half-open
//! connections apart from established ones.
//!
//! A transfer is *half-open* from its admission until the peer answers its first datagram
//! (see [`crate::proto::HalfOpen`]); then it is *confirmed*. Any request may come from a
//! forged source, so half-open transfers live in a bounded pool of their own: when it is
//! full, its oldest entry (once it has had a fair chance to be answered) is evicted rather
//! than a new request refused, so a flood of forged requests can never lock real clients
//! out. Confirmed transfers cannot be forged (the peer had to see the server's datagram) and
//! are the ones the per-client limit counts. `limits.max_transfers` bounds both pools
//! together; when it is reached by confirmed transfers, a new request is deferred (the
//! listener queues it, [`super::deferred`]) instead of being refused.
//!
//! One transfer per client TID: a retransmitted request never starts a second one. A
//! [`Ticket`] holds the place and gives it back when dropped, however the transfer ends;
//! what was sent to a half-open peer is charged to its prefix's reflection budget
//! ([`budget`]) and given back when the peer answers.

pub mod budget;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::io::alarms::{AbortSignal, Evictor};
use crate::io::socket::canonical_ip;

use self::budget::{Budget, BudgetLimits};

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A transfer with this client address and port is already running.
    Duplicate,
    /// No place now: every place is taken by confirmed transfers or by half-open ones too
    /// young to evict. The request is deferred, not refused.
    Full,
    /// `limits.max_transfers_per_client` confirmed transfers from this address are running.
    ClientLimit,
}

/// The limits a request is admitted under (from the configuration in force).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Transfers in all, half-open and confirmed (`limits.max_transfers`).
    pub max_total: usize,
    /// Confirmed transfers per client address (`limits.max_transfers_per_client`).
    pub max_per_client: usize,
    /// Half-open transfers (`limits.max_half_open`).
    pub max_half_open: usize,
    /// How long a half-open transfer is safe from eviction: a real client's answer can take
    /// a moment under load, so a burst of real requests larger than the pool waits its turn
    /// instead of evicting its own members.
    pub min_age: Duration,
    /// The reflection budget.
    pub budget: BudgetLimits,
}

/// Where one admission stands.
#[derive(Debug)]
enum Stage {
    /// Admitted, no answer yet.
    HalfOpen {
        evictor: Evictor,
        /// Bytes sent to the peer so far, charged to its prefix.
        spent: u64,
        /// It has sent all it may and only waits: a new request from the same TID (the
        /// client asking again, having heard nothing) replaces it.
        quiet: bool,
    },
    /// Evicted from the half-open pool; ending.
    Evicted,
    /// The peer answered.
    Confirmed,
}

/// A peer's place: which admission holds it (a later one of the same TID has another
/// `seq`, so the earlier ticket's drop leaves it alone) and how far it is.
#[derive(Debug)]
struct Place {
    seq: u64,
    stage: Stage,
}

#[derive(Debug, Default)]
struct State {
    places: HashMap<SocketAddr, Place>,
    /// Confirmed transfers per client address.
    per_ip: HashMap<IpAddr, usize>,
    confirmed: usize,
    half_open: usize,
    /// Half-open admissions, oldest first; entries whose place has since moved on are
    /// skipped when met.
    order: VecDeque<(u64, SocketAddr, Instant)>,
    next_seq: u64,
    budget: Budget,
}

impl State {
    /// True while `peer`'s place is admission `seq`, still half-open.
    fn is_half_open(&self, peer: SocketAddr, seq: u64) -> bool {
        matches!(self.places.get(&peer), Some(p) if p.seq == seq && matches!(p.stage, Stage::HalfOpen { .. }))
    }

    /// Drops the entries at the front of `order` whose transfer is no longer half-open, so
    /// the queue holds about as many entries as admissions within the oldest half-open
    /// transfer's lifetime (a few timeouts).
    fn trim_order(&mut self) {
        while let Some(&(seq, peer, _)) = self.order.front() {
            if self.is_half_open(peer, seq) {
                return;
            }
            self.order.pop_front();
        }
    }

    /// Ends `peer`'s half-open transfer: raises its evictor, and frees its place in the
    /// pool. Its ticket still holds the TID until it drops.
    fn evict(&mut self, peer: SocketAddr) {
        if let Some(p) = self.places.get_mut(&peer)
            && let Stage::HalfOpen { evictor, .. } = std::mem::replace(&mut p.stage, Stage::Evicted)
        {
            evictor.raise();
            self.half_open -= 1;
        }
    }

    /// Evicts the oldest half-open transfer admitted before `now - min_age`.
    fn evict_oldest(&mut self, now: Instant, min_age: Duration) -> bool {
        self.trim_order();
        let Some(&(_, peer, at)) = self.order.front() else {
            return false;
        };
        if now.saturating_duration_since(at) < min_age {
            return false;
        }
        self.order.pop_front();
        self.evict(peer);
        true
    }
}

/// Every running transfer, shared by the listeners.
#[derive(Debug, Default)]
pub struct Admission {
    state: Mutex<State>,
    /// Woken when a place may have come free (a transfer ended, or a half-open one was
    /// confirmed), for listeners holding deferred requests.
    freed: Notify,
}

impl Admission {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave it inconsistent enough to matter
        // (each update is a few counters and one map entry), so a poisoned lock is still
        // usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a transfer for `peer` as half-open, evicting the oldest half-open one if that
    /// is what it takes, or says why not. A request from the TID of a quiet half-open
    /// transfer (its client heard nothing and asks again) replaces that transfer. `drain` is
    /// the signal every transfer ends on; the ticket's own signal is raised by it or by an
    /// eviction.
    pub fn admit(
        self: &Arc<Self>,
        peer: SocketAddr,
        now: Instant,
        limits: &Limits,
        drain: &AbortSignal,
    ) -> Result<Ticket, Refusal> {
        let mut s = self.lock();
        match s.places.get(&peer).map(|p| &p.stage) {
            None => {}
            Some(Stage::HalfOpen { quiet: true, .. }) => s.evict(peer),
            Some(_) => return Err(Refusal::Duplicate),
        }
        let ip = canonical_ip(peer);
        if s.per_ip.get(&ip).copied().unwrap_or(0) >= limits.max_per_client {
            return Err(Refusal::ClientLimit);
        }
        s.trim_order();
        let room = s.confirmed + s.half_open < limits.max_total
            && s.half_open < limits.max_half_open.max(1);
        if !room && !s.evict_oldest(now, limits.min_age) {
            return Err(Refusal::Full);
        }
        let seq = s.next_seq;
        s.next_seq += 1;
        let (signal, evictor) = drain.for_transfer();
        s.places.insert(
            peer,
            Place {
                seq,
                stage: Stage::HalfOpen {
                    evictor: evictor.clone(),
                    spent: 0,
                    quiet: false,
                },
            },
        );
        s.half_open += 1;
        s.order.push_back((seq, peer, now));
        Ok(Ticket {
            admission: self.clone(),
            peer,
            seq,
            signal,
            evictor,
            limits: *limits,
            confirmed: false,
        })
    }

    /// Transfers running now, half-open and confirmed (evicted ones still ending excluded).
    pub fn running(&self) -> usize {
        let s = self.lock();
        s.confirmed + s.half_open
    }

    /// Half-open transfers now.
    pub fn half_open(&self) -> usize {
        self.lock().half_open
    }

    /// Completes when a place may have come free. Create it (and `enable` it) before
    /// trying to admit, so a place freed in between is not missed.
    pub fn freed(&self) -> tokio::sync::futures::Notified<'_> {
        self.freed.notified()
    }

    fn release(&self, peer: SocketAddr, seq: u64) {
        {
            let mut s = self.lock();
            if s.places.get(&peer).is_some_and(|p| p.seq == seq) {
                match s.places.remove(&peer).map(|p| p.stage) {
                    Some(Stage::HalfOpen { .. }) => s.half_open -= 1,
                    Some(Stage::Confirmed) => {
                        s.confirmed -= 1;
                        let ip = canonical_ip(peer);
                        if let Some(n) = s.per_ip.get_mut(&ip) {
                            *n -= 1;
                            if *n == 0 {
                                s.per_ip.remove(&ip);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        self.freed.notify_waiters();
    }
}

/// A transfer's place; released on drop.
#[derive(Debug)]
pub struct Ticket {
    admission: Arc<Admission>,
    peer: SocketAddr,
    seq: u64,
    signal: AbortSignal,
    evictor: Evictor,
    limits: Limits,
    confirmed: bool,
}

impl Ticket {
    /// The signal the transfer's waits end on: the drain, or its eviction.
    pub fn signal(&self) -> &AbortSignal {
        &self.signal
    }

    /// True once the transfer was evicted from the half-open pool.
    pub fn is_evicted(&self) -> bool {
        self.evictor.is_raised()
    }

    /// True once [`confirm`](Self::confirm) has succeeded.
    pub fn is_confirmed(&self) -> bool {
        self.confirmed
    }

    /// The half-open transfer has sent all it may and only waits for an answer: a new
    /// request from its TID may replace it.
    pub fn mark_quiet(&self) {
        let mut s = self.admission.lock();
        if let Some(p) = s.places.get_mut(&self.peer)
            && p.seq == self.seq
            && let Stage::HalfOpen { quiet, .. } = &mut p.stage
        {
            *quiet = true;
        }
    }

    /// Moves the transfer to the confirmed pool (its peer answered) and gives back what was
    /// spent on it to its prefix's budget. Refused when it was evicted meanwhile
    /// ([`Refusal::Full`]: it is ending) or when its address already has
    /// `max_per_client` confirmed transfers ([`Refusal::ClientLimit`]).
    pub fn confirm(&mut self, now: Instant) -> Result<(), Refusal> {
        if self.confirmed {
            return Ok(());
        }
        let a = self.admission.clone();
        {
            let mut s = a.lock();
            let spent = match s.places.get(&self.peer) {
                Some(Place {
                    seq,
                    stage: Stage::HalfOpen { spent, .. },
                }) if *seq == self.seq => *spent,
                _ => return Err(Refusal::Full),
            };
            let ip = canonical_ip(self.peer);
            let count = s.per_ip.get(&ip).copied().unwrap_or(0);
            if count >= self.limits.max_per_client {
                return Err(Refusal::ClientLimit);
            }
            s.per_ip.insert(ip, count + 1);
            if let Some(p) = s.places.get_mut(&self.peer) {
                p.stage = Stage::Confirmed;
            }
            s.half_open -= 1;
            s.confirmed += 1;
            let prefix = self.limits.budget.prefix_of(ip);
            s.budget.refund(prefix, spent, now, &self.limits.budget);
        }
        self.confirmed = true;
        a.freed.notify_waiters();
        Ok(())
    }

    /// Charges `bytes` about to be sent to the (still half-open) peer to its prefix's
    /// budget; false when the budget cannot pay them, and the datagrams must not be sent.
    /// A confirmed transfer is never charged.
    pub fn charge(&self, bytes: u64, now: Instant) -> bool {
        if self.confirmed {
            return true;
        }
        let mut s = self.admission.lock();
        let prefix = self.limits.budget.prefix_of(canonical_ip(self.peer));
        let State { places, budget, .. } = &mut *s;
        match places.get_mut(&self.peer) {
            Some(Place {
                seq,
                stage: Stage::HalfOpen { spent, .. },
            }) if *seq == self.seq && budget.spend(prefix, bytes, now, &self.limits.budget) => {
                *spent += bytes;
                true
            }
            // The budget is spent, or the transfer was evicted and is ending.
            _ => false,
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.admission.release(self.peer, self.seq);
    }
}

#[cfg(test)]
mod tests;
