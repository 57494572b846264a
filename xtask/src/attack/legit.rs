//! Legitimate clients, the other side of every attack: tftp-load downloads, every byte
//! verified, and what they saw (how many were served, how long it took, why the others
//! failed). `cargo xtask attack` runs the release `tftp-load` binary ([`Binary`]), so the
//! clients are not slower than the daemon they measure; the tests run tftp-load's library in
//! process through the same [`Runner`] seam.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use anyhow::Context as _;
use tftpd_benches::Report;
use tftpd_benches::spec::MAX_CLIENTS;

/// Runs one tftp-load download run of at most [`MAX_CLIENTS`] clients.
pub(crate) trait Runner: Send + Sync + std::fmt::Debug {
    /// `load` against `server`; `file` is a local copy of the served file to verify against.
    fn run_one(&self, server: SocketAddr, file: &Path, load: Load) -> anyhow::Result<Report>;
}

/// Who runs the clients.
#[derive(Debug, Clone)]
pub(crate) struct Clients(pub(crate) Arc<dyn Runner>);

/// The `tftp-load` binary at this path (`get --json`).
#[derive(Debug)]
pub(crate) struct Binary(pub(crate) PathBuf);

impl Runner for Binary {
    fn run_one(&self, server: SocketAddr, file: &Path, load: Load) -> anyhow::Result<Report> {
        let mut cmd = Command::new(&self.0);
        cmd.args(["get", "--json", "--server", &server.to_string()])
            .args(["--file", load.file, "--verify"])
            .arg(file)
            .args(["--clients", &load.clients.to_string()]);
        if let Some(b) = load.blksize {
            cmd.args(["--blksize", &b.to_string()]);
        }
        // Exit 1 means some transfers failed: still a report, and a result here.
        let out = cmd
            .output()
            .with_context(|| format!("running {}", self.0.display()))?;
        serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "tftp-load gave no report ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }
}

/// One load: `clients` concurrent downloads of a sample file, one each.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Load {
    pub(crate) clients: u32,
    pub(crate) file: &'static str,
    pub(crate) blksize: Option<u16>,
}

impl Load {
    /// What the legitimate clients of most rows do: 10 × 1 MiB at blksize 1428.
    pub(crate) const STANDARD: Self = Self {
        clients: 10,
        file: "legit.bin",
        blksize: Some(1428),
    };
}

/// What a load's clients saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Served {
    pub(crate) clients: u64,
    pub(crate) ok: u64,
    /// Failed downloads by kind (`error_0` is "server busy", `timeout`, ...).
    pub(crate) failures: BTreeMap<String, u64>,
    /// From the first request to the last transfer's end, seconds.
    pub(crate) wall_secs: f64,
    /// The slowest verified download, milliseconds.
    pub(crate) max_ms: Option<f64>,
}

impl Served {
    pub(crate) fn all(&self) -> bool {
        self.clients > 0 && self.ok == self.clients
    }

    fn add(&mut self, r: &Report) {
        self.clients += u64::from(r.clients);
        self.ok += r.ok;
        for (k, n) in &r.failures {
            *self.failures.entry(k.clone()).or_insert(0) += n;
        }
        self.wall_secs = self.wall_secs.max(r.wall_secs);
        if let Some(d) = r.duration {
            self.max_ms = Some(self.max_ms.map_or(d.max_ms, |m: f64| m.max(d.max_ms)));
        }
    }

    /// "all 10 in 0.52 s (1.08× baseline)", or "4 of 10 ..." with the failure kinds.
    pub(crate) fn describe(&self, baseline: Option<&Self>) -> String {
        let mut s = if self.all() {
            format!("all {} in {:.2} s", self.clients, self.wall_secs)
        } else {
            format!("{} of {} in {:.2} s", self.ok, self.clients, self.wall_secs)
        };
        if let Some(b) = baseline.filter(|b| b.wall_secs > 0.0 && self.ok > 0) {
            s += &format!(" ({:.2}× baseline)", self.wall_secs / b.wall_secs);
        }
        if !self.failures.is_empty() {
            let kinds: Vec<String> = self
                .failures
                .iter()
                .map(|(k, n)| format!("{n} {}", failure_text(k)))
                .collect();
            s += &format!("; {}", kinds.join(", "));
        }
        s
    }
}

/// A failure kind as the table says it.
fn failure_text(kind: &str) -> String {
    match kind {
        "error_0" => "ERROR 0".into(),
        "timeout" => "timed out".into(),
        other => other.replace('_', " "),
    }
}

impl Clients {
    /// Runs `load` against `server` (whose root is `root`) and waits for every client.
    /// Over tftp-load's per-run limit the clients are split into equal runs started together.
    pub(crate) fn run(
        &self,
        server: SocketAddr,
        root: &Path,
        load: Load,
    ) -> anyhow::Result<Served> {
        let runs = load.clients.div_ceil(MAX_CLIENTS);
        let per_run: Vec<u32> = (0..runs)
            .map(|i| load.clients / runs + u32::from(i < load.clients % runs))
            .collect();
        let reports: Vec<anyhow::Result<Report>> = std::thread::scope(|s| {
            let handles: Vec<_> = per_run
                .iter()
                .map(|&clients| {
                    let load = Load { clients, ..load };
                    s.spawn(move || self.0.run_one(server, &root.join(load.file), load))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| anyhow::bail!("a client run panicked"))
                })
                .collect()
        });
        let mut served = Served::default();
        for r in reports {
            served.add(&r?);
        }
        Ok(served)
    }
}
