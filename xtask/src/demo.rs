//! `cargo xtask demo`: the built-in demo: the bundled sample root on 127.0.0.1:6969, read-only,
//! no root needed. Ctrl-C stops it (a graceful drain).

use std::process::Command;

use crate::{exec, workspace_root};

pub(crate) fn run() -> anyhow::Result<()> {
    let config = workspace_root().join("docs/examples/demo.toml");
    eprintln!(
        "xtask: starting the demo server on 127.0.0.1:6969 serving demo/root (Ctrl-C to stop)\n\
         xtask: try, in another terminal:  curl tftp://127.0.0.1:6969/hello.txt"
    );
    exec(
        Command::new(env!("CARGO"))
            .args([
                "run",
                "--release",
                "--quiet",
                "--package",
                "tftpd",
                "--",
                "--config",
            ])
            .arg(config)
            // Stay the invoking user: the demo is read-only on loopback, and a checkout in a
            // private home directory would be unreadable after a drop to `nobody`.
            .args(["--user", &current_user()]),
    )
}

fn current_user() -> String {
    Command::new("id")
        .arg("-un")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "nobody".to_string())
}
