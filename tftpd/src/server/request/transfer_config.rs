//! The settings of one transfer, from its negotiated options and the configuration.

use crate::metrics::Kind;
use crate::proto::options::Negotiated;
use crate::proto::{HalfOpen, TransferConfig};
use crate::server::runtime::Runtime;

pub(in crate::server) fn transfer_config(
    n: &Negotiated,
    rt: &Runtime,
    kind: Kind,
) -> TransferConfig {
    let p = &rt.config.protocol;
    // A download whose client did not negotiate windowsize gets the configured default as a
    // sliding window (the client is not told; see `TransferConfig::sliding`). Uploads are
    // paced by the client, so a server default means nothing there.
    let sliding = kind == Kind::Read
        && p.default_windowsize > 1
        && !n.accepted(crate::proto::options::OptionName::Windowsize);
    let limits = &rt.config.limits;
    TransferConfig {
        blksize: n.blksize,
        windowsize: if sliding {
            p.default_windowsize
                .min(p.window_cap(rt.config.single_port))
        } else {
            n.windowsize
        },
        timeout: n.timeout,
        retransmit: p.retransmit(
            rt.config.single_port,
            n.accepted(crate::proto::options::OptionName::Timeout),
        ),
        max_retries: rt.config.protocol.max_retries,
        half_open: HalfOpen {
            timeout: rt.option_limits.default_timeout,
            retries: limits.half_open_retries,
        },
        max_duration: (limits.max_transfer_secs > 0)
            .then(|| std::time::Duration::from_secs(limits.max_transfer_secs)),
        rollover: rt.config.protocol.rollover.to_proto(),
        oack: n.oack(),
        sliding,
    }
}
