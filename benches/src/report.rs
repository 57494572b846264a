//! What a run reports, as text for people and JSON (serde) for `cargo xtask bench`, and the
//! arithmetic that turns transfer records into it.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::client::TransferRecord;
use crate::link::ImpairCounts;
use crate::stats::Spread;

/// The result of one load run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// `download` or `upload`.
    pub direction: String,
    /// Concurrent clients.
    pub clients: u32,
    /// Transfers attempted.
    pub transfers: u64,
    /// Transfers that verified.
    pub ok: u64,
    /// Payload bytes of the transfers that verified.
    pub bytes: u64,
    /// From the first request to the end of the last transfer, seconds.
    pub wall_secs: f64,
    /// `bytes` per second in MB (10^6 bytes).
    pub mb_per_s: f64,
    /// `bytes` per second in MiB (2^20 bytes).
    pub mib_per_s: f64,
    /// Verified transfers per second.
    pub transfers_per_s: f64,
    /// Request to first DATA/OACK (download) or ACK/OACK (upload), over every transfer that
    /// got an answer.
    pub init_latency: Option<Spread>,
    /// Request to last ACK, over the transfers that verified.
    pub duration: Option<Spread>,
    /// The blksize and windowsize transfers ran with, and how many ran with each (a
    /// server may lower or ignore what was asked for).
    pub negotiated: Vec<Negotiated>,
    /// Failed transfers by kind: `timeout`, `error_N`, `corrupt`, `short`, `protocol`, `io`.
    pub failures: BTreeMap<String, u64>,
    /// Datagrams the clients sent again.
    pub retransmits: u64,
    /// DATA received again although the ACK of that block had got through: the server
    /// resent before the answer could reach it (see `TransferRecord::spurious`).
    #[serde(default)]
    pub spurious: u64,
    /// Data blocks received in order, over every download.
    #[serde(default)]
    pub blocks: u64,
    /// Datagrams the client-side impairment dropped, duplicated or held back.
    pub impaired: Impaired,
    /// Uploaded files read back from the server's root and compared (0 unless asked).
    pub stored_checked: u64,
}

/// One blksize/windowsize pair and how many transfers ran with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Negotiated {
    /// Bytes per block.
    pub blksize: u16,
    /// Blocks per window.
    pub windowsize: u16,
    /// Transfers that ran with these values.
    pub transfers: u64,
}

/// [`ImpairCounts`] in the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Impaired {
    /// Dropped.
    pub dropped: u64,
    /// Duplicated.
    pub duplicated: u64,
    /// Held back to be overtaken.
    pub held: u64,
}

/// Bytes per second in MB (10^6) and MiB (2^20); zero for an empty interval.
pub fn throughput(bytes: u64, wall: Duration) -> (f64, f64) {
    let secs = wall.as_secs_f64();
    if secs <= 0.0 {
        return (0.0, 0.0);
    }
    let per_s = bytes as f64 / secs;
    (per_s / 1e6, per_s / f64::from(1u32 << 20))
}

impl Report {
    /// Sums the records of one run.
    pub fn build(
        direction: &str,
        clients: u32,
        records: &[TransferRecord],
        wall: Duration,
    ) -> Self {
        let ok: Vec<&TransferRecord> = records.iter().filter(|r| r.outcome.is_ok()).collect();
        let bytes = ok.iter().map(|r| r.bytes).sum();
        let mut failures = BTreeMap::new();
        for r in records {
            if let Err(f) = r.outcome {
                *failures.entry(f.label()).or_insert(0) += 1;
            }
        }
        let mut pairs: BTreeMap<(u16, u16), u64> = BTreeMap::new();
        for a in records.iter().filter_map(|r| r.agreed) {
            *pairs.entry((a.blksize, a.windowsize)).or_insert(0) += 1;
        }
        let mut counts = ImpairCounts::default();
        records.iter().for_each(|r| counts.add(&r.impaired));
        let mut init: Vec<Duration> = records.iter().filter_map(|r| r.init_latency).collect();
        let mut durations: Vec<Duration> = ok.iter().map(|r| r.duration).collect();
        let (mb_per_s, mib_per_s) = throughput(bytes, wall);
        let secs = wall.as_secs_f64();
        Self {
            direction: direction.to_string(),
            clients,
            transfers: records.len() as u64,
            ok: ok.len() as u64,
            bytes,
            wall_secs: secs,
            mb_per_s,
            mib_per_s,
            transfers_per_s: if secs > 0.0 {
                ok.len() as f64 / secs
            } else {
                0.0
            },
            init_latency: Spread::of(&mut init),
            duration: Spread::of(&mut durations),
            negotiated: pairs
                .into_iter()
                .map(|((blksize, windowsize), transfers)| Negotiated {
                    blksize,
                    windowsize,
                    transfers,
                })
                .collect(),
            failures,
            retransmits: records.iter().map(|r| r.retransmits).sum(),
            spurious: records.iter().map(|r| r.spurious).sum(),
            blocks: records.iter().map(|r| r.blocks).sum(),
            impaired: Impaired {
                dropped: counts.dropped,
                duplicated: counts.duplicated,
                held: counts.held,
            },
            stored_checked: 0,
        }
    }

