//! Which output `log.target` means on this host. `auto` follows systemd's rule
//! (systemd.exec(5), `$JOURNAL_STREAM`): a service whose stderr is connected to the journal
//! gets `JOURNAL_STREAM=DEVICE:INODE` of that stream, and a program that finds its stderr
//! still is that stream should speak the journal's native protocol, which keeps fields and
//! priorities. A stderr redirected elsewhere (a pipe to a test, `2>file`) no longer matches,
//! so lines go there.

use crate::config::LogTarget;

/// The output chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Lines on stderr.
    Stderr,
    /// The journal's native protocol.
    Journald,
    /// The local syslog socket.
    Syslog,
}

/// What `target` means given `JOURNAL_STREAM` (`journal_stream`) and stderr's device and
/// inode (`stderr`, `None` when stderr is closed).
pub fn resolve(
    target: LogTarget,
    journal_stream: Option<&str>,
    stderr: Option<(u64, u64)>,
) -> Output {
    match target {
        LogTarget::Stderr => Output::Stderr,
        LogTarget::Journald => Output::Journald,
        LogTarget::Syslog => Output::Syslog,
        LogTarget::Auto => {
            let matches = journal_stream
                .and_then(parse_journal_stream)
                .zip(stderr)
                .is_some_and(|(named, actual)| named == actual);
            if matches {
                Output::Journald
            } else {
                Output::Stderr
            }
        }
    }
}

/// `DEVICE:INODE`, both decimal, as systemd writes it.
fn parse_journal_stream(s: &str) -> Option<(u64, u64)> {
    let (dev, ino) = s.trim().split_once(':')?;
    Some((dev.parse().ok()?, ino.parse().ok()?))
}

/// Stderr's device and inode, for [`resolve`].
pub fn stderr_identity() -> Option<(u64, u64)> {
    use std::os::fd::AsFd as _;
    use std::os::unix::fs::MetadataExt as _;
    // A duplicate of the descriptor as a File, for metadata's portable u64 dev and ino.
    let stderr = std::fs::File::from(std::io::stderr().as_fd().try_clone_to_owned().ok()?);
    let meta = stderr.metadata().ok()?;
    Some((meta.dev(), meta.ino()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_uses_the_journal_only_while_stderr_is_the_stream_systemd_named() {
        let stderr = Some((23, 4242));
        for (env, stderr, want) in [
            (Some("23:4242"), stderr, Output::Journald),
            (Some("23:4242\n"), stderr, Output::Journald),
            // Redirected: systemd's variable is inherited, the stream is another one.
            (Some("23:4243"), stderr, Output::Stderr),
            (Some("24:4242"), stderr, Output::Stderr),
            (None, stderr, Output::Stderr),
            (Some("garbage"), stderr, Output::Stderr),
            (Some("23:4242"), None, Output::Stderr),
        ] {
            assert_eq!(
                resolve(LogTarget::Auto, env, stderr),
                want,
                "{env:?} {stderr:?}"
            );
        }
        assert_eq!(resolve(LogTarget::Journald, None, None), Output::Journald);
        assert_eq!(
            resolve(LogTarget::Syslog, Some("23:4242"), stderr),
            Output::Syslog
        );
        assert_eq!(
            resolve(LogTarget::Stderr, Some("23:4242"), stderr),
            Output::Stderr
        );
    }

    #[test]
    fn stderrs_identity_is_what_stat_says_of_it() {
        use std::os::unix::fs::MetadataExt as _;
        let (dev, ino) = stderr_identity().expect("a test has a stderr");
        let meta = std::fs::metadata("/proc/self/fd/2").expect("stat of stderr");
        assert_eq!((dev, ino), (meta.dev(), meta.ino()));
    }
}
