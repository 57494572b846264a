//! Which of the two command lines a word list is: tftpd's own (clap, `--root DIR`), or
//! tftp-hpa's in.tftpd (`-s DIR`), which `/etc/default/tftpd-hpa` and scripts written for
//! tftp-hpa pass as they are.
//!
//! in.tftpd's line is recognised when the program is invoked as `in.tftpd` (a symlink), or
//! when a word only in.tftpd's line has appears: a single-dash flag other than `-h`/`-V`
//! (tftpd's flags are all long), a long flag tftpd lacks (`--secure`), `--listen` without an
//! address after it (in.tftpd's `-l`; tftpd's `--listen` always takes ADDR:PORT), or a
//! directory (tftpd takes no positional words except its subcommands). `--user`,
//! `--verbosity`, `--pidfile`, `--help` and `--version` mean the same in both. A line with
//! words only tftpd has as well is refused, naming one word of each.

use std::ffi::OsString;
use std::net::SocketAddr;

use clap::error::ErrorKind;
use clap::{CommandFactory as _, Parser as _};

use super::{Cli, in_tftpd};

impl Cli {
    /// Parses the process's arguments, either command line; prints the error, usage, help or
    /// version and exits when that is what they ask for (as clap's `parse` does).
    pub fn from_env() -> Self {
        let cli = Self::try_parse_words(std::env::args_os()).unwrap_or_else(|e| e.exit());
        if let Some(a) = &cli.in_tftpd {
            if a.help {
                print!("{}", in_tftpd::USAGE);
                std::process::exit(0);
            }
            if a.version {
                println!(
                    "tftpd {} (in.tftpd command line)",
                    env!("CARGO_PKG_VERSION")
                );
                std::process::exit(0);
            }
        }
        cli
    }

    /// Parses a whole argument list, program name first: tftpd's flags, or in.tftpd's (see
    /// [`detect`] for how the two are told apart).
    pub fn try_parse_words<I, T>(argv: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
        let text: Option<Vec<&str>> = argv.iter().map(|a| a.to_str()).collect();
        // in.tftpd's line is read as text; a word that is not UTF-8 goes to clap as it is.
        let Some((program, words)) = text.as_deref().and_then(<[&str]>::split_first) else {
            return Self::try_parse_from(argv);
        };
        match detect(program, words) {
            Err(message) => Err(clap::Error::raw(
                ErrorKind::ArgumentConflict,
                format!("{message}\n"),
            )),
            Ok(Form::Tftpd) => Self::try_parse_from(argv),
            Ok(Form::InTftpd(why)) => match in_tftpd::parse(words) {
                Ok(args) => Ok(Self {
                    in_tftpd: Some(args),
                    ..Self::default()
                }),
                Err(e) => Err(clap::Error::raw(
                    ErrorKind::InvalidValue,
                    format!("{e} (read as in.tftpd's command line, {why})\n"),
                )),
            },
        }
    }
}

/// The two command lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Form {
    /// tftpd's own.
    Tftpd,
    /// in.tftpd's; the reason it was recognised (for error messages).
    InTftpd(String),
}

