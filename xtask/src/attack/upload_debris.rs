//! (e) kill -9 during an upload, twice: with `write = "create"`, an upload is cut off by
//! SIGKILL (as the OOM killer or a power cut would end it) after some blocks, the daemon is
//! started again on the same root and the same thing happens once more. Then a third start,
//! so a start-up sweep gets its chance, and whatever is in the root beside the sample files
//! is debris.

use std::time::Duration;

use anyhow::{Context as _, bail};

use super::daemon::{Daemon, Target, Workdir};
use super::peer::Peer;
use super::table::Row;
use super::wire::{OP_ACK, OP_WRQ, block, data, opcode, request};

const CONFIG: &str = "write = \"create\"";
const REPLY: Duration = Duration::from_secs(3);
/// The upload's name.
const REMOTE: &str = "upload.bin";

#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub(crate) kills: usize,
    /// 512-byte blocks acknowledged before each kill.
    pub(crate) blocks: u16,
}

impl Plan {
    pub(crate) const FULL: Self = Self {
        kills: 2,
        blocks: 16,
    };
}

#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) plan: Plan,
    /// Files in the root beside the sample files, with their sizes.
    pub(crate) debris: Vec<(String, u64)>,
}

pub(crate) fn run(target: &Target, plan: Plan) -> anyhow::Result<Outcome> {
    let dir = Workdir::new()?;
    for _ in 0..plan.kills {
        let mut d = Daemon::start(target, &dir, CONFIG)?;
        upload_part(&d, plan.blocks).context("the upload before the kill")?;
        d.kill9()?;
    }
    let _after = Daemon::start(target, &dir, CONFIG)?;
    Ok(Outcome {
        plan,
        debris: dir.extra_files()?,
    })
}

/// Starts an upload and sends `blocks` full blocks, each acknowledged, then stops.
fn upload_part(d: &Daemon, blocks: u16) -> anyhow::Result<()> {
    let p = Peer::new()?;
    p.send(&request(OP_WRQ, REMOTE.as_bytes(), b"octet", &[]), d.addr())?;
    let mut tid = None;
    for n in 0..=blocks {
        if n > 0 {
            let to = tid.context("no transfer port yet")?;
            p.send(&data(n, &[n as u8; 512]), to)?;
        }
        match p.recv(REPLY) {
            Some((r, from)) if opcode(&r) == Some(OP_ACK) && block(&r) == Some(n) => {
                tid = Some(from);
            }
            Some((r, _)) => bail!("block {n}: expected ACK {n}, got {r:?}"),
            None => bail!("block {n}: no ACK within {REPLY:?}"),
        }
    }
    Ok(())
}

impl Outcome {
    pub(crate) fn row(&self) -> Row {
        let p = &self.plan;
        let server = if self.debris.is_empty() {
            "left nothing in the root".to_string()
        } else {
            let files: Vec<String> = self
                .debris
                .iter()
                .map(|(n, size)| format!("`{n}` ({size} B)"))
                .collect();
            format!(
                "left {} file(s) in the root after a restart: {}",
                self.debris.len(),
                files.join(", ")
            )
        };
        Row {
            attack: "e. kill -9 during an upload".into(),
            sent: format!(
                "with write = \"create\": {} uploads of {REMOTE}, each cut off by SIGKILL after \
                 {} blocks ({} B); then a restart",
                p.kills,
                p.blocks,
                usize::from(p.blocks) * 512
            ),
            server,
            legit: "n/a".into(),
            ratio: "n/a".into(),
        }
    }
}
