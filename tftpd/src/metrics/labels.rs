//! The closed label sets of the request and drop counters: what a request was, how it
//! ended, why a transfer dropped a datagram. Each enum lists its values once (`ALL`), so the
//! page has a series for every value from the start.

/// What a request was: a download or an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// RRQ.
    Read,
    /// WRQ.
    Write,
}

impl Kind {
    pub(super) const ALL: [Self; 2] = [Self::Read, Self::Write];
    pub(super) fn label(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }
}

/// How a request ended, as counted in `tftpd_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    /// Every byte delivered.
    Completed,
    /// The client sent an ERROR.
    PeerError,
    /// The client stopped answering.
    TimedOut,
    /// We ended a running transfer (I/O error, shutdown, oversized block).
    Aborted,
    /// Refused before transfer: file not found.
    NotFound,
    /// Refused: path security, write policy, permissions.
    Denied,
    /// Refused: bad mode, bad options, too large.
    BadRequest,
    /// Refused: a concurrency limit was reached.
    Busy,
    /// A retransmitted request for a transfer already running; not started twice.
    Duplicate,
    /// From a client `[access]` does not serve; not answered.
    ClientRefused,
    /// The client never answered the first datagram (maybe a forged request); ended
    /// without an ERROR.
    Unanswered,
    /// Ended while half-open to make room for a newer request.
    Evicted,
    /// Held while every place was taken, and dropped when the queue was full or the wait
    /// too long; not answered (the client's retry comes back).
    Overloaded,
    /// A download the client ended with ERROR 8 once the OACK had told it the file's size
    /// (`tsize`), before any DATA: UEFI firmware asking the size before it fetches the file.
    /// Not a failure.
    SizeProbe,
}

impl RequestOutcome {
    pub(super) const ALL: [Self; 14] = [
        Self::Completed,
        Self::PeerError,
        Self::TimedOut,
        Self::Aborted,
        Self::NotFound,
        Self::Denied,
        Self::BadRequest,
        Self::Busy,
        Self::Duplicate,
        Self::ClientRefused,
        Self::Unanswered,
        Self::Evicted,
        Self::Overloaded,
        Self::SizeProbe,
    ];
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::PeerError => "peer_error",
            Self::TimedOut => "timed_out",
            Self::Aborted => "aborted",
            Self::NotFound => "not_found",
            Self::Denied => "denied",
            Self::BadRequest => "bad_request",
            Self::Busy => "busy",
            Self::Duplicate => "duplicate",
            Self::ClientRefused => "client_refused",
            Self::Unanswered => "unanswered",
            Self::Evicted => "evicted",
            Self::Overloaded => "overloaded",
            Self::SizeProbe => "size_probe",
        }
    }
}

/// Why a transfer dropped a datagram that passed the packet filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// From an address other than the transfer's client (answered with ERROR 5).
    UnknownTid,
    /// Ignored by the transfer: a duplicate, a stale ACK, or a packet out of place.
    Ignored,
}

impl DropReason {
    pub(super) const ALL: [Self; 2] = [Self::UnknownTid, Self::Ignored];
    pub(super) fn label(self) -> &'static str {
        match self {
            Self::UnknownTid => "unknown_tid",
            Self::Ignored => "ignored",
        }
    }
}
