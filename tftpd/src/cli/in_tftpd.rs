//! tftp-hpa's `in.tftpd` command line (5.2, the one Debian's tftpd-hpa runs), parsed as its
//! `getopt_long` parses it: short flags cluster (`-vvs`), a value follows its flag or the next
//! word (`-uftp`, `-u ftp`, `--user=ftp`, `--user ftp`), a long flag may be shortened to any
//! unique prefix (`--sec`), words that are not flags are the directories wherever they stand,
//! and `--` ends the flags. Values are checked with in.tftpd's own ranges, so a line in.tftpd
//! refuses is refused here too. What each flag becomes is `merge::in_tftpd`'s job.

use std::path::PathBuf;

use crate::config::PortRange;

mod values;

pub use self::values::{Address, Family, Host, Refused};
use self::values::{number_in, parse_address, parse_port_range, parse_refused};

/// What a flag sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Id {
    Ipv4,
    Ipv6,
    Create,
    Secure,
    Permissive,
    Verbose,
    Verbosity,
    Version,
    Listen,
    Foreground,
    Address,
    Blocksize,
    User,
    Umask,
    Refuse,
    Timeout,
    Retransmit,
    PortRange,
    MapFile,
    Pidfile,
    Help,
}

/// A flag in.tftpd knows: its short letter, its long name, whether it takes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Flag {
    short: Option<char>,
    long: &'static str,
    takes_value: bool,
    id: Id,
}

const fn flag(short: char, long: &'static str, takes_value: bool, id: Id) -> Flag {
    Flag {
        short: Some(short),
        long,
        takes_value,
        id,
    }
}

/// in.tftpd 5.2's `long_options` and `short_options` ("46cspvVlLa:B:u:U:r:t:T:R:m:P:"), plus
/// `-h`/`--help`, which in.tftpd lacks but every Debian tool is expected to have.
const FLAGS: [Flag; 21] = [
    flag('4', "ipv4", false, Id::Ipv4),
    flag('6', "ipv6", false, Id::Ipv6),
    flag('c', "create", false, Id::Create),
    flag('s', "secure", false, Id::Secure),
    flag('p', "permissive", false, Id::Permissive),
    flag('v', "verbose", false, Id::Verbose),
    Flag {
        short: None,
        long: "verbosity",
        takes_value: true,
        id: Id::Verbosity,
    },
    flag('V', "version", false, Id::Version),
    flag('l', "listen", false, Id::Listen),
    flag('L', "foreground", false, Id::Foreground),
    flag('a', "address", true, Id::Address),
    flag('B', "blocksize", true, Id::Blocksize),
    flag('u', "user", true, Id::User),
    flag('U', "umask", true, Id::Umask),
    flag('r', "refuse", true, Id::Refuse),
    flag('t', "timeout", true, Id::Timeout),
    flag('T', "retransmit", true, Id::Retransmit),
    flag('R', "port-range", true, Id::PortRange),
    flag('m', "map-file", true, Id::MapFile),
    flag('P', "pidfile", true, Id::Pidfile),
    flag('h', "help", false, Id::Help),
];

/// `-h`: what the in.tftpd line takes, and what each flag becomes.
pub const USAGE: &str = "\
Usage: tftpd [in.tftpd options...] -s DIRECTORY   (tftp-hpa's in.tftpd command line)

  -l, --listen             accepted: tftpd always serves standalone, in the foreground
  -L, --foreground         accepted: as -l
  -s, --secure             serve DIRECTORY as the root (required)
  -c, --create             write = \"create\": uploads may create files
  -u, --user USER          user = USER
  -a, --address [ADDR][:PORT]  listen = [ADDR:PORT] (IPv6 in [])
  -4, --ipv4 / -6, --ipv6  serve one address family only
  -R, --port-range LO:HI   port_range = \"LO-HI\"
  -B, --blocksize N        protocol.max_blksize = N (512..=65464)
  -T, --retransmit US      protocol.timeout_ms = US / 1000 (10000..=255000000)
  -t, --timeout S          accepted: inetd's idle exit, not needed standalone
  -r, --refuse OPTION      protocol.refuse_options (blksize, tsize, timeout, windowsize;
                           blksize2, utimeout, rollover are never agreed to anyway)
  -U, --umask MASK         uploads.file_mode = 0666 & ~MASK
  -p, --permissive         accepted: tftpd never adds checks beyond the system's
  -P, --pidfile FILE       pidfile = FILE
  -m, --map-file FILE      [[remap]] rules read from tftp-hpa's map file
  -v, --verbose, --verbosity N  log level (0 warn, 1 info, 2 debug, 3 trace)
  -V, --version            print the version
  -h, --help               print this

