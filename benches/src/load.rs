//! Runs a [`LoadSpec`]: N clients on a multi-threaded tokio runtime, each a task running its
//! transfers one after the other over a fresh socket each, then the report. One socket per
//! transfer (not per client) because a server tells transfers apart by the client's port.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use crate::client::{self, Ctx, Failure, TransferRecord};
use crate::content::check_generated;
use crate::report::Report;
use crate::spec::{LoadSpec, SpecError, Stop, Transfer};

/// Why a run could not take place (failed transfers are not errors: they are in the report).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The spec is invalid.
    #[error("invalid load spec")]
    Spec(#[from] SpecError),
    /// The async runtime could not start.
    #[error("starting the async runtime")]
    Runtime(#[source] std::io::Error),
    /// A client task panicked.
    #[error("a client task failed: {0}")]
    Task(String),
    /// The raw ceiling's sockets or thread failed.
    #[error("raw ceiling: {what}")]
    Ceiling {
        /// What was being done.
        what: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Runs `spec` on a runtime of its own and returns the report. Each client holds one
/// socket at a time (two while a finished impaired download dallies), so a caller running
/// more than about 1000 clients should raise `RLIMIT_NOFILE` first, as `tftp-load` does.
pub fn run(spec: &LoadSpec) -> Result<Report, LoadError> {
    spec.validate()?;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = spec.threads {
        builder.worker_threads(n.max(1));
    }
    let rt = builder
        .enable_all()
        .thread_name("tftp-load")
        .build()
        .map_err(LoadError::Runtime)?;
    rt.block_on(run_async(Arc::new(spec.clone())))
}

/// Runs `spec` on the current tokio runtime (which must be multi-threaded for the load not
/// to be limited by the generator).
pub async fn run_async(spec: Arc<LoadSpec>) -> Result<Report, LoadError> {
    spec.validate()?;
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let dallies = TaskTracker::new();
    for client in 0..spec.clients {
        let spec = spec.clone();
        let dallies = dallies.clone();
        tasks.spawn(async move { run_client(&spec, client, start, &dallies).await });
    }
    let mut records = Vec::new();
    while let Some(r) = tasks.join_next().await {
        records.extend(r.map_err(|e| LoadError::Task(e.to_string()))?);
    }
    let wall = start.elapsed();
    // The dallies outlive their transfers (they are not timed), but not the run: a delayed
    // final ACK still in a link's queue would otherwise be dropped with the runtime, and the
    // server would retransmit its last block until it gave up.
    dallies.close();
    dallies.wait().await;
    let direction = match spec.transfer {
        Transfer::Download { .. } => "download",
        Transfer::Upload { .. } => "upload",
    };
    let mut report = Report::build(direction, spec.clients, &records, wall);
    if let Transfer::Upload {
        size,
        stored_root: Some(root),
        ..
    } = &spec.transfer
    {
        check_stored(&mut report, &records, root, *size, spec.impairment.seed);
    }
    Ok(report)
}

/// One client: transfers back to back until its repeat count or the run's duration is done.
async fn run_client(
    spec: &LoadSpec,
    client: u32,
    start: Instant,
    dallies: &TaskTracker,
) -> Vec<TransferRecord> {
    let mut records = Vec::new();
    for repeat in 0u64.. {
        let more = match spec.stop {
            Stop::Repeat(n) => repeat < u64::from(n),
            Stop::Duration(d) => start.elapsed() < d,
        };
        if !more {
            break;
        }
        let ctx = Ctx {
            spec,
            dallies,
            client,
            repeat,
        };
        let record = match &spec.transfer {
            Transfer::Download { file, expect } => client::download(ctx, file, expect).await,
            Transfer::Upload { remote, size, .. } => {
                let name = remote_name(remote, client, repeat);
                client::upload(ctx, &name, *size, spec.impairment.seed).await
            }
        };
        records.push(record);
    }
    records
}

/// `template` with `{client}` and `{repeat}` replaced.
pub fn remote_name(template: &str, client: u32, repeat: u64) -> String {
    template
        .replace("{client}", &client.to_string())
        .replace("{repeat}", &repeat.to_string())
}

/// Reads every successfully uploaded file back from the server's root and compares it with
/// the content sent; a mismatch is a failure of kind `corrupt` or `short`. Each name is read
/// once: repeated uploads to one name carry the same content.
fn check_stored(
    report: &mut Report,
    records: &[TransferRecord],
    root: &Path,
    size: u64,
    seed: u64,
) {
    let names: BTreeSet<&str> = records
        .iter()
        .filter(|r| r.outcome.is_ok())
        .filter_map(|r| r.remote.as_deref())
        .collect();
    for name in names {
        let verdict = match std::fs::read(root.join(name)) {
            Ok(data) => check_generated(seed, size, &data).map_err(Failure::from),
            Err(_) => Err(Failure::Short),
        };
        report.stored_checked += 1;
        if let Err(f) = verdict {
            report.add_failure(f.label());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_names_substitute_client_and_repeat() {
        assert_eq!(remote_name("up/{client}-{repeat}.bin", 3, 7), "up/3-7.bin");
        assert_eq!(remote_name("fixed", 3, 7), "fixed");
    }
}
