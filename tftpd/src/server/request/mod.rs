//! From a decoded RRQ/WRQ to a transfer ready to run, or a refusal: mode, path, file, options,
//! in that order. Each refusal carries what to tell the client (fixed text), how to count it,
//! and the detail to log.

mod owned;
mod prepared;
mod refused;
mod transfer_config;

pub use self::owned::OwnedRequest;
pub use self::prepared::{GroupKey, Prepared};
pub use self::refused::Refused;
pub(super) use self::transfer_config::transfer_config;

use std::net::IpAddr;

use crate::config::RemapOp;
use crate::fs::remap::Mapped;
use crate::fs::{FoundFile, RequestPath, ResolveError, WriteMode};
use crate::io::cache::{FileCache, FileKey};
use crate::io::file::{BlockSource, UploadSink};
use crate::metrics::{Kind, RequestOutcome};
use crate::proto::mode::Mode;
use crate::proto::options::{Direction, Negotiated, negotiate};
use crate::proto::{ErrorCode, WireError};

use super::runtime::Runtime;

/// A download that would need block numbers past 65535 under `rollover = "refuse"`.
const NO_ROLLOVER: WireError = WireError::new(
    ErrorCode::NotDefined,
    "file too large without block number rollover; ask for a larger blksize",
);

/// Validates and opens a request from `client` under `rt`; `blksize_cap` (from the path MTU)
/// lowers the largest block agreed to. A download of a file `cache` holds is served from
/// memory without the file being opened.
pub fn prepare(
    req: &OwnedRequest,
    client: IpAddr,
    blksize_cap: Option<u16>,
    rt: &Runtime,
    cache: &FileCache,
) -> Result<Prepared, Refused> {
    let mode = Mode::parse(&req.mode).map_err(|w| {
        Refused::bad_request(w, format!("mode {:?}", String::from_utf8_lossy(&req.mode)))
    })?;
    let mapped = remap(req, client, rt)?;
    let path = RequestPath::parse(mapped.as_deref().unwrap_or(&req.filename))?;
    let options: Vec<(&[u8], &[u8])> = req
        .options
        .iter()
        .map(|(k, v)| (k.as_slice(), v.as_slice()))
        .collect();
    let capped;
    let limits = match blksize_cap {
        Some(cap) if cap < rt.option_limits.max_blksize => {
            capped = crate::proto::options::OptionLimits {
                max_blksize: cap,
                ..rt.option_limits.clone()
            };
            &capped
        }
        _ => &rt.option_limits,
    };
    let refuse_options =
        |e: crate::proto::options::OptionError| Refused::bad_request(e.wire_error(), e.to_string());
    let base = rt.root_for(client);
    let own = unique_root(base, client, rt)?;
    let root = own.as_ref().unwrap_or(base);
    match req.kind {
        Kind::Read => {
            let file = root.find_read(&path)?;
            let size = (mode == Mode::Octet).then_some(file.size());
            let negotiated =
                negotiate(&options, Direction::Read { size }, limits).map_err(refuse_options)?;
            if let Some(m) = multicast(&negotiated, mode, client, &file, rt) {
                return Ok(Prepared::Multicast {
                    key: m.0,
                    source: open_source(file, mode, rt, cache)?,
                    negotiated: negotiated.for_multicast(),
                    blocks: m.1,
                });
            }
            // Netascii can at most double the size on the wire (every LF becomes CR LF).
            let wire_bound = if mode == Mode::Octet {
                file.size()
            } else {
                file.size().saturating_mul(2)
            };
            if let Some(max) = rt.config.protocol.rollover.max_bytes(negotiated.blksize)
                && wire_bound > max
            {
                return Err(Refused::bad_request(
                    NO_ROLLOVER,
                    format!(
                        "{} bytes need block rollover at blksize {} (protocol.rollover = \"refuse\")",
                        file.size(),
                        negotiated.blksize
                    ),
                ));
            }
            Ok(Prepared::Read {
                config: transfer_config(&negotiated, rt, Kind::Read),
                source: open_source(file, mode, rt, cache)?,
                negotiated,
                mode,
            })
        }
        Kind::Write => {
            // Refuse before negotiating, so a client learns the real reason, not an option
            // complaint, and no temporary file is made for a request that cannot succeed.
            if rt.upload_policy.mode == WriteMode::Off {
                return Err(ResolveError::WriteDisabled.into());
            }
            let negotiated =
                negotiate(&options, Direction::Write, limits).map_err(refuse_options)?;
            let mut upload = root.create_upload(&path, &rt.upload_policy)?;
            // Before the OACK or first ACK: a WRQ that cannot fit hears so now, not after
            // sending its data.
            upload.check_room(negotiated.tsize)?;
            if let Some(max) = rt.config.protocol.rollover.max_bytes(negotiated.blksize) {
                upload.cap_size(max);
            }
            Ok(Prepared::Write {
                config: transfer_config(&negotiated, rt, Kind::Write),
                sink: UploadSink::new(upload, mode),
                negotiated,
                mode,
            })
        }
    }
}

