//! `[limits]`: how many transfers run, how long one may take, and what a peer that has not
//! answered yet may cost (the half-open pool, the reflection budget, the deferral queue).
//! See `server::admission` and `server::deferred` for what each does.

use serde::Deserialize;

use super::ConfigError;

/// `[limits]`: concurrency, request size and what unanswered peers may cost.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Concurrent transfers in all, half-open and confirmed.
    #[serde(default = "default_max_transfers")]
    pub max_transfers: usize,
    /// Concurrent confirmed transfers per client IP address.
    #[serde(default = "default_max_per_client")]
    pub max_transfers_per_client: usize,
    /// Largest RRQ/WRQ datagram in bytes.
    #[serde(default = "default_max_request_size")]
    pub max_request_size: usize,
    /// Transfers whose peer has not answered yet that are held at once (never more than
    /// `max_transfers`); when full, the oldest is evicted for a new request.
    #[serde(default = "default_max_half_open")]
    pub max_half_open: usize,
    /// Retransmissions of the first datagram to a peer that has not answered (0..=5): with
    /// 1, an unanswered request earns its source two datagrams in all.
    #[serde(default = "default_half_open_retries")]
    pub half_open_retries: u32,
    /// Bytes per second each source prefix may be sent by half-open transfers (the
    /// reflection budget); 0: no budget.
    #[serde(default = "default_half_open_rate")]
    pub half_open_rate: u64,
    /// Bytes a source prefix may have outstanding to half-open peers at once (the budget's
    /// burst); what a peer cost is given back when it answers.
    #[serde(default = "default_half_open_burst")]
    pub half_open_burst: u64,
    /// Prefix length that groups IPv4 sources for the reflection budget.
    #[serde(default = "default_prefix_v4")]
    pub half_open_prefix_v4: u8,
    /// Prefix length that groups IPv6 sources for the reflection budget.
    #[serde(default = "default_prefix_v6")]
    pub half_open_prefix_v6: u8,
    /// Requests held, per listening socket, while every place is taken; 0: none (a request
    /// over the limit gets no answer and the client's own retry brings it back).
    #[serde(default = "default_max_queued")]
    pub max_queued: usize,
    /// How long a held request may wait for a place before it is dropped, in milliseconds.
    #[serde(default = "default_queue_wait_ms")]
    pub max_queue_wait_ms: u64,
    /// The longest a transfer may run, in seconds; 0: no limit.
    #[serde(default = "default_max_transfer_secs")]
    pub max_transfer_secs: u64,
}

fn default_max_transfers() -> usize {
    2048
}
/// As many as in all: one client address may be a relay or a NAT in front of a whole rack, so
/// a per-client cap is the operator's choice (see docs/examples/production.toml).
fn default_max_per_client() -> usize {
    default_max_transfers()
}
fn default_max_request_size() -> usize {
    512
}
fn default_max_half_open() -> usize {
    1024
}
fn default_half_open_retries() -> u32 {
    1
}
/// 64 KiB/s: a victim of forged requests gets at most this (after the burst) from the
/// server, whatever the number of forged requests.
fn default_half_open_rate() -> u64 {
    64 * 1024
}
/// 1 MiB: the first datagrams (at most 544 bytes each at IP level) of about 1900 real
/// clients behind one address starting at once.
fn default_half_open_burst() -> u64 {
    1 << 20
}
fn default_prefix_v4() -> u8 {
    24
}
fn default_prefix_v6() -> u8 {
    64
}
fn default_max_queued() -> usize {
    4096
}
/// 5 s: about the time a PXE client or tftp-hpa waits before asking again; a request held
/// longer has been asked again (the retry refreshes it) or given up on.
fn default_queue_wait_ms() -> u64 {
    5000
}
/// One hour: a 4 GiB image at 1.2 MB/s.
fn default_max_transfer_secs() -> u64 {
    3600
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_transfers: default_max_transfers(),
            max_transfers_per_client: default_max_per_client(),
            max_request_size: default_max_request_size(),
            max_half_open: default_max_half_open(),
            half_open_retries: default_half_open_retries(),
            half_open_rate: default_half_open_rate(),
            half_open_burst: default_half_open_burst(),
            half_open_prefix_v4: default_prefix_v4(),
            half_open_prefix_v6: default_prefix_v6(),
            max_queued: default_max_queued(),
            max_queue_wait_ms: default_queue_wait_ms(),
            max_transfer_secs: default_max_transfer_secs(),
        }
    }
}

impl LimitsConfig {
    /// Checks ranges and the rules between these keys.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, value: String, allowed| ConfigError::Invalid {
            key,
            value,
            allowed,
        };
        if self.max_transfers == 0 {
            return Err(invalid("limits.max_transfers", "0".into(), "1 or more"));
        }
        if self.max_transfers_per_client == 0 || self.max_transfers_per_client > self.max_transfers
        {
            return Err(invalid(
                "limits.max_transfers_per_client",
                self.max_transfers_per_client.to_string(),
                "1..=limits.max_transfers",
            ));
        }
        if !(32..=65468).contains(&self.max_request_size) {
            return Err(invalid(
                "limits.max_request_size",
                self.max_request_size.to_string(),
                "32..=65468",
            ));
        }
        if self.max_half_open == 0 {
            return Err(invalid(
                "limits.max_half_open",
                "0".into(),
                "1 or more (at most limits.max_transfers take effect)",
            ));
        }
        if self.half_open_retries > 5 {
            return Err(invalid(
                "limits.half_open_retries",
                self.half_open_retries.to_string(),
                "0..=5",
            ));
        }
        // A burst smaller than one first datagram (up to 584 bytes at IP level over IPv6)
        // would refuse every half-open send.
        if self.half_open_rate > 0 && self.half_open_burst < 600 {
            return Err(invalid(
                "limits.half_open_burst",
                self.half_open_burst.to_string(),
                "600 or more bytes (or limits.half_open_rate = 0 for no budget)",
            ));
        }
        if !(8..=32).contains(&self.half_open_prefix_v4) {
            return Err(invalid(
                "limits.half_open_prefix_v4",
                self.half_open_prefix_v4.to_string(),
                "8..=32",
            ));
        }
        if !(16..=128).contains(&self.half_open_prefix_v6) {
            return Err(invalid(
                "limits.half_open_prefix_v6",
                self.half_open_prefix_v6.to_string(),
                "16..=128",
            ));
        }
        if self.max_queued > 1_000_000 {
            return Err(invalid(
                "limits.max_queued",
                self.max_queued.to_string(),
                "0..=1000000",
            ));
        }
        if !(10..=60_000).contains(&self.max_queue_wait_ms) {
            return Err(invalid(
                "limits.max_queue_wait_ms",
                self.max_queue_wait_ms.to_string(),
                "10..=60000",
            ));
        }
        Ok(())
    }
}
