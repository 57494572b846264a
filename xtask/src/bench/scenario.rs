//! The fixed scenario set of `cargo xtask bench` (issue #4), in a full and a quick size.

/// A file the served root holds, by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum File {
    /// The single-client file (64 MiB; 4 MiB quick).
    Large,
    /// The concurrent file (1 MiB).
    Medium,
    /// The boot-storm file (64 KiB).
    Small,
    /// The lossy-link file (4 MiB; 512 KiB quick): see [`Plan::full`] for why not 64 MiB.
    Lossy,
}

impl File {
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Large => "large.bin",
            Self::Medium => "medium.bin",
            Self::Small => "small.bin",
            Self::Lossy => "lossy.bin",
        }
    }
}

/// One row group of the table: the same client load against every server.
#[derive(Debug, Clone)]
pub(super) struct Scenario {
    /// Short label, e.g. `1b`.
    pub id: &'static str,
    /// What it is, for the table heading.
    pub title: String,
    pub file: File,
    pub clients: u32,
    pub blksize: Option<u16>,
    pub windowsize: Option<u16>,
    /// Probability that a datagram is dropped, each way, in the client.
    pub loss: f64,
    /// RFC 2349 timeout to request (seconds); also the client's retransmit timeout.
    pub timeout: Option<u8>,
}

impl Scenario {
    /// The lock-step or windowed shape the raw ceiling is measured at, for single clients on
    /// a clean link (the only rows where "fraction of the ceiling" means something).
    pub(super) fn ceiling_shape(&self) -> Option<(u16, u16)> {
        (self.clients == 1 && self.loss == 0.0)
            .then(|| (self.blksize.unwrap_or(512), self.windowsize.unwrap_or(1)))
    }
}

/// Sizes, counts and the scenario list of one bench run.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub quick: bool,
    /// Rounds; each round runs every server once per scenario, in a rotated order.
    pub runs: usize,
    pub large: usize,
    pub medium: usize,
    pub small: usize,
    pub lossy: usize,
    pub scenarios: Vec<Scenario>,
}

const MIB: usize = 1024 * 1024;

impl Plan {
    /// The scenario set at its sizes, except the lossy file: with 1 % loss each way a
    /// lock-step transfer loses ~2 % of its round trips, and every loss costs the 1-second
    /// minimum RFC 2349 timeout, so 64 MiB (47 000 blocks) would take ~15 minutes per server
    /// and run. 4 MiB (~60 losses) keeps the scenario about recovery, at ~1 minute a run.
    pub(super) fn full(runs: usize) -> Self {
        Self::with_sizes(false, runs, 64 * MIB, 1000, 100, 4 * MIB)
    }

    /// A short run that proves the harness and every server work (CI), not a measurement.
    pub(super) fn quick(runs: usize) -> Self {
        Self::with_sizes(true, runs, 4 * MIB, 200, 20, MIB / 2)
    }

    fn with_sizes(
        quick: bool,
        runs: usize,
        large: usize,
        storm: u32,
        concurrent: u32,
        lossy: usize,
    ) -> Self {
        let mib = |bytes: usize| {
            if bytes >= MIB {
                format!("{} MiB", bytes / MIB)
            } else {
                format!("{} KiB", bytes / 1024)
            }
        };
        let single = |id, blksize: Option<u16>, windowsize: Option<u16>| {
            let shape = match (blksize, windowsize) {
                (None, _) => "no options (blksize 512, lock-step)".to_string(),
                (Some(b), None) => format!("blksize {b}"),
                (Some(b), Some(w)) => format!("blksize {b}, windowsize {w}"),
            };
            Scenario {
                id,
                title: format!("1 client × {}, {shape}", mib(large)),
                file: File::Large,
                clients: 1,
                blksize,
                windowsize,
                loss: 0.0,
                timeout: None,
            }
        };
        let scenarios = vec![
            single("1a", None, None),
            single("1b", Some(1428), None),
            single("1c", Some(8192), None),
            single("1d", Some(65464), None),
            single("1e", Some(1428), Some(16)),
            single("1f", Some(8192), Some(16)),
            Scenario {
                id: "2",
                title: format!("{concurrent} clients × 1 MiB at once, blksize 1428"),
                file: File::Medium,
                clients: concurrent,
                blksize: Some(1428),
                windowsize: None,
                loss: 0.0,
                timeout: None,
            },
            Scenario {
                id: "3",
                title: format!("boot storm: {storm} clients × 64 KiB at once, blksize 1428"),
                file: File::Small,
                clients: storm,
                blksize: Some(1428),
                windowsize: None,
                loss: 0.0,
                timeout: None,
            },
            Scenario {
                id: "4",
                title: format!(
                    "1 client × {}, blksize 1428, 1 % loss each way, timeout 1 s",
                    mib(lossy)
                ),
                file: File::Lossy,
                clients: 1,
                blksize: Some(1428),
                windowsize: None,
                loss: 0.01,
                timeout: Some(1),
            },
        ];
        Self {
            quick,
            runs,
            large,
            medium: MIB,
            small: 64 * 1024,
            lossy,
            scenarios,
        }
    }

    pub(super) fn size_of(&self, file: File) -> usize {
        match file {
            File::Large => self.large,
            File::Medium => self.medium,
            File::Small => self.small,
            File::Lossy => self.lossy,
        }
    }
}
