//! The fixed scenario set of `cargo xtask bench` (issue #4), in a full and a quick size.

use std::time::Duration;

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
    /// The noisy-link matrix's file (1 MiB, as issue #22's goals; 128 KiB quick).
    Noisy,
}

impl File {
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Large => "large.bin",
            Self::Medium => "medium.bin",
            Self::Small => "small.bin",
            Self::Lossy => "lossy.bin",
            Self::Noisy => "noisy.bin",
        }
    }

    /// Every role, for writing the served root.
    pub(super) const ALL: [Self; 5] = [
        Self::Large,
        Self::Medium,
        Self::Small,
        Self::Lossy,
        Self::Noisy,
    ];
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
    /// Round trip the client adds (half each way) on top of loopback's.
    pub rtt: Duration,
}

impl Scenario {
    /// The lock-step or windowed shape the raw ceiling is measured at, for single clients on
    /// a clean link (the only rows where "fraction of the ceiling" means something).
    pub(super) fn ceiling_shape(&self) -> Option<(u16, u16)> {
        (self.clients == 1 && !self.is_noisy())
            .then(|| (self.blksize.unwrap_or(512), self.windowsize.unwrap_or(1)))
    }

    /// A row whose link loses or delays datagrams: where retransmission timers matter.
    pub(super) fn is_noisy(&self) -> bool {
        self.loss > 0.0 || !self.rtt.is_zero()
    }

    /// True when `--scenarios` entry `id` picks this row: its own id, or its group (`5`
    /// for `5a`..`5m`).
    pub(super) fn picked_by(&self, id: &str) -> bool {
        self.id == id
            || self
                .id
                .strip_prefix(id)
                .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_lowercase()))
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
    pub noisy: usize,
    pub scenarios: Vec<Scenario>,
}

const MIB: usize = 1024 * 1024;

impl Plan {
    /// The scenario set at its sizes, except the lossy file: with 1 % loss each way a
    /// lock-step transfer loses ~2 % of its round trips, and every loss costs the 1-second
    /// minimum RFC 2349 timeout, so 64 MiB (47 000 blocks) would take ~15 minutes per server
    /// and run. 4 MiB (~60 losses) keeps the scenario about recovery, at ~1 minute a run.
    pub(super) fn full(runs: usize) -> Self {
        Self::with_sizes(false, runs, 64 * MIB, 1000, 100, 4 * MIB, MIB)
    }

    /// A short run that proves the harness and every server work (CI), not a measurement.
    pub(super) fn quick(runs: usize) -> Self {
        let mut plan = Self::with_sizes(true, runs, 4 * MIB, 200, 20, MIB / 2, MIB / 8);
        // Three noisy rows prove the matrix's harness: loss lock-step, loss with a window
        // over a delay, and the slow clean link.
        plan.scenarios
            .retain(|s| !s.id.starts_with('5') || ["5e", "5h", "5m"].contains(&s.id));
        plan
    }

    fn with_sizes(
        quick: bool,
        runs: usize,
        large: usize,
        storm: u32,
        concurrent: u32,
        lossy: usize,
        noisy: usize,
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
                rtt: Duration::ZERO,
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
                rtt: Duration::ZERO,
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
                rtt: Duration::ZERO,
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
                rtt: Duration::ZERO,
            },
        ];
        let mut scenarios = scenarios;
        scenarios.extend(noisy_matrix(&mib(noisy)));
        Self {
            quick,
            runs,
            large,
            medium: MIB,
            small: 64 * 1024,
            lossy,
            noisy,
            scenarios,
        }
    }

    pub(super) fn size_of(&self, file: File) -> usize {
        match file {
            File::Large => self.large,
            File::Medium => self.medium,
            File::Small => self.small,
            File::Lossy => self.lossy,
            File::Noisy => self.noisy,
        }
    }
}

/// Issue #22's matrix, rows `5a`..`5l`: 0.1, 1 and 5 % loss each way × lock-step and
/// windowsize 16 × 1 and 20 ms round trip, blksize 1428; then `5m`, a clean link with a
/// 30 ms round trip (a client that answers 30 ms late, for spurious DATA). The client asks
/// no `timeout`, so each server runs its own timer, and keeps its own 1 s one.
fn noisy_matrix(size: &str) -> Vec<Scenario> {
    let mut rows = Vec::new();
    let ids = [
        "5a", "5b", "5c", "5d", "5e", "5f", "5g", "5h", "5i", "5j", "5k", "5l",
    ];
    let mut id = ids.into_iter();
    for (loss, percent) in [(0.001, "0.1"), (0.01, "1"), (0.05, "5")] {
        for windowsize in [None, Some(16)] {
            for rtt_ms in [1, 20] {
                let shape =
                    windowsize.map_or("lock-step".to_string(), |w| format!("windowsize {w}"));
                rows.push(Scenario {
                    id: id.next().expect("12 ids for 12 rows"),
                    title: format!(
                        "1 client × {size}, blksize 1428, {shape}, {percent} % loss each way, \
                         {rtt_ms} ms round trip"
                    ),
                    file: File::Noisy,
                    clients: 1,
                    blksize: Some(1428),
                    windowsize,
                    loss,
                    timeout: None,
                    rtt: Duration::from_millis(rtt_ms),
                });
            }
        }
    }
    rows.push(Scenario {
        id: "5m",
        title: format!("1 client × {size}, blksize 1428, lock-step, no loss, 30 ms round trip"),
        file: File::Noisy,
        clients: 1,
        blksize: Some(1428),
        windowsize: None,
        loss: 0.0,
        timeout: None,
        rtt: Duration::from_millis(30),
    });
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_noisy_matrix_has_every_cell_once_and_asks_no_timeout() {
        let plan = Plan::full(1);
        let noisy: Vec<&Scenario> = plan.scenarios.iter().filter(|s| s.is_noisy()).collect();
        // Row 4 (1 % loss with timeout 1) and the 13 rows of the matrix.
        assert_eq!(noisy.len(), 14);
        let matrix: Vec<&&Scenario> = noisy.iter().filter(|s| s.id.starts_with('5')).collect();
        assert_eq!(matrix.len(), 13);
        let mut cells: Vec<(u64, Option<u16>, Duration)> = matrix
            .iter()
            .map(|s| ((s.loss * 1000.0).round() as u64, s.windowsize, s.rtt))
            .collect();
        cells.sort();
        cells.dedup();
        assert_eq!(cells.len(), 13, "no cell twice");
        assert!(
            matrix
                .iter()
                .all(|s| s.timeout.is_none() && s.ceiling_shape().is_none())
        );
        assert!(plan.scenarios.iter().filter(|s| s.picked_by("5")).count() == 13);
        assert!(
            plan.scenarios
                .iter()
                .filter(|s| s.picked_by("1"))
                .all(|s| s.id.starts_with('1'))
        );
        assert!(!plan.scenarios[0].picked_by("1b"));
        let quick: Vec<&str> = Plan::quick(1)
            .scenarios
            .iter()
            .filter(|s| s.is_noisy() && s.id.starts_with('5'))
            .map(|s| s.id)
            .collect();
        assert_eq!(quick, ["5e", "5h", "5m"]);
    }
}
