//! RFC 2090 groups in the shell: the registry through which a request joins the group
//! already serving its file, and the loop that drives one group (`proto::multicast`) on its
//! socket. The group runs inside the task of the request that started it; later requests
//! hand their client (and its admission ticket) over and end.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::filter::{self, FilterCounters, Role};
use crate::io::datagram::{DatagramIo, SendReport};
use crate::io::file::BlockSource;
use crate::metrics::{ActiveGuard, DropReason, Kind};
use crate::proto::Outcome;
use crate::proto::multicast::{Destination, GroupConfig, MulticastGroup};
use crate::proto::options::Negotiated;

use super::Shared;
use super::admission::Ticket;
use super::error_reply::{READ_FAILED, SHUTTING_DOWN};
use super::outcome::request_outcome;
use super::request::GroupKey;
use super::runtime::Runtime;
use super::transfer_filter::ClosedTransfer;
use crate::io::alarms::sleep_until;

/// A group is found by its file and options and by the local address it answers from.
type Key = (GroupKey, IpAddr);

/// A client handed to a group: a new member (with its ticket) or one asking again.
#[derive(Debug)]
struct Join {
    peer: SocketAddr,
    accepted: Vec<(&'static str, String)>,
    /// `None` for a member whose request came again (its OACK is resent).
    ticket: Option<Ticket>,
}

#[derive(Debug)]
struct Entry {
    tx: mpsc::UnboundedSender<Join>,
    group: (Ipv4Addr, u16),
}

#[derive(Debug, Default)]
struct Registry {
    groups: HashMap<Key, Entry>,
    members: HashMap<SocketAddr, Key>,
}

/// The running groups, shared by listeners and transfer tasks.
#[derive(Debug, Default)]
pub struct Groups(Mutex<Registry>);

impl Groups {
    fn lock(&self) -> MutexGuard<'_, Registry> {
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

/// A download that asked for multicast and may be served by a group.
#[derive(Debug)]
pub struct Request {
    /// Which group can serve it.
    pub key: GroupKey,
    /// The file's blocks.
    pub source: BlockSource,
    /// The options (lock-step, without `multicast`).
    pub negotiated: Negotiated,
    /// Blocks in the file.
    pub blocks: u64,
    /// The client.
    pub peer: SocketAddr,
    /// Its place under the concurrency limits, held while it is a member.
    pub ticket: Option<Ticket>,
}

/// No group could serve the request: serve it by unicast with these.
#[derive(Debug)]
pub struct Fallback {
    /// The file's blocks.
    pub source: BlockSource,
    /// The options to answer.
    pub negotiated: Negotiated,
    /// The client's ticket.
    pub ticket: Option<Ticket>,
}

/// Joins `req`'s client to the group serving its file, or starts that group on `socket`
/// and drives it until its last member has left.
pub async fn serve(
    req: Request,
    socket: &impl DatagramIo,
    screen: Option<(Role, &FilterCounters)>,
    rt: &Runtime,
    shared: &Shared,
) -> Result<(), Box<Fallback>> {
    let local = socket.local_addr().map(|a| a.ip());
    let Ok(local @ IpAddr::V4(local_v4)) = local else {
        // A dual-stack socket cannot carry IPv4 multicast options here: say why, once per
        // request, and serve by unicast.
        info!(
            "multicast needs an IPv4 transfer socket (listen on an IPv4 address); serving by unicast"
        );
        return Err(fallback(req));
    };
    let key = (req.key, local);
    let (req, group, rx) = match enter(req, key, socket, rt, local_v4, shared)? {
        Entered::Joined => return Ok(()),
        Entered::Started(started) => *started,
    };
    let first = Join {
        peer: req.peer,
        accepted: req.negotiated.accepted.clone(),
        ticket: req.ticket,
    };
    let cfg = GroupConfig {
        addr: group.0,
        port: group.1,
        blocks: req.blocks,
        blksize: req.key.blksize,
        timeout: req.key.timeout,
        max_retries: rt.config.protocol.max_retries,
        switch_on_timeout: rt.config.multicast.switch_client,
    };
    info!(group = %SocketAddr::from(group), blocks = req.blocks, "multicast group started");
    let driver = Driver {
        group: MulticastGroup::new(cfg),
        group_addr: SocketAddr::from(group),
        members: HashMap::new(),
        source: req.source,
        key,
        shared,
    };
    driver.run(first, rx, socket, screen).await;
    Ok(())
}

enum Entered {
    /// Handed to the running group.
    Joined,
    /// A new group was registered; the caller drives it.
    Started(Box<(Request, (Ipv4Addr, u16), mpsc::UnboundedReceiver<Join>)>),
}

/// Under the registry lock: joins the group for `key`, or registers a new one.
fn enter(
    req: Request,
    key: Key,
    socket: &impl DatagramIo,
    rt: &Runtime,
    local_v4: Ipv4Addr,
    shared: &Shared,
) -> Result<Entered, Box<Fallback>> {
    let mut registry = shared.multicast.lock();
    if let Some(entry) = registry.groups.get(&key) {
        let group = entry.group;
        let join = Join {
            peer: req.peer,
            accepted: req.negotiated.accepted.clone(),
            ticket: req.ticket,
        };
        // The group removes itself under this lock once it has nothing left, so it is
        // still there to take the join.
        match entry.tx.send(join) {
            Ok(()) => {
                registry.members.insert(req.peer, key);
                info!(group = %SocketAddr::from(group), "joined a multicast group");
                return Ok(Entered::Joined);
            }
            Err(mpsc::error::SendError(join)) => {
                registry.groups.remove(&key);
                warn!("a multicast group ended without leaving the registry; serving by unicast");
                return Err(Box::new(Fallback {
                    source: req.source,
                    negotiated: req.negotiated,
                    ticket: join.ticket,
                }));
            }
        }
    }
    let in_use: Vec<(Ipv4Addr, u16)> = registry.groups.values().map(|e| e.group).collect();
    let Some(group) = rt.config.multicast.groups().find(|g| !in_use.contains(g)) else {
        info!(
            groups = in_use.len(),
            "every multicast address and port is in use; serving by unicast"
        );
        return Err(fallback(req));
    };
    if let Err(e) = configure(socket, rt, local_v4) {
        warn!(error = %e, "setting the multicast socket options failed; serving by unicast");
        return Err(fallback(req));
    }
    let (tx, rx) = mpsc::unbounded_channel();
    registry.groups.insert(key, Entry { tx, group });
    registry.members.insert(req.peer, key);
    Ok(Entered::Started(Box::new((req, group, rx))))
}

fn fallback(req: Request) -> Box<Fallback> {
    Box::new(Fallback {
        source: req.source,
        negotiated: req.negotiated,
        ticket: req.ticket,
    })
}

/// TTL and outgoing interface of the group traffic (`[multicast]`); the interface defaults
/// to the address the request arrived on, so DATA leaves where the clients are.
fn configure(socket: &impl DatagramIo, rt: &Runtime, local: Ipv4Addr) -> std::io::Result<()> {
    let fd = socket
        .own_fd()
        .ok_or_else(|| std::io::Error::other("a group needs its own socket"))?;
    let s = socket2::SockRef::from(&fd);
    let m = &rt.config.multicast;
    s.set_multicast_ttl_v4(u32::from(m.ttl))?;
    let interface = m.interface.unwrap_or(local);
    if !interface.is_unspecified() {
        s.set_multicast_if_v4(&interface)?;
    }
    Ok(())
}

/// A member as the shell keeps it: what ends with its download.
struct Member<'a> {
    _ticket: Option<Ticket>,
    _active: ActiveGuard<'a>,
    started: Instant,
}

struct Driver<'a> {
    group: MulticastGroup<SocketAddr>,
    /// Where DATA goes.
    group_addr: SocketAddr,
    members: HashMap<SocketAddr, Member<'a>>,
    source: BlockSource,
    key: Key,
    shared: &'a Shared,
}

