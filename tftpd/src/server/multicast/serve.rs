//! A multicast request's way in: join the group already serving its file, or register and
//! start a new group on the request's socket, or fall back to unicast when neither can be.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::filter::{FilterCounters, Role};
use crate::io::datagram::DatagramIo;
use crate::io::file::BlockSource;
use crate::proto::multicast::{GroupConfig, MulticastGroup};
use crate::proto::options::Negotiated;
use crate::server::Shared;
use crate::server::admission::Ticket;
use crate::server::request::GroupKey;
use crate::server::runtime::Runtime;

use super::driver::Driver;
use super::registry::{Entry, Join, Key};

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
