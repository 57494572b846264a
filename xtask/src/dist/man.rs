//! The documentation the package ships: tftpd(8) rendered from the daemon's clap definitions
//! with the sections clap does not know (signals, files), tftpd.toml(5) from `dist/man/`
//! dated for this build, and the bash, zsh and fish completions.

use std::fs;
use std::path::Path;

use anyhow::{Context as _, bail};
use clap::CommandFactory as _;
use clap_complete::Shell;

use super::files::{mkdir, write};
use super::{SourceDate, version};
use crate::workspace_root;

pub(super) fn write_man_pages(dir: &Path, date: &SourceDate) -> anyhow::Result<()> {
    mkdir(dir)?;
    let version = version();
    let man = clap_mangen::Man::new(tftpd::cli::Cli::command())
        .section("8")
        .manual("System Administration")
        .source(format!("tftpd {version}"))
        .date(&date.day);
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    man.render_subcommands_section(&mut page)?;
    page.extend_from_slice(TFTPD_8_EXTRA.as_bytes());
    man.render_version_section(&mut page)?;
    write(&dir.join("tftpd.8"), &page, 0o644)?;

    let source = workspace_root().join("dist/man/tftpd.toml.5");
    let text =
        fs::read_to_string(&source).with_context(|| format!("reading {}", source.display()))?;
    let placeholder = ".TH TFTPD.TOML 5 \"\" \"tftpd\"";
    if !text.contains(placeholder) {
        bail!("{} has no `{placeholder}` line to date", source.display());
    }
    let dated = text.replace(
        placeholder,
        &format!(".TH TFTPD.TOML 5 \"{}\" \"tftpd {version}\"", date.day),
    );
    write(&dir.join("tftpd.toml.5"), dated.as_bytes(), 0o644)
}

/// Sections clap does not know: files, signals, where to read on.
const TFTPD_8_EXTRA: &str = r#".SH SIGNALS
.TP
.B SIGHUP
Re\-read and validate the configuration; on success new requests use it, on failure the old
one stays in force.
.TP
.BR SIGTERM ", " SIGINT
Stop taking requests, let running transfers finish within
.BR shutdown.grace_period_secs ,
then exit 0.
.SH FILES
.TP
.I /etc/tftpd/tftpd.toml
The configuration, see
.BR tftpd.toml (5).
.TP
.I /srv/tftp
The served directory by default.
.TP
.I /sys/fs/bpf/tftpd
The pinned eBPF counter maps, read by
.BR "tftpd stats" .
.SH SEE ALSO
.BR tftpd.toml (5),
.BR systemd.socket (5)
"#;

pub(super) fn write_completions(dir: &Path) -> anyhow::Result<()> {
    mkdir(dir)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut cmd = tftpd::cli::Cli::command();
        clap_complete::generate_to(shell, &mut cmd, "tftpd", dir)
            .with_context(|| format!("writing the {shell} completion to {}", dir.display()))?;
    }
    Ok(())
}
