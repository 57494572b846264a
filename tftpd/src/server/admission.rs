//! Admission of new transfers: one transfer per client TID (a retransmitted request must not
//! start a second one), a global limit and a per-client-address limit. A [`Ticket`] holds the
//! place and gives it back when dropped, however the transfer ends.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::io::socket::canonical_ip;

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A transfer with this client address and port is already running.
    Duplicate,
    /// `limits.max_transfers` transfers are running.
    GlobalLimit,
    /// `limits.max_transfers_per_client` transfers from this address are running.
    ClientLimit,
}

#[derive(Debug, Default)]
struct State {
    peers: HashSet<SocketAddr>,
    per_ip: HashMap<IpAddr, usize>,
}

/// The set of running transfers, shared by the listeners.
#[derive(Debug, Default)]
pub struct Admission {
    state: Mutex<State>,
}

impl Admission {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave it inconsistent (each update is a
        // single insert or remove), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a transfer for `peer`, or says why not.
    pub fn admit(
        self: &Arc<Self>,
        peer: SocketAddr,
        max_total: usize,
        max_per_client: usize,
    ) -> Result<Ticket, Refusal> {
        let mut s = self.lock();
        if s.peers.contains(&peer) {
            return Err(Refusal::Duplicate);
        }
        if s.peers.len() >= max_total {
            return Err(Refusal::GlobalLimit);
        }
        let ip = canonical_ip(peer);
        let count = s.per_ip.get(&ip).copied().unwrap_or(0);
        if count >= max_per_client {
            return Err(Refusal::ClientLimit);
        }
        s.per_ip.insert(ip, count + 1);
        s.peers.insert(peer);
        Ok(Ticket {
            admission: self.clone(),
            peer,
        })
    }

    /// Transfers running now.
    pub fn running(&self) -> usize {
        self.lock().peers.len()
    }
}

/// A running transfer's place; released on drop.
#[derive(Debug)]
pub struct Ticket {
    admission: Arc<Admission>,
    peer: SocketAddr,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut s = self.admission.lock();
        s.peers.remove(&self.peer);
        let ip = canonical_ip(self.peer);
        if let Some(n) = s.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                s.per_ip.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn same_tid_is_a_duplicate_until_the_ticket_drops() {
        let a = Arc::new(Admission::default());
        let t = a.admit(addr("10.0.0.1:1000"), 10, 10).expect("first admit");
        assert_eq!(
            a.admit(addr("10.0.0.1:1000"), 10, 10).err(),
            Some(Refusal::Duplicate),
            "a retransmitted request must not start a second transfer"
        );
        drop(t);
        assert!(
            a.admit(addr("10.0.0.1:1000"), 10, 10).is_ok(),
            "released on drop"
        );
    }

    #[test]
    fn limits_are_enforced_per_client_and_globally() {
        let a = Arc::new(Admission::default());
        let _t1 = a.admit(addr("10.0.0.1:1"), 3, 2).expect("1");
        let _t2 = a.admit(addr("10.0.0.1:2"), 3, 2).expect("2");
        assert_eq!(
            a.admit(addr("10.0.0.1:3"), 3, 2).err(),
            Some(Refusal::ClientLimit)
        );
        // The same client over IPv6 v4-mapped is the same client.
        assert_eq!(
            a.admit(addr("[::ffff:10.0.0.1]:4"), 3, 2).err(),
            Some(Refusal::ClientLimit),
            "v4-mapped addresses count as the same client"
        );
        let _t3 = a.admit(addr("10.0.0.2:1"), 3, 2).expect("3");
        assert_eq!(
            a.admit(addr("10.0.0.3:1"), 3, 2).err(),
            Some(Refusal::GlobalLimit)
        );
        assert_eq!(a.running(), 3);
    }
}