/// The download's bytes: from the hot-file cache when it holds this version of the file
/// (which is then never opened), else from the file, opened now.
fn open_source(
    file: FoundFile,
    mode: Mode,
    rt: &Runtime,
    cache: &FileCache,
) -> Result<BlockSource, Refused> {
    let io = &rt.config.performance.file_io;
    let key = FileKey::from_stat(file.stat());
    if io.cache_size > 0
        && let Some(bytes) = cache.hit(&key)
    {
        return Ok(BlockSource::cached(bytes, mode));
    }
    let opened = file.open()?;
    Ok(BlockSource::new(opened.file, mode).with_key(FileKey::from_stat(&opened.stat)))
}

/// The client's own directory under `unique_root`, when the option is on and it exists.
fn unique_root(
    base: &crate::fs::Root,
    client: IpAddr,
    rt: &Runtime,
) -> Result<Option<crate::fs::Root>, Refused> {
    let Some(name) = crate::fs::unique::dir_name(rt.config.unique_root, client) else {
        return Ok(None);
    };
    let own = base.subdir(&name)?;
    if own.is_some() {
        tracing::debug!(dir = %name, "served from the client's own directory (unique_root)");
    }
    Ok(own)
}

/// The group key and block count when `negotiated` can be served by multicast; `None`
/// serves it by unicast, the option left unanswered (RFC 2347 lets a server ignore an
/// option). That is the case when `[multicast]` is off, in single-port mode (a group needs
/// its own socket), for IPv6 clients (RFC 2090 defines IPv4 groups only), in netascii (the
/// wire bytes are produced in order, while a group asks for blocks in any order) and for
/// files needing more than 65535 blocks (members place blocks by number; no rollover).
fn multicast(
    negotiated: &Negotiated,
    mode: Mode,
    client: IpAddr,
    file: &FoundFile,
    rt: &Runtime,
) -> Option<(GroupKey, u64)> {
    let c = &rt.config;
    let servable = negotiated.multicast
        && c.multicast.enabled
        && !c.single_port
        && mode == Mode::Octet
        && client.to_canonical().is_ipv4();
    if !servable {
        return None;
    }
    let blocks = crate::proto::multicast::block_count(file.size(), negotiated.blksize);
    if blocks > crate::proto::multicast::MAX_BLOCKS {
        return None;
    }
    let id = FileKey::from_stat(file.stat());
    let key = GroupKey {
        dev: id.dev(),
        ino: id.ino(),
        size: file.size(),
        mtime_ns: id.mtime_ns(),
        blksize: negotiated.blksize,
        timeout: negotiated.timeout,
    };
    Some((key, blocks))
}

/// Applies the `[[remap]]` rules: `Some(name)` when rewritten (logged), an access violation
/// when a rule denies. Names that are not UTF-8 are left to the name checks, which refuse
/// them.
fn remap(req: &OwnedRequest, client: IpAddr, rt: &Runtime) -> Result<Option<Vec<u8>>, Refused> {
    if rt.remapper.is_empty() {
        return Ok(None);
    }
    let Ok(name) = std::str::from_utf8(&req.filename) else {
        return Ok(None);
    };
    let op = match req.kind {
        Kind::Read => RemapOp::Read,
        Kind::Write => RemapOp::Write,
    };
    match rt.remapper.map(name, op, client) {
        Mapped::Unchanged => Ok(None),
        Mapped::Rewritten(to) => {
            tracing::info!(from = name, to = %to, "file name remapped");
            Ok(Some(to.into_bytes()))
        }
        Mapped::Denied(rule) => Err(Refused {
            wire: WireError::new(ErrorCode::AccessViolation, "access violation"),
            outcome: RequestOutcome::Denied,
            audit: true,
            detail: format!("{name:?} refused by remap[{rule}]"),
        }),
    }
}
