//! Turns the samples of a bench run into medians, ratios to the best peer, and Markdown.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::server::Server;

/// What one run of one scenario against one server measured.
#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct Sample {
    pub mb_per_s: f64,
    /// Server CPU (cgroup) during the client run.
    pub cpu_seconds: f64,
    /// Verified payload bytes.
    pub bytes: u64,
    /// Syscalls inside the server's cgroup (None: perf unavailable).
    pub syscalls: Option<u64>,
    /// Context switches of the server's threads over its run (start, the load, the stop).
    pub switches: u64,
    pub init_p50_ms: Option<f64>,
    pub init_p99_ms: Option<f64>,
    pub transfers: u64,
    pub failures: BTreeMap<String, u64>,
    /// Drops at the sockets on port 69 during the run.
    pub listener_drops: u64,
    /// The blksize/windowsize the transfers ran with (`512/1` when the server ignored options).
    pub ran_as: String,
    /// The client run's wall time, seconds.
    pub secs: f64,
    /// DATA the client got again after its ACK had got through, and blocks received.
    pub spurious: u64,
    pub blocks: u64,
}

impl Sample {
    fn failed(&self) -> u64 {
        self.failures.values().sum()
    }
    fn cpu_per_gib(&self) -> Option<f64> {
        (self.bytes > 0).then(|| self.cpu_seconds / (self.bytes as f64 / f64::from(1 << 30)))
    }
    fn switches_per_mib(&self) -> Option<f64> {
        (self.bytes > 0).then(|| self.switches as f64 / (self.bytes as f64 / f64::from(1 << 20)))
    }
    fn spurious_per_1000(&self) -> Option<f64> {
        (self.blocks > 0).then(|| self.spurious as f64 * 1000.0 / self.blocks as f64)
    }
    fn syscalls_per_mib(&self) -> Option<f64> {
        let n = self.syscalls?;
        (self.bytes > 0).then(|| n as f64 / (self.bytes as f64 / f64::from(1 << 20)))
    }
}

/// Each column's median over the runs (taken on its own, as the facts note does).
#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct Summary {
    pub server: &'static str,
    pub runs: usize,
    pub mb_per_s: Option<f64>,
    pub cpu_per_gib: Option<f64>,
    pub syscalls_per_mib: Option<f64>,
    pub switches_per_mib: Option<f64>,
    pub init_p50_ms: Option<f64>,
    pub init_p99_ms: Option<f64>,
    /// Failed transfers over all runs, and transfers attempted.
    pub failed: u64,
    pub transfers: u64,
    pub failure_kinds: BTreeMap<String, u64>,
    pub listener_drops: Option<f64>,
    pub ran_as: String,
    /// The client run's wall time, seconds.
    pub secs: Option<f64>,
    /// Spurious DATA per 1000 blocks received.
    pub spurious_per_1000: Option<f64>,
}

pub(super) fn summarize(server: Server, samples: &[Sample]) -> Summary {
    let med = |f: &dyn Fn(&Sample) -> Option<f64>| median(samples.iter().filter_map(f).collect());
    let mut failure_kinds = BTreeMap::new();
    for s in samples {
        for (k, n) in &s.failures {
            *failure_kinds.entry(k.clone()).or_insert(0) += n;
        }
    }
    let mut ran_as: Vec<&str> = samples.iter().map(|s| s.ran_as.as_str()).collect();
    ran_as.dedup();
    Summary {
        server: server.name(),
        runs: samples.len(),
        mb_per_s: med(&|s| Some(s.mb_per_s)),
        cpu_per_gib: med(&Sample::cpu_per_gib),
        syscalls_per_mib: med(&Sample::syscalls_per_mib),
        switches_per_mib: med(&Sample::switches_per_mib),
        init_p50_ms: med(&|s| s.init_p50_ms),
        init_p99_ms: med(&|s| s.init_p99_ms),
        failed: samples.iter().map(Sample::failed).sum(),
        transfers: samples.iter().map(|s| s.transfers).sum(),
        failure_kinds,
        listener_drops: med(&|s| Some(s.listener_drops as f64)),
        ran_as: ran_as.join(", "),
        secs: med(&|s| Some(s.secs)),
        spurious_per_1000: med(&Sample::spurious_per_1000),
    }
}

/// The median (the mean of the middle two for an even count); None when empty.
fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        f64::midpoint(v[mid - 1], v[mid])
    })
}

/// The best peer's value of one column: the highest throughput, the lowest of the costs.
/// Only peers that ran with the options tftpd ran with compete (a peer that ignored
/// windowsize ran a different transfer); when none did, every peer competes.
pub(super) fn best_peer(
    rows: &[Summary],
    value: impl Fn(&Summary) -> Option<f64>,
    higher: bool,
) -> Option<f64> {
    let ours = rows.iter().find(|r| r.server == Server::Tftpd.name());
    let peers: Vec<&Summary> = rows.iter().filter(|r| !Server::is_ours(r.server)).collect();
    let same_transfer = |r: &&Summary| ours.is_none_or(|o| o.ran_as == r.ran_as);
    let clean = |r: &&Summary| r.failed == 0;
    let narrowed = [
        peers
            .iter()
            .copied()
            .filter(same_transfer)
            .filter(clean)
            .collect::<Vec<_>>(),
        peers.iter().copied().filter(same_transfer).collect(),
        peers.iter().copied().filter(clean).collect(),
        peers,
    ];
    let pool = narrowed.into_iter().find(|p| !p.is_empty())?;
    pool.into_iter()
        .filter_map(value)
        .reduce(|a, b| if (a > b) == higher { a } else { b })
}