/// Decides the form of `words` (without the program name), invoked as `program`.
pub(super) fn detect(program: &str, words: &[&str]) -> Result<Form, String> {
    let name = program.rsplit('/').next().unwrap_or(program);
    if name == "in.tftpd" {
        return Ok(Form::InTftpd("invoked as in.tftpd".into()));
    }
    let tftpd = clap_flags();
    let mut theirs: Option<String> = None;
    let mut ours: Option<String> = None;
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        i += 1;
        if w == "--" {
            if let Some(next) = words.get(i) {
                theirs.get_or_insert_with(|| (*next).to_string());
            }
            break;
        }
        if let Some(long) = w.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let takes = |yes: bool| usize::from(yes && inline.is_none());
            if name == "listen" {
                let value = inline.or_else(|| words.get(i).copied());
                if value.is_some_and(|v| v.parse::<SocketAddr>().is_ok()) {
                    ours.get_or_insert_with(|| "--listen ADDR:PORT".into());
                    i += takes(true);
                } else {
                    theirs.get_or_insert_with(|| "--listen".into());
                }
            } else if let Some(&(_, value)) = tftpd.iter().find(|(n, _)| n == name) {
                if in_tftpd::long_takes_value(name).is_none() {
                    ours.get_or_insert_with(|| format!("--{name}"));
                }
                i += takes(value);
            } else if let Some(value) = in_tftpd_long(name) {
                theirs.get_or_insert_with(|| format!("--{name}"));
                i += takes(value);
            }
            // Anything else is unknown to both: the chosen parser names it.
        } else if w.len() > 1 && w.starts_with('-') {
            if w == "-h" || w == "-V" {
                continue;
            }
            theirs.get_or_insert_with(|| w.to_string());
            for (at, c) in w.char_indices().skip(1) {
                if in_tftpd::short_takes_value(c) == Some(true) {
                    i += usize::from(at + c.len_utf8() == w.len());
                    break;
                }
            }
        } else if theirs.is_none() && is_subcommand(w) {
            // `tftpd stats --pin-dir DIR`: the rest is the subcommand's.
            ours.get_or_insert_with(|| w.to_string());
            break;
        } else {
            theirs.get_or_insert_with(|| w.to_string());
        }
    }
    match (theirs, ours) {
        (Some(t), Some(o)) => Err(format!(
            "{t} is in.tftpd's (tftp-hpa) and {o} is tftpd's: one command line takes the flags \
             of one of the two (tftpd(8), IN.TFTPD COMMAND LINE)"
        )),
        (Some(t), None) => Ok(Form::InTftpd(format!("because of {t}"))),
        (None, _) => Ok(Form::Tftpd),
    }
}

/// tftpd's long flags and whether each takes a value, from its clap definition.
fn clap_flags() -> Vec<(String, bool)> {
    let cmd = Cli::command();
    cmd.get_arguments()
        .filter_map(|a| {
            let name = a.get_long()?.to_string();
            Some((name, a.get_action().takes_values()))
        })
        .chain([("help".to_string(), false), ("version".to_string(), false)])
        .collect()
}

fn is_subcommand(w: &str) -> bool {
    w == "help" || Cli::command().get_subcommands().any(|s| s.get_name() == w)
}

/// An in.tftpd long flag, written out or shortened to a unique prefix (getopt_long).
fn in_tftpd_long(name: &str) -> Option<bool> {
    if let Some(v) = in_tftpd::long_takes_value(name) {
        return Some(v);
    }
    let mut matches = in_tftpd::long_names().filter(|l| !name.is_empty() && l.starts_with(name));
    match (matches.next(), matches.next()) {
        (Some(one), None) => in_tftpd::long_takes_value(one),
        _ => None,
    }
}

#[cfg(test)]
pub(in crate::cli) mod tests {
    use super::*;

    #[test]
    fn every_tftpd_line_parses_as_before_the_in_tftpd_form() {
        // What main runs (try_parse_words) must take tftpd's own lines exactly as clap does.
        for line in [
            &["tftpd"][..],
            &EVERY_FLAG[..],
            &["tftpd", "--verbosity", "2", "--listen=0.0.0.0:69"],
            &["tftpd", "--map-test", "\\Boot\\BCD", "--client", "10.0.0.5"],
            &["tftpd", "stats", "--pin-dir", "/sys/fs/bpf/other"],
        ] {
            let words = Cli::try_parse_words(line).expect("parses");
            let clap = Cli::try_parse_from(line).expect("parses");
            assert_eq!(format!("{words:?}"), format!("{clap:?}"), "{line:?}");
            assert!(words.in_tftpd.is_none(), "{line:?}");
        }
        // Errors too: a bad value is still clap's error, naming the allowed values.
        let e = Cli::try_parse_words(["tftpd", "--write", "yes"]).expect_err("invalid");
        assert!(e.to_string().contains("off, create, overwrite"), "{e}");
    }

