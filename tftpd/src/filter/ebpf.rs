//! The eBPF socket filters (Linux): load the object embedded at build time, attach the
//! listener program to each listening socket and the transfer program to each transfer
//! socket, pin the counter maps under `ebpf.pin_dir` (default `/sys/fs/bpf/tftpd/`) for `bpftool`, and read them back
//! (summed over CPUs) for the metrics.
//!
//! # Minimum kernel version
//! BTF-defined maps need 4.18; bounded loops in the request rule need 5.3.

use std::borrow::Borrow;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use aya::maps::{MapData, PerCpuArray};
use aya::programs::SocketFilter;
use aya::{Ebpf, EbpfLoader};
use tftp_ebpf_common::{Counter, Reason};

use super::counters::Totals;

/// The listener program's counter map: its name in the object and its pin file.
pub const LISTEN_COUNTS: (&str, &str) = ("LISTEN_COUNTS", "listen_counts");
/// The transfer program's counter map.
pub const XFER_COUNTS: (&str, &str) = ("XFER_COUNTS", "xfer_counts");
const LISTENER_PROGRAM: &str = "tftp_listener";
const SINGLE_PORT_PROGRAM: &str = "tftp_single_port";
const TRANSFER_PROGRAM: &str = "tftp_transfer";

/// Why the eBPF filters could not be set up. Each variant says which step failed.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// This build carries no eBPF object.
    #[error("this build has no eBPF object (run `cargo xtask build-ebpf`, then rebuild)")]
    NoObject,
    /// The kernel refused the object or a program (the cause holds the verifier log).
    #[error("loading the eBPF object")]
    Load(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A program or map is missing from the object.
    #[error("the eBPF object has no {0}")]
    Missing(&'static str),
    /// Attaching to a socket failed.
    #[error("attaching {program} to a socket")]
    Attach {
        /// The program.
        program: &'static str,
        /// The cause.
        #[source]
        source: aya::programs::ProgramError,
    },
    /// A pinned map could not be opened or read (is the daemon running with eBPF?).
    #[error("reading the pinned map {}", path.display())]
    ReadPinned {
        /// The pin.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Pinning the maps failed.
    #[error("pinning the counter maps under {}", path.display())]
    Pin {
        /// The pin path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The loaded, ready-to-attach eBPF filters.
#[derive(Debug)]
pub struct EbpfFilter {
    ebpf: Ebpf,
    /// The largest DATA the transfer program keeps (fixed at load).
    max_blksize: u16,
    pinned: Vec<PathBuf>,
}

#[cfg(ebpf_object)]
pub(super) fn object() -> Result<&'static [u8], AttachError> {
    Ok(aya::include_bytes_aligned!(env!("TFTPD_EBPF_OBJECT")))
}

#[cfg(not(ebpf_object))]
pub(super) fn object() -> Result<&'static [u8], AttachError> {
    Err(AttachError::NoObject)
}

impl EbpfFilter {
    /// The largest DATA the transfer program was loaded to keep.
    pub fn max_blksize(&self) -> u16 {
        self.max_blksize
    }

    /// True when this build embeds the eBPF object.
    pub fn built_in() -> bool {
        object().is_ok()
    }

    /// Loads both programs into the kernel. `max_blksize` bounds the DATA a transfer socket
    /// keeps.
    pub fn load(max_blksize: u16) -> Result<Self, AttachError> {
        let bytes = object()?;
        let max = u32::from(max_blksize);
        let mut ebpf = EbpfLoader::new()
            .override_global("MAX_BLKSIZE", &max, true)
            .load(bytes)
            .map_err(|e| AttachError::Load(Box::new(e)))?;
        for name in [LISTENER_PROGRAM, SINGLE_PORT_PROGRAM, TRANSFER_PROGRAM] {
            let program: &mut SocketFilter = ebpf
                .program_mut(name)
                .ok_or(AttachError::Missing(name))?
                .try_into()
                .map_err(|e: aya::programs::ProgramError| AttachError::Load(Box::new(e)))?;
            program.load().map_err(|e| AttachError::Load(Box::new(e)))?;
        }
        Ok(Self {
            ebpf,
            max_blksize,
            pinned: Vec::new(),
        })
    }

    fn program(&self, name: &'static str) -> Result<&SocketFilter, AttachError> {
        self.ebpf
            .program(name)
            .ok_or(AttachError::Missing(name))?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| AttachError::Attach {
                program: name,
                source: e,
            })
    }

    /// Attaches the listener program to a listening socket; in single-port mode the one that
    /// also keeps transfer packets.
    pub fn attach_listener(&self, socket: impl AsFd, single_port: bool) -> Result<(), AttachError> {
        let program = if single_port {
            SINGLE_PORT_PROGRAM
        } else {
            LISTENER_PROGRAM
        };
        self.attach(program, socket)
    }

    /// Attaches the transfer program to a transfer socket. Needs no privilege: the program
    /// was loaded while the daemon still had it.
    pub fn attach_transfer(&self, socket: impl AsFd) -> Result<(), AttachError> {
        self.attach(TRANSFER_PROGRAM, socket)
    }

    fn attach(&self, program: &'static str, socket: impl AsFd) -> Result<(), AttachError> {
        self.program(program)?
            .attach(socket)
            .map_err(|source| AttachError::Attach { program, source })
    }

    /// Pins the counter maps under `dir` (mounting bpffs on /sys/fs/bpf first if needed), so
    /// `bpftool map dump pinned <dir>/listen_counts` shows them while the daemon runs. The
    /// directory is held by this process until it exits (another running daemon's is
    /// refused, see `pin_dir.rs`); stale pins from an earlier run are replaced. The pins are
    /// removed when this is dropped.
    pub fn pin(&mut self, dir: &Path) -> Result<(), AttachError> {
        let err = |source: Box<dyn std::error::Error + Send + Sync>| AttachError::Pin {
            path: dir.to_path_buf(),
            source,
        };
        // Held from here to exit: the pins found below are a dead daemon's, not a live one's.
        super::pin_dir::claim(dir).map_err(|e| err(Box::new(e)))?;
        for (map, file) in [LISTEN_COUNTS, XFER_COUNTS] {
            let path = dir.join(file);
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::info!(path = %path.display(), "replaced a stale pinned map"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(err(Box::new(e))),
            }
            self.ebpf
                .map(map)
                .ok_or(AttachError::Missing(map))?
                .pin(&path)
                .map_err(|e| err(Box::new(e)))?;
            self.pinned.push(path);
        }
        Ok(())
    }

    fn counts(&self, map: &'static str) -> Result<Totals, AttachError> {
        let m = self.ebpf.map(map).ok_or(AttachError::Missing(map))?;
        let array: PerCpuArray<&MapData, Counter> =
            PerCpuArray::try_from(m).map_err(|e| AttachError::Load(Box::new(e)))?;
        sum_per_cpu(&array)
    }

    /// The counters of both programs, summed over CPUs and over the two socket roles.
    pub fn totals(&self) -> Result<Totals, AttachError> {
        let mut total = self.counts(LISTEN_COUNTS.0)?;
        for (t, x) in total.iter_mut().zip(self.counts(XFER_COUNTS.0)?) {
            t.packets += x.packets;
            t.bytes += x.bytes;
        }
        Ok(total)
    }
}

/// Sums each reason's per-CPU values.
pub(super) fn sum_per_cpu<T: Borrow<MapData>>(
    array: &PerCpuArray<T, Counter>,
) -> Result<Totals, AttachError> {
    let mut out = [Counter::default(); Reason::COUNT as usize];
    for reason in Reason::ALL {
        let per_cpu = array
            .get(&reason.index(), 0)
            .map_err(|e| AttachError::Load(Box::new(e)))?;
        let slot = &mut out[reason.index() as usize];
        for c in per_cpu.iter() {
            slot.packets += c.packets;
            slot.bytes += c.bytes;
        }
    }
    Ok(out)
}

/// Reads the counters of a running daemon from the maps pinned in `dir`, without its help:
/// (listener, transfer), each summed over CPUs.
pub fn read_pinned(dir: &Path) -> Result<(Totals, Totals), AttachError> {
    let read = |file: &str| -> Result<Totals, AttachError> {
        let path = dir.join(file);
        let data = MapData::from_pin(&path).map_err(|e| AttachError::ReadPinned {
            path: path.clone(),
            source: Box::new(e),
        })?;
        let array: PerCpuArray<MapData, Counter> =
            PerCpuArray::try_from(aya::maps::Map::PerCpuArray(data))
                .map_err(|e| AttachError::Load(Box::new(e)))?;
        sum_per_cpu(&array)
    };
    Ok((read(LISTEN_COUNTS.1)?, read(XFER_COUNTS.1)?))
}

impl EbpfFilter {
    /// Hands the pin directory and pins to the user the daemon will drop to, so it can still
    /// remove them on shutdown. Call before dropping privileges.
    pub fn chown_pins(&self, uid: u32, gid: u32) -> std::io::Result<()> {
        let owner = (
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        );
        // The pins first, the directory last: under a umask such as systemd's UMask=0027 the
        // directory is 0750, and once it is the user's, root without CAP_DAC_OVERRIDE could
        // no longer reach the pins inside it.
        let dirs = self.pinned.first().and_then(|p| p.parent()).into_iter();
        for p in self.pinned.iter().map(PathBuf::as_path).chain(dirs) {
            nix::unistd::chown(p, owner.0, owner.1).map_err(std::io::Error::from)?;
        }
        Ok(())
    }

    /// Removes the pins (the maps go away with the last fd). Called on shutdown; the filters
    /// themselves detach when their sockets close.
    pub fn unpin(&self) {
        for p in &self.pinned {
            if let Err(e) = std::fs::remove_file(p) {
                tracing::warn!(path = %p.display(), error = %e, "removing a pinned map failed");
            }
        }
    }
}