/// One scenario's result.
#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct ScenarioResult {
    pub id: &'static str,
    pub title: String,
    pub rows: Vec<Summary>,
    /// The raw loopback ceiling (MB/s) at this scenario's shape, when it has one.
    pub ceiling_mb_per_s: Option<f64>,
}

/// Three significant digits or more: 760, 30.1, 2.25, 0.054.
pub(super) fn num(v: Option<f64>) -> String {
    v.map_or_else(
        || "n/a".to_string(),
        |v| match v.abs() {
            a if a >= 100.0 => format!("{v:.0}"),
            a if a >= 10.0 => format!("{v:.1}"),
            a if a >= 1.0 => format!("{v:.2}"),
            _ => format!("{v:.3}"),
        },
    )
}

pub(super) fn ratio(v: Option<f64>, best: Option<f64>) -> String {
    match (v, best) {
        (Some(v), Some(b)) if b > 0.0 => format!("{:.2}×", v / b),
        _ => "n/a".to_string(),
    }
}

/// The Markdown for one scenario.
pub(super) fn scenario_table(r: &ScenarioResult) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### {}. {}\n", r.id, r.title);
    let _ = writeln!(
        out,
        "| server | ran as (blksize/window) | MB/s | ÷ best peer | server CPU s/GiB | ÷ best peer | syscalls/MiB | ÷ best peer | context switches/MiB | ÷ best peer | init p50 ms | init p99 ms | ÷ best peer | failed / transfers | listener drops |{}",
        if r.ceiling_mb_per_s.is_some() {
            " % of raw ceiling |"
        } else {
            ""
        }
    );
    let cols = if r.ceiling_mb_per_s.is_some() { 16 } else { 15 };
    let _ = writeln!(out, "|{}", "---|".repeat(cols));
    let best_mbs = best_peer(&r.rows, |s| s.mb_per_s, true);
    let best_cpu = best_peer(&r.rows, |s| s.cpu_per_gib, false);
    let best_sys = best_peer(&r.rows, |s| s.syscalls_per_mib, false);
    let best_cs = best_peer(&r.rows, |s| s.switches_per_mib, false);
    let best_p99 = best_peer(&r.rows, |s| s.init_p99_ms, false);
    for s in &r.rows {
        let failed = if s.failure_kinds.is_empty() {
            format!("{} / {}", s.failed, s.transfers)
        } else {
            let kinds: Vec<String> = s
                .failure_kinds
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            format!("{} / {} ({})", s.failed, s.transfers, kinds.join(", "))
        };
        let ceiling = r.ceiling_mb_per_s.map_or(String::new(), |c| {
            format!(
                " {} |",
                s.mb_per_s
                    .map_or("n/a".into(), |m| format!("{:.0} %", m / c * 100.0))
            )
        });
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |{ceiling}",
            s.server,
            s.ran_as,
            num(s.mb_per_s),
            ratio(s.mb_per_s, best_mbs),
            num(s.cpu_per_gib),
            ratio(s.cpu_per_gib, best_cpu),
            num(s.syscalls_per_mib),
            ratio(s.syscalls_per_mib, best_sys),
            num(s.switches_per_mib),
            ratio(s.switches_per_mib, best_cs),
            num(s.init_p50_ms),
            num(s.init_p99_ms),
            ratio(s.init_p99_ms, best_p99),
            failed,
            s.listener_drops
                .map_or("n/a".to_string(), |d| format!("{d:.0}")),
        );
    }
    out
}

/// One line per scenario: tftpd's figures as ratios to the best peer's.
pub(super) fn summary_table(results: &[ScenarioResult]) -> String {
    let mut out = String::from(
        "| scenario | tftpd MB/s ÷ best peer | CPU s/GiB ÷ best peer | syscalls/MiB ÷ best peer | context switches/MiB ÷ best peer | init p99 ÷ best peer | tftpd failed | best peer by MB/s |\n|---|---|---|---|---|---|---|---|\n",
    );
    for r in results {
        let Some(ours) = r.rows.iter().find(|s| s.server == Server::Tftpd.name()) else {
            continue;
        };
        let best_mbs = best_peer(&r.rows, |s| s.mb_per_s, true);
        let best_name = r
            .rows
            .iter()
            .find(|s| !Server::is_ours(s.server) && s.mb_per_s == best_mbs)
            .map_or("n/a", |s| s.server);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} / {} | {best_name} |",
            r.id,
            ratio(ours.mb_per_s, best_mbs),
            ratio(
                ours.cpu_per_gib,
                best_peer(&r.rows, |s| s.cpu_per_gib, false)
            ),
            ratio(
                ours.syscalls_per_mib,
                best_peer(&r.rows, |s| s.syscalls_per_mib, false)
            ),
            ratio(
                ours.switches_per_mib,
                best_peer(&r.rows, |s| s.switches_per_mib, false)
            ),
            ratio(
                ours.init_p99_ms,
                best_peer(&r.rows, |s| s.init_p99_ms, false)
            ),
            ours.failed,
            ours.transfers,
        );
    }
    out
}

