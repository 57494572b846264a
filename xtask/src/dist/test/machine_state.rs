//! What the package test changes on the machine and must undo: the tftp user and the
//! served directory postinst makes, the file the test serves, the units' enable links; and
//! the purge that takes the package away again, checked to leave nothing behind.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use super::super::{PACKAGE, UNIT_DIR, capture};
use super::{ROOT, TOOL_TIMEOUT_SECS};
use crate::exec;

/// What the package (and this test) may add that the test must take away again.
pub(super) struct MachineState {
    had_tftp_user: bool,
    had_root: bool,
    test_file: PathBuf,
}

impl MachineState {
    pub(super) fn record() -> Self {
        Self {
            had_tftp_user: capture(Command::new("getent").args(["passwd", "tftp"])).is_ok(),
            had_root: Path::new(ROOT).is_dir(),
            test_file: test_file(),
        }
    }

    /// Purges the package, then removes the user and directory if they were not there before.
    pub(super) fn restore(&self) -> anyhow::Result<()> {
        let _ = std::fs::remove_file(&self.test_file);
        let purge =
            exec(Command::new("timeout").args([TOOL_TIMEOUT_SECS, "dpkg", "--purge", PACKAGE]));
        if !self.had_root {
            // postinst made it and, by design, purge keeps it (it may hold boot images).
            let _ = std::fs::remove_dir(ROOT);
        }
        if !self.had_tftp_user {
            exec(Command::new("userdel").arg("tftp"))?;
            let _ = Command::new("groupdel").arg("tftp").status();
        }
        purge?;
        let dangling: Vec<&str> = ENABLE_LINKS
            .iter()
            .map(|(link, _)| *link)
            .filter(|link| std::fs::symlink_metadata(link).is_ok())
            .collect();
        for link in &dangling {
            let _ = std::fs::remove_file(link);
        }
        if !dangling.is_empty() {
            bail!(
                "dpkg --purge left the units' enable links behind: {}",
                dangling.join(", ")
            );
        }
        let left = capture(Command::new("dpkg-query").args(["-W", "-f=${Status}", PACKAGE]));
        if let Ok(status) = left
            && !status.contains("not-installed")
        {
            bail!("{PACKAGE} is still installed after dpkg --purge: {status}");
        }
        Ok(())
    }
}

/// The links `systemctl enable tftpd.service tftpd.socket` makes, and their targets.
const ENABLE_LINKS: [(&str, &str); 2] = [
    (
        "/etc/systemd/system/multi-user.target.wants/tftpd.service",
        "tftpd.service",
    ),
    (
        "/etc/systemd/system/sockets.target.wants/tftpd.socket",
        "tftpd.socket",
    ),
];

/// Enables the units as `systemctl enable` would (PID 1 here need not be systemd), so the
/// purge can be checked to take the links away again.
pub(super) fn enable_as_an_administrator() -> anyhow::Result<()> {
    for (link, unit) in ENABLE_LINKS {
        let link = Path::new(link);
        if let Some(dir) = link.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let _ = std::fs::remove_file(link);
        std::os::unix::fs::symlink(format!("{UNIT_DIR}/{unit}"), link)
            .with_context(|| format!("linking {}", link.display()))?;
    }
    Ok(())
}

/// The file the test serves: under the packaged root, named so nobody's file is touched.
pub(super) fn test_file() -> PathBuf {
    Path::new(ROOT).join(format!("xtask-dist-test-{}.bin", std::process::id()))
}
