//! What an accepted request becomes: a download, an upload or a multicast download, with
//! everything its transfer needs, and the key that puts multicast downloads into one group.

use crate::io::file::{BlockSource, UploadSink};
use crate::proto::TransferConfig;
use crate::proto::mode::Mode;
use crate::proto::options::Negotiated;

/// A transfer ready to run.
#[derive(Debug)]
pub enum Prepared {
    /// A download.
    Read {
        /// The settings.
        config: TransferConfig,
        /// The file's blocks.
        source: BlockSource,
        /// The negotiated options, for the log.
        negotiated: Negotiated,
        /// The transfer mode.
        mode: Mode,
    },
    /// A download served to an RFC 2090 multicast group (joined or started).
    Multicast {
        /// Which group can serve it: the same file with the same options.
        key: GroupKey,
        /// The file's blocks (octet: any block can be read at any time).
        source: BlockSource,
        /// The negotiated options, lock-step, without `multicast` (the group answers it).
        negotiated: Negotiated,
        /// Blocks in the file.
        blocks: u64,
    },
    /// An upload.
    Write {
        /// The settings.
        config: TransferConfig,
        /// Where the payload goes.
        sink: UploadSink,
        /// The negotiated options, for the log.
        negotiated: Negotiated,
        /// The transfer mode.
        mode: Mode,
    },
}

/// What makes two multicast requests one group: the same file (same inode, size and
/// modification time, so a replaced file starts a new group) at the same block size and
/// timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GroupKey {
    /// Device of the file.
    pub dev: u64,
    /// Inode of the file.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i128,
    /// Negotiated block size.
    pub blksize: u16,
    /// Negotiated timeout.
    pub timeout: std::time::Duration,
}