/// One line per scenario: tftpd as shipped against tftpd with every fast path off, both
/// measured in the same rounds. Empty when the run left either out.
pub(super) fn fast_path_table(results: &[ScenarioResult]) -> String {
    let mut out = String::from(
        "| scenario | MB/s ÷ portable | CPU s/GiB ÷ portable | syscalls/MiB ÷ portable | init p99 ÷ portable | failed (tftpd, portable) |\n|---|---|---|---|---|---|\n",
    );
    let mut any = false;
    for r in results {
        let find = |s: Server| r.rows.iter().find(|row| row.server == s.name());
        let (Some(ours), Some(portable)) = (find(Server::Tftpd), find(Server::TftpdPortable))
        else {
            continue;
        };
        any = true;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} / {}, {} / {} |",
            r.id,
            ratio(ours.mb_per_s, portable.mb_per_s),
            ratio(ours.cpu_per_gib, portable.cpu_per_gib),
            ratio(ours.syscalls_per_mib, portable.syscalls_per_mib),
            ratio(ours.init_p99_ms, portable.init_p99_ms),
            ours.failed,
            ours.transfers,
            portable.failed,
            portable.transfers,
        );
    }
    if any { out } else { String::new() }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::bench) fn row(server: Server, mbs: f64, ran_as: &str) -> Summary {
        Summary {
            server: server.name(),
            runs: 1,
            mb_per_s: Some(mbs),
            cpu_per_gib: Some(100.0 / mbs),
            syscalls_per_mib: None,
            switches_per_mib: Some(10.0),
            init_p50_ms: Some(1.0),
            init_p99_ms: Some(2.0),
            failed: 0,
            transfers: 1,
            failure_kinds: BTreeMap::new(),
            listener_drops: Some(0.0),
            ran_as: ran_as.into(),
            secs: Some(1.0 / mbs),
            spurious_per_1000: Some(0.0),
        }
    }

    #[test]
    fn medians_take_the_middle() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![f64::NAN]), None);
        assert_eq!(median(vec![]), None);
    }

    #[test]
    fn the_best_peer_ran_the_same_transfer() {
        let rows = vec![
            row(Server::Tftpd, 100.0, "1428/16"),
            row(Server::TftpHpa, 300.0, "1428/1"),
            row(Server::Atftpd, 200.0, "1428/16"),
        ];
        // tftp-hpa is faster but ignored windowsize: atftpd is the peer to beat.
        assert_eq!(best_peer(&rows, |s| s.mb_per_s, true), Some(200.0));
        assert_eq!(best_peer(&rows, |s| s.cpu_per_gib, false), Some(0.5));
        // A peer whose transfers failed is not the reference while a clean one exists.
        let mut failing = row(Server::Atftpd, 900.0, "1428/16");
        failing.failed = 3;
        let with_failure = vec![
            row(Server::Tftpd, 100.0, "1428/16"),
            failing,
            row(Server::Dnsmasq, 80.0, "1428/16"),
        ];
        assert_eq!(best_peer(&with_failure, |s| s.mb_per_s, true), Some(80.0));
        let lone = vec![
            row(Server::Tftpd, 100.0, "1428/16"),
            row(Server::Dnsmasq, 50.0, "1428/1"),
        ];
        assert_eq!(best_peer(&lone, |s| s.mb_per_s, true), Some(50.0));
        // The portable configuration of this daemon is never the peer to beat.
        let with_portable = vec![
            row(Server::Tftpd, 100.0, "1428/1"),
            row(Server::TftpdPortable, 400.0, "1428/1"),
            row(Server::Dnsmasq, 50.0, "1428/1"),
        ];
        assert_eq!(best_peer(&with_portable, |s| s.mb_per_s, true), Some(50.0));
        let fast = fast_path_table(&[ScenarioResult {
            id: "1b",
            title: "t".into(),
            rows: with_portable,
            ceiling_mb_per_s: None,
        }]);
        assert!(
            fast.contains("| 1b | 0.25× | 4.00× | n/a | 1.00× | 0 / 1, 0 / 1 |"),
            "{fast}"
        );
        let table = summary_table(&[ScenarioResult {
            id: "1e",
            title: "t".into(),
            rows,
            ceiling_mb_per_s: None,
        }]);
        assert!(
            table.contains("| 1e | 0.50× | 2.00× | n/a | 1.00× | 1.00× | 0 / 1 | atftpd |"),
            "{table}"
        );
    }
}
