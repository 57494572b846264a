//! The XDP program (Linux): loaded once at start (while the daemon may), attached to the
//! interfaces in `ebpf.xdp_interfaces`, fed its settings (ports, block size, rate limit) and
//! the deny list, and detached on shutdown or when a reload removes an interface. Its maps
//! are pinned next to the socket filters' so `bpftool` reads and edits them.
//!
//! It has an `Ebpf` instance of its own, so it works whichever socket filter path the daemon
//! runs (eBPF, classic BPF or userspace).
//!
//! # Minimum kernel version
//! `bpf_xdp_load_bytes` needs 5.18.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{Array, MapData, PerCpuArray};
use aya::programs::{Xdp, XdpMode as AyaXdpMode, xdp::XdpLinkId};
use aya::{Ebpf, EbpfLoader};
use tftp_ebpf_common::{Counter, XdpConfig};

use super::counters::Totals;
use super::ebpf::{object, sum_per_cpu};
use crate::config::{Config, SourcePrefix, XdpMode};

#[path = "xdp_settings.rs"]
mod settings;
pub use settings::XdpSettings;

const PROGRAM: &str = "tftp_xdp";
/// The XDP maps: their names in the object and their pin files.
pub const XDP_COUNTS: (&str, &str) = ("XDP_COUNTS", "xdp_counts");
/// The settings array.
pub const XDP_CONFIG: (&str, &str) = ("XDP_CONFIG", "xdp_config");
/// The deny list (LPM trie).
pub const XDP_DENY: (&str, &str) = ("XDP_DENY", "xdp_deny");
/// The rate limiter's per-source state (LRU hash).
pub const XDP_RATE: (&str, &str) = ("XDP_RATE", "xdp_rate");