Recognised when invoked as in.tftpd or when a flag only in.tftpd has is used; see tftpd(8).
";

/// The long names of in.tftpd's flags.
pub(super) fn long_names() -> impl Iterator<Item = &'static str> {
    FLAGS.iter().map(|f| f.long)
}

/// Whether in.tftpd's short flag `c` takes a value (`None`: no such flag).
pub(super) fn short_takes_value(c: char) -> Option<bool> {
    FLAGS
        .iter()
        .find(|f| f.short == Some(c))
        .map(|f| f.takes_value)
}

/// Whether in.tftpd's long flag `name` (spelled out in full) takes a value.
pub(super) fn long_takes_value(name: &str) -> Option<bool> {
    FLAGS.iter().find(|f| f.long == name).map(|f| f.takes_value)
}

/// The in.tftpd command line, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InTftpdArgs {
    /// The flags as written, in order (for messages).
    pub given: Vec<String>,
    /// `-4`/`-6` (the last one wins, as in in.tftpd).
    pub family: Option<Family>,
    /// `-c`.
    pub create: bool,
    /// `-s`.
    pub secure: bool,
    /// `-p`.
    pub permissive: bool,
    /// `-v` (each adds one) and `--verbosity N` (sets it); `None`: neither given.
    pub verbosity: Option<u32>,
    /// `-l`.
    pub listen: bool,
    /// `-L`.
    pub foreground: bool,
    /// `-a`.
    pub address: Option<Address>,
    /// `-B`.
    pub blocksize: Option<u16>,
    /// `-u`.
    pub user: Option<String>,
    /// `-U`, the mask bits.
    pub umask: Option<u32>,
    /// `-r`, in order.
    pub refuse: Vec<Refused>,
    /// `-t`, seconds.
    pub timeout: Option<u64>,
    /// `-T`, microseconds.
    pub retransmit_us: Option<u64>,
    /// `-R`.
    pub port_range: Option<PortRange>,
    /// `-m`.
    pub map_file: Option<PathBuf>,
    /// `-P`.
    pub pidfile: Option<PathBuf>,
    /// The directories.
    pub dirs: Vec<PathBuf>,
    /// `-V`.
    pub version: bool,
    /// `-h`.
    pub help: bool,
}

/// A word of the in.tftpd command line that in.tftpd would refuse too.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{flag}: {message}")]
pub struct ArgError {
    /// The flag as written (or the word, for an unknown one).
    pub flag: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

fn arg_error(flag: &str, message: impl Into<String>) -> ArgError {
    ArgError {
        flag: flag.to_string(),
        message: message.into(),
    }
}

/// Parses the words after the program name.
pub fn parse<S: AsRef<str>>(words: &[S]) -> Result<InTftpdArgs, ArgError> {
    let mut args = InTftpdArgs::default();
    let mut i = 0;
    let mut only_dirs = false;
    while i < words.len() {
        let word = words[i].as_ref();
        i += 1;
        if only_dirs || word == "-" || !word.starts_with('-') {
            args.dirs.push(PathBuf::from(word));
        } else if word == "--" {
            only_dirs = true;
        } else if let Some(long) = word.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let f = find_long(name).map_err(|m| arg_error(word, m))?;
            let shown = format!("--{}", f.long);
            let value = match (f.takes_value, inline) {
                (false, Some(_)) => {
                    return Err(arg_error(&shown, "takes no value"));
                }
                (false, None) => None,
                (true, Some(v)) => Some(v.to_string()),
                (true, None) => Some(next_value(words, &mut i, &shown)?),
            };
            args.apply(f, &shown, value.as_deref())?;
        } else {
            // A cluster of short flags; a flag that takes a value ends it.
            for (at, c) in word[1..].char_indices() {
                let f = FLAGS
                    .iter()
                    .find(|f| f.short == Some(c))
                    .copied()
                    .ok_or_else(|| arg_error(&format!("-{c}"), "not an in.tftpd flag"))?;
                let shown = format!("-{c}");
                if f.takes_value {
                    let rest = &word[1 + at + c.len_utf8()..];
                    let value = if rest.is_empty() {
                        next_value(words, &mut i, &shown)?
                    } else {
                        rest.to_string()
                    };
                    args.apply(f, &shown, Some(&value))?;
                    break;
                }
                args.apply(f, &shown, None)?;
            }
        }
    }
    Ok(args)
}

