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

/// Writes tftpd.8, one page per subcommand (tftpd-stats.8, which tftpd.8 refers to) and
/// tftpd.toml.5 into `dir`; returns their file names.
pub(super) fn write_man_pages(dir: &Path, date: &SourceDate) -> anyhow::Result<Vec<String>> {
    mkdir(dir)?;
    let version = version();
    // `tftpd help` stays in the binary, but a tftpd-help(8) page would only repeat -h.
    let mut cmd = tftpd::cli::Cli::command().disable_help_subcommand(true);
    cmd.build();
    let man = |cmd: clap::Command| {
        clap_mangen::Man::new(cmd)
            .section("8")
            .manual("System Administration")
            .source(format!("tftpd {version}"))
            .date(&date.day)
    };
    let mut written = Vec::new();
    let main = man(cmd.clone());
    let mut page = Vec::new();
    main.render_title(&mut page)?;
    main.render_name_section(&mut page)?;
    main.render_synopsis_section(&mut page)?;
    main.render_description_section(&mut page)?;
    main.render_options_section(&mut page)?;
    main.render_subcommands_section(&mut page)?;
    page.extend_from_slice(TFTPD_8_EXTRA.as_bytes());
    main.render_version_section(&mut page)?;
    write(&dir.join("tftpd.8"), &page, 0o644)?;
    written.push("tftpd.8".to_string());
    for sub in cmd.get_subcommands() {
        // After build(), the display name is the page name tftpd.8 uses: tftpd-stats.
        let name = sub.get_display_name().unwrap_or(sub.get_name()).to_string();
        let mut page = Vec::new();
        man(sub.clone()).render(&mut page)?;
        let file = format!("{name}.8");
        write(&dir.join(&file), &page, 0o644)?;
        written.push(file);
    }

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
    write(&dir.join("tftpd.toml.5"), dated.as_bytes(), 0o644)?;
    written.push("tftpd.toml.5".to_string());
    Ok(written)
}

/// Sections clap does not know: the in.tftpd command line, files, signals, where to read on.
const TFTPD_8_EXTRA: &str = r#".SH IN.TFTPD COMMAND LINE
tftpd also takes the command line of tftp\-hpa's
.BR in.tftpd ,
so that a service written for tftp\-hpa (Debian's
.IR /etc/default/tftpd\-hpa )
runs tftpd by changing only the binary:
.PP
.RS
.B tftpd \-\-listen \-\-user tftp \-\-address :69 \-\-secure /srv/tftp
.RE
.PP
That command line is recognised when tftpd is invoked as
.B in.tftpd
or when a word only it has appears: a single\-dash flag other than
.B \-h
and
.BR \-V ,
a long flag tftpd lacks,
.B \-\-listen
without an address after it, or a directory. A line that also has a flag only tftpd has is
refused, naming one flag of each. The line starts from the built\-in defaults and reads no
configuration file.
.B \-s DIR
is the root (required),
.B \-c
.BR "write = create" ,
.B \-u
.BR user ,
.B \-a
.BR listen ,
.B \-4 \-6
the address family,
.B \-R
.BR port_range ,
.B \-B
.BR protocol.max_blksize ,
.B \-T
.B protocol.timeout_ms
(given in microseconds),
.B \-r
.BR protocol.refuse_options ,
.B \-U
.BR uploads.file_mode ,
.B \-P
.BR pidfile ,
.B \-v
.BR log.level ,
and
.B \-m FILE
reads tftp\-hpa's map file into
.B [[remap]]
rules (a line they cannot express is an error naming it).
.BR \-l ", " \-L ", " \-t " and " \-p
are accepted and logged as not needed. Without
.B \-l
or
.B \-L
(inetd mode) or without
.B \-s
the line is refused.
.B "tftpd \-s \-h"
(or
.B \-h
invoked as
.BR in.tftpd )
prints the in.tftpd flags and what each becomes.
.SH SIGNALS
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