    /// Counts a failure found after the run (a stored upload that does not match).
    pub fn add_failure(&mut self, label: String) {
        *self.failures.entry(label).or_insert(0) += 1;
    }

    /// Failed transfers and checks, all kinds together.
    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {} clients, {} transfers, {} ok, {} failed",
            self.direction,
            self.clients,
            self.transfers,
            self.ok,
            self.failed()
        )?;
        writeln!(
            f,
            "bytes {} in {:.3} s: {:.2} MB/s ({:.2} MiB/s), {:.1} transfers/s",
            self.bytes, self.wall_secs, self.mb_per_s, self.mib_per_s, self.transfers_per_s
        )?;
        for (name, spread) in [
            ("init latency", self.init_latency),
            ("duration", self.duration),
        ] {
            match spread {
                Some(s) => writeln!(
                    f,
                    "{name}: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                    s.p50_ms, s.p99_ms, s.max_ms
                )?,
                None => writeln!(f, "{name}: no samples")?,
            }
        }
        let pairs: Vec<String> = self
            .negotiated
            .iter()
            .map(|n| {
                format!(
                    "blksize {} windowsize {} ({} transfers)",
                    n.blksize, n.windowsize, n.transfers
                )
            })
            .collect();
        if !pairs.is_empty() {
            writeln!(f, "negotiated: {}", pairs.join(", "))?;
        }
        let kinds: Vec<String> = self
            .failures
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        writeln!(
            f,
            "failures: {}",
            if kinds.is_empty() {
                "none".to_string()
            } else {
                kinds.join(", ")
            }
        )?;
        writeln!(f, "retransmits (client): {}", self.retransmits)?;
        if self.blocks > 0 {
            writeln!(
                f,
                "spurious DATA (server resent after our ACK got through): {} of {} blocks",
                self.spurious, self.blocks
            )?;
        }
        let i = self.impaired;
        if i != Impaired::default() {
            writeln!(
                f,
                "impairment: {} dropped, {} duplicated, {} held back",
                i.dropped, i.duplicated, i.held
            )?;
        }
        if self.stored_checked > 0 {
            writeln!(f, "stored files checked: {}", self.stored_checked)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{Agreed, Failure};

    fn record(outcome: Result<(), Failure>, bytes: u64, ms: u64) -> TransferRecord {
        TransferRecord {
            outcome,
            bytes,
            init_latency: Some(Duration::from_millis(ms / 10)),
            agreed: Some(Agreed {
                windowsize: if bytes > 0 { 4 } else { 1 },
                ..Agreed::defaults(Duration::from_secs(1))
            }),
            duration: Duration::from_millis(ms),
            retransmits: 2,
            spurious: 1,
            blocks: 7,
            impaired: ImpairCounts {
                dropped: 1,
                duplicated: 0,
                held: 3,
            },
            remote: None,
        }
    }

    #[test]
    fn megabytes_and_mebibytes_use_their_own_units() {
        let (mb, mib) = throughput(2_097_152, Duration::from_secs(2));
        assert!((mb - 1.048_576).abs() < 1e-9, "MB/s is 10^6 bytes: {mb}");
        assert!((mib - 1.0).abs() < 1e-9, "MiB/s is 2^20 bytes: {mib}");
        assert_eq!(throughput(5, Duration::ZERO), (0.0, 0.0));
    }

    #[test]
    fn only_verified_transfers_count_as_bytes_and_every_failure_by_kind() {
        let records = [
            record(Ok(()), 1000, 10),
            record(Ok(()), 1000, 30),
            record(Err(Failure::Error(1)), 0, 1),
            record(Err(Failure::Corrupt), 1000, 20),
            record(Err(Failure::Error(1)), 0, 1),
        ];
        let r = Report::build("download", 5, &records, Duration::from_secs(1));
        assert_eq!((r.transfers, r.ok, r.bytes), (5, 2, 2000));
        assert_eq!(r.failed(), 3);
        assert_eq!(r.failures.get("error_1"), Some(&2));
        assert_eq!(r.failures.get("corrupt"), Some(&1));
        assert_eq!(r.transfers_per_s, 2.0);
        assert_eq!(r.retransmits, 10, "retransmits of every transfer");
        assert_eq!(
            (r.spurious, r.blocks),
            (5, 35),
            "spurious DATA and blocks of every transfer"
        );
        assert_eq!(r.impaired.held, 15);
        assert_eq!(
            r.negotiated,
            vec![
                Negotiated {
                    blksize: 512,
                    windowsize: 1,
                    transfers: 2
                },
                Negotiated {
                    blksize: 512,
                    windowsize: 4,
                    transfers: 3
                }
            ],
            "transfers counted per blksize/windowsize pair"
        );
        let d = r.duration.expect("durations of the verified transfers");
        assert_eq!((d.p50_ms, d.max_ms), (10.0, 30.0));
        let back: Report =
            serde_json::from_str(&serde_json::to_string(&r).expect("json")).expect("parse back");
        assert_eq!(back, r, "the JSON form round-trips");
        let text = r.to_string();
        assert!(text.contains("corrupt 1, error_1 2"), "{text}");
    }
}