fn next_value<S: AsRef<str>>(words: &[S], i: &mut usize, shown: &str) -> Result<String, ArgError> {
    let v = words
        .get(*i)
        .ok_or_else(|| arg_error(shown, "needs a value"))?;
    *i += 1;
    Ok(v.as_ref().to_string())
}

/// getopt_long: an exact name wins, else a unique prefix.
fn find_long(name: &str) -> Result<Flag, String> {
    if let Some(f) = FLAGS.iter().find(|f| f.long == name) {
        return Ok(*f);
    }
    let matches: Vec<&Flag> = FLAGS.iter().filter(|f| f.long.starts_with(name)).collect();
    match matches.as_slice() {
        [one] if !name.is_empty() => Ok(**one),
        [] | [_] => Err("not an in.tftpd flag".to_string()),
        many => Err(format!(
            "ambiguous: could be {}",
            many.iter()
                .map(|f| format!("--{}", f.long))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

impl InTftpdArgs {
    fn apply(&mut self, f: Flag, shown: &str, value: Option<&str>) -> Result<(), ArgError> {
        self.given.push(shown.to_string());
        let v = value.unwrap_or("");
        let bad = |m: &str| arg_error(shown, format!("{v:?}: {m}"));
        match f.id {
            Id::Ipv4 => self.family = Some(Family::V4),
            Id::Ipv6 => self.family = Some(Family::V6),
            Id::Create => self.create = true,
            Id::Secure => self.secure = true,
            Id::Permissive => self.permissive = true,
            Id::Verbose => self.verbosity = Some(self.verbosity.unwrap_or(0).saturating_add(1)),
            Id::Verbosity => {
                self.verbosity = Some(v.parse().map_err(|_| bad("expected a number, 0 or more"))?);
            }
            Id::Version => self.version = true,
            Id::Listen => self.listen = true,
            Id::Foreground => self.foreground = true,
            Id::Help => self.help = true,
            Id::Address => self.address = Some(parse_address(v).map_err(|m| bad(&m))?),
            Id::Blocksize => {
                self.blocksize = Some(
                    number_in(v, 512..=65464)
                        .ok_or_else(|| bad("the largest block size, 512..=65464"))?,
                );
            }
            Id::User => self.user = Some(v.to_string()),
            Id::Umask => {
                self.umask = Some(
                    u32::from_str_radix(v, 8)
                        .ok()
                        .filter(|m| *m <= 0o7777)
                        .ok_or_else(|| bad("an octal mask, e.g. 022"))?,
                );
            }
            Id::Refuse => self.refuse.push(parse_refused(v).ok_or_else(|| {
                bad("one of blksize, blksize2, tsize, timeout, utimeout, rollover, windowsize")
            })?),
            Id::Timeout => {
                self.timeout = Some(v.parse().map_err(|_| bad("seconds, 0 or more"))?);
            }
            Id::Retransmit => {
                self.retransmit_us = Some(
                    number_in(v, 10_000..=255_000_000)
                        .ok_or_else(|| bad("microseconds, 10000..=255000000"))?,
                );
            }
            Id::PortRange => self.port_range = Some(parse_port_range(v).map_err(|m| bad(&m))?),
            Id::MapFile => {
                if self.map_file.is_some() {
                    return Err(arg_error(
                        shown,
                        "given twice (in.tftpd takes one map file)",
                    ));
                }
                self.map_file = Some(PathBuf::from(v));
            }
            Id::Pidfile => self.pidfile = Some(PathBuf::from(v)),
        }
        Ok(())
    }
}

/// The line Debian's tftpd-hpa runs with its default `/etc/default/tftpd-hpa` (for tests).
#[cfg(test)]
pub(crate) const DEBIAN_DEFAULT_LINE: [&str; 7] = [
    "--listen",
    "--user",
    "tftp",
    "--address",
    ":69",
    "--secure",
    "/srv/tftp",
];

#[cfg(test)]
mod tests;