impl<'a> Driver<'a> {
    async fn run(
        mut self,
        first: Join,
        mut rx: mpsc::UnboundedReceiver<Join>,
        socket: &impl DatagramIo,
        screen: Option<(Role, &FilterCounters)>,
    ) {
        let shared = self.shared;
        let _collect = ClosedTransfer {
            filter: shared.kernel_filter.as_deref(),
            fd: socket.own_fd(),
        };
        let started = Instant::now();
        self.join(first);
        let mut aborted = false;
        // ACKs and ERRORs only; a longer ERROR text is cut, which loses nothing that matters.
        let mut buf = vec![0u8; 1024];
        loop {
            self.read_blocks();
            self.send(socket).await;
            self.collect_departures();
            if self.group.is_finished() {
                // Under the registry lock, so a join cannot slip in between the check and
                // the removal.
                let mut r = shared.multicast.lock();
                match rx.try_recv() {
                    Ok(j) if !aborted => {
                        drop(r);
                        self.join(j);
                        continue;
                    }
                    // The server is going: the client hears nothing and tries again later.
                    Ok(_) => continue,
                    Err(_) => {
                        r.groups.remove(&self.key);
                        // Clients whose joins were dropped in a drain are no members either.
                        let key = self.key;
                        r.members.retain(|_, k| *k != key);
                        break;
                    }
                }
            }
            let deadline = self.group.poll_timeout();
            tokio::select! {
                received = socket.recv_from(&mut buf) => match received {
                    Ok((n, _)) if screen.is_some_and(|(r, c)| !filter::admit(r, &buf[..n], c)) => {}
                    Ok((n, from)) => {
                        if !self.members.contains_key(&from) {
                            debug!(%from, "datagram from an unknown TID");
                            shared.metrics.dropped(DropReason::UnknownTid, 1);
                        }
                        self.group.handle_datagram(Instant::now(), from, &buf[..n]);
                    }
                    Err(e) => debug!(error = %e, "receive failed"),
                },
                Some(j) = rx.recv() => {
                    if aborted {
                        // The server is going: the client hears nothing and tries again later.
                        drop(j);
                    } else {
                        self.join(j);
                    }
                }
                () = sleep_until(deadline) => self.group.handle_timeout(Instant::now()),
                () = shared.abort.raised(), if !aborted => {
                    aborted = true;
                    self.group.abort(SHUTTING_DOWN);
                }
            }
        }
        let stats = self.group.stats();
        let m = &shared.metrics;
        m.bytes(Kind::Read, stats.bytes);
        m.retransmits(stats.retransmits);
        m.dropped(DropReason::Ignored, stats.ignored);
        info!(
            bytes = stats.bytes,
            retransmits = stats.retransmits,
            duration_ms = started.elapsed().as_secs_f64() * 1e3,
            "multicast group finished"
        );
    }

