//! The registry of running groups: which group serves which file from which local address,
//! and which client belongs to which group, so a join or a repeated request finds its group.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc;

use crate::server::admission::Ticket;
use crate::server::request::GroupKey;

/// A group is found by its file and options and by the local address it answers from.
pub(super) type Key = (GroupKey, IpAddr);

/// A client handed to a group: a new member (with its ticket) or one asking again.
#[derive(Debug)]
pub(super) struct Join {
    pub(super) peer: SocketAddr,
    pub(super) accepted: Vec<(&'static str, String)>,
    /// `None` for a member whose request came again (its OACK is resent).
    pub(super) ticket: Option<Ticket>,
}

#[derive(Debug)]
pub(super) struct Entry {
    pub(super) tx: mpsc::UnboundedSender<Join>,
    pub(super) group: (Ipv4Addr, u16),
}

#[derive(Debug, Default)]
pub(super) struct Registry {
    pub(super) groups: HashMap<Key, Entry>,
    pub(super) members: HashMap<SocketAddr, Key>,
}

/// The running groups, shared by listeners and transfer tasks.
#[derive(Debug, Default)]
pub struct Groups(Mutex<Registry>);

impl Groups {
    pub(super) fn lock(&self) -> MutexGuard<'_, Registry> {
        // Each update is a single insert or remove, so a poisoned lock is still consistent.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A request from a member of a group (its OACK was lost, so it asked again) goes to
    /// that group, which answers it again; true when `peer` is such a member.
    pub fn rejoin(&self, peer: SocketAddr) -> bool {
        let r = self.lock();
        let Some(entry) = r.members.get(&peer).and_then(|k| r.groups.get(k)) else {
            return false;
        };
        let join = Join {
            peer,
            accepted: Vec::new(),
            ticket: None,
        };
        entry.tx.send(join).is_ok()
    }
}