/// Why an XDP step failed; each variant names the step and what it was working on.
#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    /// Loading the object or the program (the cause holds the verifier log).
    #[error("loading the XDP program")]
    Load(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Attaching to an interface.
    #[error("attaching XDP to {interface} ({mode} mode)")]
    Attach {
        /// The interface.
        interface: String,
        /// The mode tried.
        mode: &'static str,
        /// The cause.
        #[source]
        source: aya::programs::ProgramError,
    },
    /// A map could not be read or written.
    #[error("XDP map {map}")]
    Map {
        /// The map.
        map: &'static str,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Pinning under the pin directory failed.
    #[error("pinning the XDP maps under {}", path.display())]
    Pin {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

fn map_err(map: &'static str) -> impl Fn(aya::maps::MapError) -> XdpError {
    move |e| XdpError::Map {
        map,
        source: Box::new(e),
    }
}

struct Inner {
    ebpf: Ebpf,
    /// Attached interfaces: the link and the mode that worked.
    links: BTreeMap<String, (XdpLinkId, &'static str)>,
    /// Deny entries that came from the config (others were added by an operator: kept).
    config_deny: BTreeSet<SourcePrefix>,
}

/// The loaded XDP program and what it is attached to.
pub struct XdpFilter {
    inner: Mutex<Inner>,
    pinned: Vec<PathBuf>,
    /// The daemon's listening ports (fixed for its life).
    listen_ports: Vec<u16>,
}

impl std::fmt::Debug for XdpFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdpFilter")
            .field("pinned", &self.pinned)
            .finish_non_exhaustive()
    }
}

impl XdpFilter {
    /// Loads the program for a daemon listening on `listen_ports` and pins its maps under
    /// `pin_dir` (stale pins are replaced).
    pub fn load(pin_dir: &Path, listen_ports: Vec<u16>) -> Result<Self, XdpError> {
        let bytes = object().map_err(|e| XdpError::Load(Box::new(e)))?;
        let mut ebpf = EbpfLoader::new()
            .load(bytes)
            .map_err(|e| XdpError::Load(Box::new(e)))?;
        let program: &mut Xdp = ebpf
            .program_mut(PROGRAM)
            .ok_or_else(|| XdpError::Load(format!("the object has no {PROGRAM}").into()))?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| XdpError::Load(Box::new(e)))?;
        program.load().map_err(|e| XdpError::Load(Box::new(e)))?;
        let pin_err = |source: Box<dyn std::error::Error + Send + Sync>| XdpError::Pin {
            path: pin_dir.to_path_buf(),
            source,
        };
        super::pin_dir::claim(pin_dir).map_err(|e| pin_err(Box::new(e)))?;
        let mut pinned = Vec::new();
        for (map, file) in [XDP_COUNTS, XDP_CONFIG, XDP_DENY, XDP_RATE] {
            let path = pin_dir.join(file);
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::info!(path = %path.display(), "replaced a stale pinned map"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(pin_err(Box::new(e))),
            }
            ebpf.map(map)
                .ok_or_else(|| XdpError::Load(format!("the object has no {map}").into()))?
                .pin(&path)
                .map_err(|e| pin_err(Box::new(e)))?;
            pinned.push(path);
        }
        Ok(Self {
            inner: Mutex::new(Inner {
                ebpf,
                links: BTreeMap::new(),
                config_deny: BTreeSet::new(),
            }),
            pinned,
            listen_ports,
        })
    }

    /// [`apply`](Self::apply) for a configuration.
    pub fn reconfigure(&self, config: &Config) -> Vec<XdpError> {
        self.apply(&XdpSettings::new(config, &self.listen_ports))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the maps as they were: still usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Brings the program in line with `s`: settings and deny list first (so a newly
    /// attached interface never runs with stale ones), then detaches interfaces no longer
    /// named and attaches new ones. Every step is tried; the failures are returned.
    pub fn apply(&self, s: &XdpSettings) -> Vec<XdpError> {
        let mut inner = self.lock();
        let mut errors = Vec::new();
        if let Err(e) = inner.write_settings(s) {
            errors.push(e);
        }
        let gone: Vec<String> = inner
            .links
            .keys()
            .filter(|i| !s.interfaces.contains(i))
            .cloned()
            .collect();
        for interface in gone {
            inner.detach(&interface);
        }
        for interface in &s.interfaces {
            if inner.links.contains_key(interface) {
                continue;
            }
            match inner.attach(interface, s.mode) {
                Ok(mode) => {
                    tracing::info!(path = "xdp", interface, mode, "packet filter: XDP attached")
                }
                Err(e) => errors.push(e),
            }
        }
        errors
    }

    /// The interfaces attached now, with the mode that worked.
    pub fn attached(&self) -> Vec<(String, &'static str)> {
        self.lock()
            .links
            .iter()
            .map(|(i, (_, m))| (i.clone(), *m))
            .collect()
    }

    /// The counters, summed over CPUs.
    pub fn totals(&self) -> Result<Totals, XdpError> {
        let inner = self.lock();
        let map = inner.ebpf.map(XDP_COUNTS.0).ok_or_else(|| XdpError::Map {
            map: XDP_COUNTS.0,
            source: "missing from the object".into(),
        })?;
        let array: PerCpuArray<&MapData, Counter> =
            PerCpuArray::try_from(map).map_err(map_err(XDP_COUNTS.0))?;
        sum_per_cpu(&array).map_err(|e| XdpError::Map {
            map: XDP_COUNTS.0,
            source: Box::new(e),
        })
    }

    /// Detaches from every interface (shutdown).
    pub fn detach_all(&self) {
        let mut inner = self.lock();
        let all: Vec<String> = inner.links.keys().cloned().collect();
        for interface in all {
            inner.detach(&interface);
        }
    }

    /// Removes the pins (shutdown).
    pub fn unpin(&self) {
        for p in &self.pinned {
            if let Err(e) = std::fs::remove_file(p) {
                tracing::warn!(path = %p.display(), error = %e, "removing a pinned map failed");
            }
        }
    }

    /// Hands the pins to the user the daemon drops to, so it can remove them on shutdown.
    pub fn chown_pins(&self, uid: u32, gid: u32) -> std::io::Result<()> {
        for p in &self.pinned {
            nix::unistd::chown(
                p,
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
            )
            .map_err(std::io::Error::from)?;
        }
        Ok(())
    }
}

impl Inner {
    fn write_settings(&mut self, s: &XdpSettings) -> Result<(), XdpError> {
        let map = self
            .ebpf
            .map_mut(XDP_CONFIG.0)
            .ok_or_else(|| XdpError::Map {
                map: XDP_CONFIG.0,
                source: "missing from the object".into(),
            })?;
        let mut config: Array<&mut MapData, XdpConfig> =
            Array::try_from(map).map_err(map_err(XDP_CONFIG.0))?;
        config.set(0, s.program, 0).map_err(map_err(XDP_CONFIG.0))?;
        let map = self.ebpf.map_mut(XDP_DENY.0).ok_or_else(|| XdpError::Map {
            map: XDP_DENY.0,
            source: "missing from the object".into(),
        })?;
        let mut deny: LpmTrie<&mut MapData, [u8; 16], u32> =
            LpmTrie::try_from(map).map_err(map_err(XDP_DENY.0))?;
        for old in self.config_deny.difference(&s.deny) {
            let (len, addr) = old.mapped();
            match deny.remove(&Key::new(len, addr)) {
                Ok(()) | Err(aya::maps::MapError::KeyNotFound) => {}
                Err(e) => return Err(map_err(XDP_DENY.0)(e)),
            }
        }
        for new in &s.deny {
            let (len, addr) = new.mapped();
            deny.insert(&Key::new(len, addr), 1, 0)
                .map_err(map_err(XDP_DENY.0))?;
        }
        self.config_deny.clone_from(&s.deny);
        Ok(())
    }

    fn program(&mut self) -> Result<&mut Xdp, XdpError> {
        self.ebpf
            .program_mut(PROGRAM)
            .ok_or_else(|| XdpError::Load(format!("the object has no {PROGRAM}").into()))?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| XdpError::Load(Box::new(e)))
    }

    /// Attaches to `interface`; `auto` tries the driver first, then generic.
    fn attach(&mut self, interface: &str, mode: XdpMode) -> Result<&'static str, XdpError> {
        let tries: &[(AyaXdpMode, &'static str)] = match mode {
            XdpMode::Native => &[(AyaXdpMode::Driver, "native")],
            XdpMode::Generic => &[(AyaXdpMode::Skb, "generic")],
            XdpMode::Auto => &[(AyaXdpMode::Driver, "native"), (AyaXdpMode::Skb, "generic")],
        };
        let mut last = None;
        for &(flags, label) in tries {
            match self.program()?.attach(interface, flags) {
                Ok(link) => {
                    self.links.insert(interface.to_string(), (link, label));
                    return Ok(label);
                }
                Err(source) => {
                    last = Some(XdpError::Attach {
                        interface: interface.to_string(),
                        mode: label,
                        source,
                    });
                }
            }
        }
        Err(last.unwrap_or_else(|| XdpError::Load("no XDP mode to try".into())))
    }

    fn detach(&mut self, interface: &str) {
        let Some((link, _)) = self.links.remove(interface) else {
            return;
        };
        match self.program().map(|p| p.detach(link)) {
            Ok(Ok(())) => tracing::info!(path = "xdp", interface, "packet filter: XDP detached"),
            Ok(Err(e)) => {
                tracing::warn!(interface, error = %e, "detaching XDP failed (gone with the interface?)");
            }
            Err(e) => tracing::warn!(interface, error = %e, "detaching XDP failed"),
        }
    }
}

/// Reads the XDP counters a running daemon pinned in `dir`, without its help.
pub fn read_pinned(dir: &Path) -> Result<Totals, XdpError> {
    let path = dir.join(XDP_COUNTS.1);
    let data = MapData::from_pin(&path).map_err(|e| XdpError::Map {
        map: XDP_COUNTS.0,
        source: Box::new(e),
    })?;
    let array: PerCpuArray<MapData, Counter> =
        PerCpuArray::try_from(aya::maps::Map::PerCpuArray(data)).map_err(map_err(XDP_COUNTS.0))?;
    sum_per_cpu(&array).map_err(|e| XdpError::Map {
        map: XDP_COUNTS.0,
        source: Box::new(e),
    })
}
