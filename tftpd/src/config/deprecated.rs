//! Keys older releases read whose choice another key makes now. Unlike a removed key
//! (`removed.rs`) a deprecated one still acts: it is folded into its replacement while
//! parsing, so an old file behaves as it did. A file that sets one is told which key to
//! write instead, by the same warnings as the removed keys (at start, by `--check-config`,
//! on reload: [`super::PerformanceConfig::old_keys`]).

/// Every deprecated key, as its warning names it.
pub const DEPRECATED: [&str; 1] = [RECVMMSG];

const RECVMMSG: &str = "performance.batching.recvmmsg";
/// What `recv_batch` defaulted to while `recvmmsg` was its own switch: an old file's
/// `recvmmsg = true` without a `recv_batch` keeps the 32 slots it had.
pub(crate) const OLD_RECVMMSG_BATCH: usize = 32;

/// The warning for the file's `performance.batching.recvmmsg` (`set`), if it sets one.
pub(super) fn recvmmsg(set: Option<bool>) -> Option<String> {
    let set = set?;
    let what = if set {
        format!(
            "performance.batching.recv_batch chooses recvmmsg now (2..=1024: recvmmsg with \
             that many slots; without a recv_batch it reads as {}, the old default); write \
             recv_batch",
            OLD_RECVMMSG_BATCH
        )
    } else {
        "it reads as performance.batching.recv_batch = 1 (one datagram per receive call), \
         whatever recv_batch says; write recv_batch = 1"
            .to_string()
    };
    Some(format!(
        "{RECVMMSG} ({set}) is deprecated: {what}; delete it"
    ))
}
