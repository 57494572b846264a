//! (d) Log forging: requests whose client text (file name, mode, option name and value, and a
//! client's ERROR message) carries CR/LF and a line made to look like an audit record. A
//! forged line is one that starts with the attacker's fake timestamp after a CR or LF. The
//! same requests go to a second daemon logging JSON, whose every line must stay one valid
//! object.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use super::daemon::{Daemon, Target, Workdir, wait_until};
use super::peer::Peer;
use super::table::Row;
use super::wire::{OP_DATA, OP_OACK, OP_RRQ, error, opcode, request};

/// The fake record's start: a timestamp no real line of this run can carry.
const FAKE_TIME: &str = "1999-12-31T23:59:59.999999Z";
/// How long the server may take to answer each request.
const REPLY: Duration = Duration::from_secs(3);
/// How long the log may take to show each request.
const LOGGED: Duration = Duration::from_secs(3);

/// Where the client text goes.
pub(crate) const FIELDS: [&str; 5] = ["name", "mode", "option-name", "option-value", "error"];

/// The forged audit line for `field`, after a CR/LF.
fn forged(field: &str) -> Vec<u8> {
    format!(
        "\r\n{FAKE_TIME}  WARN tftpd::audit: upload stored peer=192.0.2.1:69 file=atk-forged-{field}"
    )
    .into_bytes()
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Outcome {
    /// Fields whose forged line appeared as a line of its own in the text log.
    pub(crate) text_forged: BTreeSet<String>,
    pub(crate) json_lines: usize,
    /// JSON log lines that are not one valid JSON object.
    pub(crate) json_invalid: Vec<String>,
    pub(crate) json_forged: BTreeSet<String>,
}

pub(crate) fn run(target: &Target) -> anyhow::Result<Outcome> {
    let dir = Workdir::new()?;
    let text = attack(target, &dir, "")?;
    let json = attack(target, &dir, "[log]\nformat = \"json\"\n")?;
    let mut out = Outcome {
        text_forged: forged_fields(&text),
        json_forged: forged_fields(&json),
        ..Outcome::default()
    };
    for line in json.lines().filter(|l| !l.trim().is_empty()) {
        out.json_lines += 1;
        let valid = serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| v.is_object());
        if !valid {
            out.json_invalid.push(line.to_string());
        }
    }
    Ok(out)
}

/// Sends every hostile request to a fresh daemon started with `config`; returns its log.
fn attack(target: &Target, dir: &Workdir, config: &str) -> anyhow::Result<String> {
    let d = Daemon::start(target, dir, config)?;
    let f = |field| forged(field);
    let name = [b"f.bin".as_slice(), &f("name")].concat();
    let mode = [b"octet".as_slice(), &f("mode")].concat();
    let key = [b"blksize".as_slice(), &f("option-name")].concat();
    let value = [b"512".as_slice(), &f("option-value")].concat();
    let requests: [Vec<u8>; 4] = [
        request(OP_RRQ, &name, b"octet", &[]),
        request(OP_RRQ, b"f.bin", &mode, &[]),
        request(OP_RRQ, b"f.bin", b"octet", &[(&key, b"512")]),
        request(OP_RRQ, b"f.bin", b"octet", &[(b"blksize", &value)]),
    ];
    let mut peers = Vec::new();
    for r in &requests {
        let p = Peer::new()?;
        p.send(r, d.addr())?;
        // A transfer that started anyway is ended, so it logs its end now.
        if let Some((reply, tid)) = p.recv(REPLY)
            && matches!(opcode(&reply), Some(OP_DATA | OP_OACK))
        {
            p.send(&error(0, b"done"), tid)?;
        }
        peers.push(p);
    }
    // The client's own ERROR message: sent in the middle of a real download.
    let p = Peer::new()?;
    p.send(&request(OP_RRQ, b"f.bin", b"octet", &[]), d.addr())?;
    if let Some((_, tid)) = p.recv(REPLY) {
        p.send(&error(0, &[b"bye".as_slice(), &f("error")].concat()), tid)?;
    }
    peers.push(p);
    let shown = |a: SocketAddr| d.log_text().contains(&a.to_string());
    for p in &peers {
        // Not every refusal need name its peer; the wait is only for those that do.
        wait_until(LOGGED, || shown(p.addr()));
    }
    // The last transfers' end lines follow their peers' first lines.
    std::thread::sleep(Duration::from_millis(300));
    Ok(d.log_text())
}

/// The fields whose fake record starts a line of `log` (split at CR and at LF: a bare CR
/// forges a line on a terminal just as well).
fn forged_fields(log: &str) -> BTreeSet<String> {
    log.split(['\r', '\n'])
        .filter(|l| l.starts_with(FAKE_TIME))
        .filter_map(|l| l.split("atk-forged-").nth(1))
        .map(|rest| {
            rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

impl Outcome {
    pub(crate) fn row(&self) -> Row {
        let list = |s: &BTreeSet<String>| {
            if s.is_empty() {
                "none".to_string()
            } else {
                s.iter().cloned().collect::<Vec<_>>().join(", ")
            }
        };
        Row {
            attack: "d. log forging".into(),
            sent: format!(
                "{} requests carrying CR/LF and a fake audit line in: {}",
                FIELDS.len(),
                FIELDS.join(", ")
            ),
            server: format!(
                "text log: forged lines from {}; JSON log: {} lines, {} not valid JSON, forged \
                 lines from {}",
                list(&self.text_forged),
                self.json_lines,
                self.json_invalid.len(),
                list(&self.json_forged)
            ),
            legit: "n/a".into(),
            ratio: "n/a".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forged_line_is_found_after_cr_or_lf_only() {
        let log = format!(
            "2025-01-01T00:00:00Z INFO transfer{{file=f.bin\r\n{FAKE_TIME}  WARN x file=atk-forged-name}}: ok\n\
             2025-01-01T00:00:01Z INFO file=\"f.bin\\n{FAKE_TIME} file=atk-forged-mode\"\n"
        );
        let found = forged_fields(&log);
        assert_eq!(
            found.into_iter().collect::<Vec<_>>(),
            ["name"],
            "an escaped LF forges nothing"
        );
    }
}