    #[test]
    fn in_tftpd_lines_fill_only_the_in_tftpd_field() {
        let cli = Cli::try_parse_words(["/usr/sbin/tftpd", "-l", "-s", "/srv/tftp"]).expect("ok");
        let a = cli.in_tftpd.as_ref().expect("the in.tftpd form");
        assert!(a.listen && a.secure);
        assert!(cli.root.is_none() && cli.listen.is_empty() && cli.config.is_none());
        let e = Cli::try_parse_words(["tftpd", "-l", "-B", "9", "-s", "/srv"]).expect_err("-B");
        assert!(
            e.to_string().contains("-B") && e.to_string().contains("because of -l"),
            "the error says why the line was read as in.tftpd's: {e}"
        );
        let e = Cli::try_parse_words(["tftpd", "-s", "/srv", "--root", "/srv"]).expect_err("mix");
        assert_eq!(e.kind(), ErrorKind::ArgumentConflict, "{e}");
    }

    /// A line with every tftpd flag that takes part in serving (program name first); the
    /// contract test in `cli/mod.rs` parses it too.
    pub(in crate::cli) const EVERY_FLAG: [&str; 26] = [
        "tftpd",
        "--config",
        "/etc/x.toml",
        "--root",
        "/srv",
        "--listen",
        "127.0.0.1:69",
        "--listen",
        "[::1]:69",
        "--write",
        "create",
        "--user",
        "tftp",
        "--group",
        "tftp",
        "--log-format",
        "json",
        "--log-level",
        "debug",
        "--pidfile",
        "/run/p",
        "--metrics-listen",
        "127.0.0.1:9169",
        "--ebpf",
        "off",
        "--check-config",
    ];

    fn form(words: &[&str]) -> Result<Form, String> {
        detect("/usr/sbin/tftpd", words)
    }

    fn is_in_tftpd(words: &[&str]) -> bool {
        matches!(form(words), Ok(Form::InTftpd(_)))
    }

    #[test]
    fn invoked_as_in_tftpd_is_always_in_tftpd() {
        assert!(matches!(
            detect("/usr/sbin/in.tftpd", &["--user", "tftp"]),
            Ok(Form::InTftpd(why)) if why.contains("invoked as in.tftpd")
        ));
    }

    #[test]
    fn in_tftpd_only_words_select_in_tftpd() {
        for words in [
            &["-s", "/srv/tftp"][..],
            &["--secure"],
            &["--sec"],
            &["-L"],
            &["--listen", "--user", "tftp"],
            &["--listen"],
            &["--user", "tftp", "/srv/tftp"],
            &["--", "/srv/tftp"],
            &["--verbosity", "2", "-c"],
        ] {
            assert!(is_in_tftpd(words), "{words:?}");
        }
        // The value of a flag is not a directory: `-u tftp` alone names no positional.
        assert!(
            matches!(form(&["-u", "tftp"]), Ok(Form::InTftpd(why)) if why.contains("-u")),
            "reason names the flag"
        );
    }

    #[test]
    fn tftpd_lines_and_shared_flags_stay_tftpd() {
        for words in [
            &[][..],
            &EVERY_FLAG[1..],
            &["--listen=127.0.0.1:69"],
            &["--user", "tftp", "--pidfile", "/run/p", "--verbosity", "2"],
            &["--config", "/etc/x.toml", "--check-config"],
            &["stats", "--pin-dir", "/sys/fs/bpf/x"],
            &["--version"],
            &["-V"],
            &["-h"],
            &["help"],
        ] {
            assert_eq!(form(words), Ok(Form::Tftpd), "{words:?}");
        }
    }

    #[test]
    fn a_mix_is_refused_naming_one_flag_of_each() {
        for (words, theirs, ours) in [
            (&["-s", "/srv", "--config", "x"][..], "-s", "--config"),
            (&["--root", "/srv", "--secure"], "--secure", "--root"),
            (
                &["--listen", "127.0.0.1:69", "--listen"],
                "--listen",
                "--listen ADDR:PORT",
            ),
            (&["--write", "create", "/srv"], "/srv", "--write"),
        ] {
            let e = form(words).expect_err("a mix");
            assert!(
                e.starts_with(&format!("{theirs} is in.tftpd's"))
                    && e.contains(&format!("{ours} is tftpd's")),
                "{words:?}: {e}"
            );
        }
    }
}
