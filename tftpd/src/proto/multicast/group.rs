//! The state of one RFC 2090 multicast group: its members (the oldest is master), master
//! hand-over, the block in flight, retransmission on a timeout and the queue of what to send.
//! The option's wire format and the types the group takes and gives out are in the parent
//! module.

use std::collections::VecDeque;
use std::time::Instant;

use super::{Departure, Destination, GroupConfig, OPTION, Transmit, oack_value};
use crate::proto::TransmitKind;
use crate::proto::error::{ErrorCode, WireError};
use crate::proto::packet::{DATA_HEADER_LEN, OP_OACK, Packet, data_header};
use crate::proto::read::BlockRequest;
use crate::proto::transfer::{Outcome, TIMED_OUT, TransferStats, error_datagram};

/// Sent to a source that is not a member of the group (RFC 1350 §4).
const UNKNOWN_TID: WireError = WireError::new(ErrorCode::UnknownTransferId, "unknown transfer ID");

#[derive(Debug)]
struct Member<P> {
    peer: P,
    /// The options accepted for this member, echoed in each OACK to it.
    accepted: Vec<(&'static str, String)>,
    /// Timeouts run up as master.
    timeouts: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MasterState {
    /// No member: nothing outstanding.
    Idle,
    /// The front member was sent an OACK with `mc=1`; waiting for its first ACK.
    AwaitFirstAck,
    /// Block `n` was asked for by the master and sent (or is being read).
    Sending(u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending<P> {
    /// An OACK to this member; `mc` is decided when it is sent.
    Oack(P),
    /// The current block, to the group.
    Data,
    /// An ERROR to one peer.
    Error(P, WireError),
}

/// One multicast group: its members (oldest first; the front one is master), the block in
/// flight and what is queued to send.
#[derive(Debug)]
pub struct MulticastGroup<P> {
    cfg: GroupConfig,
    members: VecDeque<Member<P>>,
    state: MasterState,
    /// The block the shell is asked to read.
    wanted: Option<u64>,
    /// The encoded DATA of the block in flight.
    current: Option<(u64, Vec<u8>)>,
    pending: VecDeque<Pending<P>>,
    departures: VecDeque<Departure<P>>,
    deadline: Option<Instant>,
    stats: TransferStats,
    scratch: Vec<u8>,
}

impl<P: Copy + Eq> MulticastGroup<P> {
    /// A group without members yet.
    pub fn new(cfg: GroupConfig) -> Self {
        Self {
            cfg,
            members: VecDeque::new(),
            state: MasterState::Idle,
            wanted: None,
            current: None,
            pending: VecDeque::new(),
            departures: VecDeque::new(),
            deadline: None,
            stats: TransferStats::default(),
            scratch: Vec::new(),
        }
    }

    /// A client asked (RRQ with `multicast`) to join, with the options accepted for it. A
    /// member asking again (its OACK was lost) is sent its OACK again.
    pub fn handle_join(&mut self, now: Instant, peer: P, accepted: Vec<(&'static str, String)>) {
        if self.member(peer).is_some() {
            self.pending.push_back(Pending::Oack(peer));
            return;
        }
        self.members.push_back(Member {
            peer,
            accepted,
            timeouts: 0,
        });
        if self.members.len() == 1 {
            self.promote(now);
        } else {
            self.pending.push_back(Pending::Oack(peer));
        }
    }

    /// Handles a datagram from `from` to the group's socket.
    pub fn handle_datagram(&mut self, now: Instant, from: P, datagram: &[u8]) {
        let Some(index) = self.member(from) else {
            // Not part of this transfer: say so, as for any other TID (RFC 1350 §4).
            if !matches!(Packet::decode(datagram), Ok(Packet::Error { .. })) {
                self.pending.push_back(Pending::Error(from, UNKNOWN_TID));
            }
            self.stats.ignored += 1;
            return;
        };
        match Packet::decode(datagram) {
            Ok(Packet::Ack { block }) => self.handle_ack(now, index, u64::from(block)),
            Ok(Packet::Error { code, message }) => {
                let outcome = Outcome::PeerError {
                    code,
                    message: String::from_utf8_lossy(message).into_owned(),
                };
                self.depart(now, index, outcome);
            }
            _ => self.stats.ignored += 1,
        }
    }

    fn handle_ack(&mut self, now: Instant, index: usize, block: u64) {
        let is_master = index == 0 && self.state != MasterState::Idle;
        if block >= self.cfg.blocks {
            // Any member may end its download by acknowledging the last block (RFC 2090).
            self.depart(now, index, Outcome::Completed);
            return;
        }
        if !is_master {
            // A member that is not master must not drive the transfer; remind it that it
            // is not (atftpd does the same), and carry on.
            self.stats.ignored += 1;
            self.pending
                .push_back(Pending::Oack(self.members[index].peer));
            return;
        }
        self.members[0].timeouts = 0;
        let next = block + 1;
        if self.state == MasterState::Sending(next) {
            // A repeated ACK asks for the block already in flight: answering it would double
            // every later block (the Sorcerer's Apprentice, RFC 1123 §4.2.3.1); the timer
            // covers a real loss.
            self.stats.ignored += 1;
            return;
        }
        self.state = MasterState::Sending(next);
        self.current = None;
        self.wanted = Some(next);
        self.pending.retain(|p| *p != Pending::Data);
        self.deadline = Some(now + self.cfg.timeout);
    }

    /// The block the shell should read next, if any.
    pub fn poll_block_request(&self) -> Option<BlockRequest> {
        self.wanted.map(|index| BlockRequest {
            index,
            max_len: usize::from(self.cfg.blksize),
        })
    }

    /// Hands in the block last asked for, with `datagram[..4]` left for the header.
    pub fn handle_block(&mut self, mut datagram: Vec<u8>) {
        let Some(index) = self.wanted.take() else {
            return;
        };
        let max = DATA_HEADER_LEN + usize::from(self.cfg.blksize);
        datagram.resize(datagram.len().clamp(DATA_HEADER_LEN, max), 0);
        // Blocks never pass MAX_BLOCKS, so the number fits the wire as it is.
        let wire = u16::try_from(index).unwrap_or(u16::MAX);
        datagram[..DATA_HEADER_LEN].copy_from_slice(&data_header(wire));
        self.stats.bytes += (datagram.len() - DATA_HEADER_LEN) as u64;
        self.current = Some((index, datagram));
        self.pending.push_back(Pending::Data);
    }

    /// Handles the passing of time; call it when `poll_timeout` has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.deadline {
            Some(d) if now >= d => {}
            _ => return,
        }
        let Some(master) = self.members.front_mut() else {
            self.deadline = None;
            return;
        };
        master.timeouts += 1;
        if master.timeouts > self.cfg.max_retries {
            let peer = master.peer;
            self.pending.push_back(Pending::Error(peer, TIMED_OUT));
            self.depart(now, 0, Outcome::TimedOut);
            return;
        }
        if self.cfg.switch_on_timeout && self.members.len() > 1 {
            // The silent master goes to the back and hears it is no longer master.
            if let Some(m) = self.members.pop_front() {
                self.pending.push_back(Pending::Oack(m.peer));
                self.members.push_back(m);
            }
            self.promote(now);
            return;
        }
        match self.state {
            MasterState::AwaitFirstAck => {
                let peer = self.members[0].peer;
                self.pending.push_back(Pending::Oack(peer));
            }
            MasterState::Sending(_) if self.current.is_some() => {
                self.stats.retransmits += 1;
                self.pending.push_back(Pending::Data);
            }
            MasterState::Sending(_) | MasterState::Idle => {}
        }
        self.deadline = Some(now + self.cfg.timeout);
    }

    /// Ends the group: every member is sent `error` and leaves.
    pub fn abort(&mut self, error: WireError) {
        self.pending.clear();
        for m in std::mem::take(&mut self.members) {
            self.pending
                .push_back(Pending::Error(m.peer, error.clone()));
            self.departures.push_back(Departure {
                peer: m.peer,
                outcome: Outcome::Aborted(error.clone()),
            });
        }
        self.idle();
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit<'_, P>> {
        let p = self.pending.pop_front()?;
        match p {
            Pending::Data => {
                let (block, d) = self.current.as_ref()?;
                Some(Transmit {
                    to: Destination::Group,
                    datagram: d,
                    kind: TransmitKind::Data { block: *block },
                })
            }
            Pending::Error(peer, e) => {
                self.scratch = error_datagram(&e);
                Some(Transmit {
                    to: Destination::Peer(peer),
                    datagram: &self.scratch,
                    kind: TransmitKind::Error(e.code),
                })
            }
            Pending::Oack(peer) => {
                let master = self.state != MasterState::Idle
                    && self.members.front().is_some_and(|m| m.peer == peer);
                let value = oack_value(self.cfg.addr, self.cfg.port, master);
                let accepted = self
                    .member(peer)
                    .map(|i| self.members[i].accepted.as_slice())
                    .unwrap_or_default();
                self.scratch.clear();
                self.scratch.extend_from_slice(&OP_OACK.to_be_bytes());
                let options = accepted
                    .iter()
                    .map(|(k, v)| (*k, v.as_str()))
                    .chain([(OPTION, value.as_str())]);
                for (name, value) in options {
                    self.scratch.extend_from_slice(name.as_bytes());
                    self.scratch.push(0);
                    self.scratch.extend_from_slice(value.as_bytes());
                    self.scratch.push(0);
                }
                Some(Transmit {
                    to: Destination::Peer(peer),
                    datagram: &self.scratch,
                    kind: TransmitKind::Oack,
                })
            }
        }
    }

    /// The next member to have left, and how.
    pub fn poll_departure(&mut self) -> Option<Departure<P>> {
        self.departures.pop_front()
    }

    /// When `handle_timeout` must next be called; `None` when nothing is outstanding.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// True once no member is left and everything queued has been sent.
    pub fn is_finished(&self) -> bool {
        self.members.is_empty() && self.pending.is_empty()
    }

    /// The current master, if any.
    pub fn master(&self) -> Option<P> {
        (self.state != MasterState::Idle)
            .then(|| self.members.front().map(|m| m.peer))
            .flatten()
    }

    /// How many members the group has.
    pub fn members(&self) -> usize {
        self.members.len()
    }

    /// The group's counters: `bytes` is payload sent to the group, `retransmits` blocks sent
    /// again after a timeout.
    pub fn stats(&self) -> TransferStats {
        self.stats
    }

    fn member(&self, peer: P) -> Option<usize> {
        self.members.iter().position(|m| m.peer == peer)
    }

    /// Removes member `index` with `outcome`; a departing master hands over to the next.
    fn depart(&mut self, now: Instant, index: usize, outcome: Outcome) {
        let Some(m) = self.members.remove(index) else {
            return;
        };
        self.departures.push_back(Departure {
            peer: m.peer,
            outcome,
        });
        if index == 0 {
            self.promote(now);
        }
    }

    /// Makes the front member master: an OACK with `mc=1`, then wait for its ACK, which
    /// names the block before the first one it lacks (RFC 2090 §Data Transfer).
    fn promote(&mut self, now: Instant) {
        self.wanted = None;
        self.current = None;
        self.pending.retain(|p| *p != Pending::Data);
        let Some(m) = self.members.front() else {
            self.idle();
            return;
        };
        self.state = MasterState::AwaitFirstAck;
        self.pending.push_back(Pending::Oack(m.peer));
        self.deadline = Some(now + self.cfg.timeout);
    }

    fn idle(&mut self) {
        self.state = MasterState::Idle;
        self.wanted = None;
        self.current = None;
        self.deadline = None;
    }
}
