//! `[protocol]`: what the server agrees to in negotiation, and its retransmission timing.

use serde::Deserialize;

use super::{BlockSize, ConfigError, OptionName, RolloverPolicy};

/// `[protocol]`: negotiation caps and retransmission.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtocolConfig {
    /// The largest blksize agreed to.
    #[serde(default = "default_max_blksize")]
    pub max_blksize: BlockSize,
    /// The largest windowsize agreed to.
    #[serde(default = "default_max_windowsize")]
    pub max_windowsize: u16,
    /// Blocks a download keeps in flight when the client does not negotiate windowsize (1:
    /// lock-step, RFC 1350). The client is not told; it ACKs every block and the window
    /// slides. Capped by `max_windowsize`.
    #[serde(default = "default_default_windowsize")]
    pub default_windowsize: u16,
    /// Retransmit timeout in milliseconds when the client does not negotiate `timeout`, and
    /// always while a transfer is half-open.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Retransmissions without progress before a transfer is given up.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// Once a transfer's client has answered, and unless it negotiated `timeout`, time its
    /// retransmissions by the measured round trip (RFC 6298: SRTT + 4·RTTVAR, between
    /// `min_timeout_ms` and `timeout_ms`, doubled per expiry) instead of `timeout_ms` alone.
    /// Uploads re-send their ACK on the same timer. Not in single-port mode: there a blind
    /// ACK confirms a transfer, and the quick timer would resend its window to a possibly
    /// forged source several times more than the fixed one (docs/security.md, blind ACKs).
    #[serde(default = "default_true")]
    pub adaptive_timeout: bool,
    /// The shortest retransmission timeout `adaptive_timeout` may arrive at, in milliseconds.
    #[serde(default = "default_min_timeout_ms")]
    pub min_timeout_ms: u64,
    /// The longest `timeout` (RFC 2349) a client may choose, in seconds; a longer one is left
    /// out of the OACK and `timeout_ms` applies.
    #[serde(default = "default_max_client_timeout_secs")]
    pub max_client_timeout_secs: u64,
    /// The largest window agreed to in single-port mode, where a blind spoofer knows the
    /// server's port and can predict block numbers: each forged ACK pulls at most this many
    /// blocks towards its victim.
    #[serde(default = "default_single_port_max_windowsize")]
    pub single_port_max_windowsize: u16,
    /// Block numbers after 65535: zero, one, or refuse transfers that would need it.
    #[serde(default)]
    pub rollover: RolloverPolicy,
    /// Options never acknowledged (tftp-hpa `--refuse`), for clients that break on them.
    #[serde(default)]
    pub refuse_options: Vec<OptionName>,
    /// Never agree to a blksize that would fragment on the path to the client.
    #[serde(default = "default_true")]
    pub blksize_path_mtu: bool,
}

fn default_true() -> bool {
    true
}
fn default_max_blksize() -> BlockSize {
    BlockSize::MAX
}
fn default_default_windowsize() -> u16 {
    1
}
fn default_max_windowsize() -> u16 {
    64
}
fn default_timeout_ms() -> u64 {
    1000
}
fn default_max_retries() -> u32 {
    5
}
/// 10 ms: a lost block costs about a hundredth of the one-second fixed timeout, while the
/// round-trip variation, not the floor, keeps a slow or jittery client (15–45 ms) from
/// seeing DATA twice.
fn default_min_timeout_ms() -> u64 {
    10
}
/// 5 s: what U-Boot asks for by default; tftp-hpa's client and PXE firmware ask less or
/// nothing. With `max_retries` 5 a silent peer holds its transfer at most 30 s.
fn default_max_client_timeout_secs() -> u64 {
    5
}
/// 4: EDK2 (UEFI PXE) asks for exactly this; at blksize 1428 one forged ACK pulls about
/// 180 times its size (docs/security.md).
fn default_single_port_max_windowsize() -> u16 {
    4
}

impl Default for ProtocolConfig {
    fn default() -> Self {
        Self {
            max_blksize: default_max_blksize(),
            max_windowsize: default_max_windowsize(),
            default_windowsize: default_default_windowsize(),
            timeout_ms: default_timeout_ms(),
            max_retries: default_max_retries(),
            adaptive_timeout: true,
            min_timeout_ms: default_min_timeout_ms(),
            max_client_timeout_secs: default_max_client_timeout_secs(),
            single_port_max_windowsize: default_single_port_max_windowsize(),
            rollover: RolloverPolicy::default(),
            refuse_options: Vec::new(),
            blksize_path_mtu: true,
        }
    }
}

impl ProtocolConfig {
    /// How a transfer's retransmissions are timed: adaptive unless turned off, in
    /// single-port mode (where nothing proves the peer answers from where it claims), or
    /// when the client chose its own `timeout`, which RFC 2349 makes the interval to use.
    pub fn retransmit(
        &self,
        single_port: bool,
        client_chose_timeout: bool,
    ) -> crate::proto::Retransmit {
        if self.adaptive_timeout && !single_port && !client_chose_timeout {
            crate::proto::Retransmit::Adaptive {
                floor: std::time::Duration::from_millis(self.min_timeout_ms),
            }
        } else {
            crate::proto::Retransmit::Fixed
        }
    }

    /// The largest DATA payload a transfer may carry: `max_blksize`, but never below the
    /// 512 bytes a client that negotiates no `blksize` sends (RFC 1350). The packet filters
    /// judge DATA by this, not by `max_blksize` alone.
    pub fn largest_data(&self) -> u16 {
        self.max_blksize.get().max(512)
    }

    /// The largest window agreed to, or used as the server's default, in this mode.
    pub fn window_cap(&self, single_port: bool) -> u16 {
        let cap = self.max_windowsize.max(1);
        if single_port {
            cap.min(self.single_port_max_windowsize.max(1))
        } else {
            cap
        }
    }

    /// Checks ranges.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, value: String, allowed| ConfigError::Invalid {
            key,
            value,
            allowed,
        };
        if self.max_windowsize == 0 {
            return Err(invalid("protocol.max_windowsize", "0".into(), "1..=65535"));
        }
        if self.default_windowsize == 0 {
            return Err(invalid(
                "protocol.default_windowsize",
                "0".into(),
                "1..=65535 (1: lock-step)",
            ));
        }
        if !(10..=255_000).contains(&self.timeout_ms) {
            return Err(invalid(
                "protocol.timeout_ms",
                self.timeout_ms.to_string(),
                "10..=255000",
            ));
        }
        if !(1..=self.timeout_ms).contains(&self.min_timeout_ms) {
            return Err(invalid(
                "protocol.min_timeout_ms",
                self.min_timeout_ms.to_string(),
                "1..=protocol.timeout_ms",
            ));
        }
        if !(1..=100).contains(&self.max_retries) {
            return Err(invalid(
                "protocol.max_retries",
                self.max_retries.to_string(),
                "1..=100",
            ));
        }
        if !(1..=255).contains(&self.max_client_timeout_secs) {
            return Err(invalid(
                "protocol.max_client_timeout_secs",
                self.max_client_timeout_secs.to_string(),
                "1..=255",
            ));
        }
        if self.single_port_max_windowsize == 0 {
            return Err(invalid(
                "protocol.single_port_max_windowsize",
                "0".into(),
                "1..=65535",
            ));
        }
        Ok(())
    }
}
