//! The loop that drives one group on its socket: it feeds the group's file blocks, sends its
//! datagrams, hands it the clients' ACKs and the joins, and counts each member's download
//! when it leaves.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::filter::{self, FilterCounters, Role};
use crate::io::alarms::sleep_until;
use crate::io::datagram::{DatagramIo, SendReport};
use crate::io::file::BlockSource;
use crate::metrics::{ActiveGuard, DropReason, Kind};
use crate::proto::Outcome;
use crate::proto::multicast::{Destination, MulticastGroup};
use crate::server::Shared;
use crate::server::admission::Ticket;
use crate::server::error_reply::{READ_FAILED, SHUTTING_DOWN};
use crate::server::outcome::request_outcome;
use crate::server::transfer_filter::ClosedTransfer;

use super::registry::{Join, Key};

/// A member as the shell keeps it: what ends with its download.
pub(super) struct Member<'a> {
    _ticket: Option<Ticket>,
    _active: ActiveGuard<'a>,
    started: Instant,
}

pub(super) struct Driver<'a> {
    pub(super) group: MulticastGroup<SocketAddr>,
    /// Where DATA goes.
    pub(super) group_addr: SocketAddr,
    pub(super) members: HashMap<SocketAddr, Member<'a>>,
    pub(super) source: BlockSource,
    pub(super) key: Key,
    pub(super) shared: &'a Shared,
}

impl<'a> Driver<'a> {
    pub(super) async fn run(
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