    fn join(&mut self, j: Join) {
        if j.ticket.is_none() && !self.members.contains_key(&j.peer) {
            // A repeated request from a member that has left meanwhile: its download is over.
            return;
        }
        if let Some(ticket) = j.ticket {
            self.members.insert(
                j.peer,
                Member {
                    _ticket: Some(ticket),
                    _active: self.shared.metrics.transfer_started(),
                    started: Instant::now(),
                },
            );
            info!(member = %j.peer, "multicast member joined");
        }
        self.group.handle_join(Instant::now(), j.peer, j.accepted);
    }

    fn read_blocks(&mut self) {
        while let Some(r) = self.group.poll_block_request() {
            match self.source.read_block(r.index, r.max_len) {
                Ok(d) => self.group.handle_block(d),
                Err(e) => {
                    warn!(error = %e, block = r.index, "reading the file failed");
                    self.group.abort(READ_FAILED);
                    return;
                }
            }
        }
    }

    async fn send(&mut self, socket: &impl DatagramIo) {
        let group = self.group_addr;
        let mut report = SendReport::default();
        while let Some(t) = self.group.poll_transmit() {
            let to = match t.to {
                Destination::Group => group,
                Destination::Peer(p) => p,
            };
            if let crate::proto::TransmitKind::Error(code) = t.kind {
                self.shared.metrics.error_sent(code);
            }
            report.single_calls += 1;
            // A failed send is like a lost datagram: the group's timer covers it.
            match socket.send_to(t.datagram, to).await {
                Ok(()) => report.datagrams += 1,
                Err(e) => debug!(error = %e, %to, "send failed"),
            }
        }
        self.shared.metrics.sends(&report);
    }

    fn collect_departures(&mut self) {
        while let Some(d) = self.group.poll_departure() {
            self.shared.multicast.lock().members.remove(&d.peer);
            let Some(member) = self.members.remove(&d.peer) else {
                continue;
            };
            let m = &self.shared.metrics;
            let duration = member.started.elapsed();
            m.transfer_duration(Kind::Read, duration);
            m.request(Kind::Read, request_outcome(&d.outcome));
            let duration_ms = duration.as_secs_f64() * 1e3;
            match &d.outcome {
                Outcome::Completed | Outcome::PeerError { .. } | Outcome::SizeProbe => info!(
                    member = %d.peer,
                    duration_ms,
                    outcome = d.outcome.label(),
                    "multicast member finished"
                ),
                // A group never reports these two (its members are confirmed on joining),
                // but they read as failures if it ever does.
                Outcome::TimedOut
                | Outcome::Aborted(_)
                | Outcome::Unanswered
                | Outcome::Evicted => warn!(
                    member = %d.peer,
                    duration_ms,
                    outcome = d.outcome.label(),
                    "multicast member finished"
                ),
            }
        }
    }
}
