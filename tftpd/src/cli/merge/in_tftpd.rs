//! in.tftpd's command line as a configuration: the built-in defaults (which match in.tftpd's:
//! user nobody, port 69, 1 s retransmit, blocks up to 65464 bytes), then each flag onto its
//! key. A flag tftpd has no use for becomes a [`Note`] saying why; a line tftpd cannot serve
//! as in.tftpd would is an error saying what to write instead.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs as _};

use crate::cli::in_tftpd::{Address, Family, Host, InTftpdArgs, Refused};
use crate::config::{BlockSize, Config, SourcePrefix, WriteMode};
use crate::fs::remap::map_file;

use super::{LoadError, Note, verbosity_level};

/// Builds the configuration for `args`, and the notes to log.
pub(super) fn build(args: &InTftpdArgs) -> Result<(Config, Vec<Note>), LoadError> {
    let mut config = Config::default();
    let mut notes = Vec::new();
    let mut note = |flag, message: &str| {
        notes.push(Note {
            flag,
            message: message.to_string(),
            differs: false,
        });
    };
    if !args.listen && !args.foreground {
        return Err(LoadError::InTftpd {
            flag: "-l",
            message: "without -l or -L in.tftpd expects inetd's socket, and tftpd has no inetd \
                      mode: add -l (or -L); for socket activation use tftpd.socket"
                .into(),
        });
    }
    if args.listen {
        note(
            "-l",
            "not needed: tftpd always serves standalone, in the foreground (systemd supervises it)",
        );
    }
    if args.foreground {
        note("-L", "not needed: tftpd always runs in the foreground");
    }
    config.root = root(args)?;
    config.listen = listen(args.address.as_ref(), args.family)?;
    let dual_stack = config
        .listen
        .iter()
        .any(|a| a.ip() == IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    if args.family == Some(Family::V6) && dual_stack {
        // in.tftpd -6 binds [::] with IPV6_V6ONLY; tftpd's [::] is dual-stack, so the IPv4
        // clients are refused instead: no answer, where in.tftpd's lack of an IPv4 socket
        // gets them an ICMP port unreachable.
        config.access.deny.push(prefix("0.0.0.0/0")?);
    }
    if args.create {
        config.write = WriteMode::Create;
    }
    if let Some(u) = &args.user {
        config.user.clone_from(u);
    }
    if let Some(mask) = args.umask {
        // in.tftpd creates files with mode 0666 under its umask.
        config.uploads.file_mode = 0o666 & !mask;
    }
    if args.permissive {
        note(
            "-p",
            "not needed: tftpd adds no check beyond the system's permissions for its user \
             (in.tftpd without -p also wants files world-readable or world-writable)",
        );
    }
    if let Some(p) = &args.pidfile {
        config.pidfile = Some(p.clone());
    }
    if args.timeout.is_some() {
        note(
            "-t",
            "not needed: it is inetd mode's idle exit, which in.tftpd ignores with -l too",
        );
    }
    if let Some(us) = args.retransmit_us {
        config.protocol.timeout_ms = us.div_ceil(1000);
        if us % 1000 != 0 {
            note(
                "-T",
                &format!(
                    "{us} µs taken as {} ms (tftpd times in milliseconds)",
                    config.protocol.timeout_ms
                ),
            );
        }
    }
    if let Some(b) = args.blocksize {
        config.protocol.max_blksize =
            BlockSize::try_from(i64::from(b)).map_err(|message| LoadError::InTftpd {
                flag: "-B",
                message,
            })?;
    }
    for r in &args.refuse {
        match r {
            Refused::Negotiated(o) => config.protocol.refuse_options.push(*o),
            Refused::NeverAgreed(name) => note(
                "-r",
                &format!("{name}: not needed: tftpd never agrees to this in.tftpd extension"),
            ),
        }
    }
    if let Some(r) = args.port_range {
        config.port_range = Some(r);
    }
    if let Some(v) = args.verbosity {
        config.log.level = verbosity_level(v).to_string();
    }
    if let Some(path) = &args.map_file {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::MapFileRead {
            path: path.clone(),
            source,
        })?;
        let t = map_file::translate(&text).map_err(|source| LoadError::MapFile {
            path: path.clone(),
            source,
        })?;
        config.remap = t.rules;
        notes.extend(t.warnings.into_iter().map(|w| Note {
            flag: "-m",
            message: format!("{}: {w}", path.display()),
            differs: true,
        }));
    }
    config.validate()?;
    Ok((config, notes))
}

/// `-s DIR`: the one root. Without `-s`, in.tftpd serves absolute names that start with one
/// of the directories (and without a directory, the whole filesystem); tftpd has one root.
fn root(args: &InTftpdArgs) -> Result<std::path::PathBuf, LoadError> {
    let fail = |message: &str| LoadError::InTftpd {
        flag: "-s",
        message: message.to_string(),
    };
    if !args.secure {
        return Err(fail(
            "without -s in.tftpd serves absolute names below the directories it is given; \
             tftpd serves one root, as in.tftpd -s does: add -s with one directory (clients \
             then ask for /file or file, not /srv/tftp/file)",
        ));
    }
    let dir = match args.dirs.as_slice() {
        [] => return Err(fail("needs a directory (in.tftpd: \"no -s directory\")")),
        [one] => one,
        _ => {
            return Err(fail(
                "takes one directory (in.tftpd: \"too many -s directories\")",
            ));
        }
    };
    std::path::absolute(dir).map_err(|e| fail(&format!("{}: {e}", dir.display())))
}

/// `-a` and `-4`/`-6` as listening addresses, as in.tftpd binds them.
fn listen(address: Option<&Address>, family: Option<Family>) -> Result<Vec<SocketAddr>, LoadError> {
    let fail = |message: String| LoadError::InTftpd {
        flag: "-a",
        message,
    };
    let any = Address {
        host: Host::Any,
        port: 69,
    };
    let a = address.unwrap_or(&any);
    let wildcard = |f: Option<Family>| match f {
        Some(Family::V4) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        // [::] is dual-stack: one socket for what in.tftpd binds two for.
        _ => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let fits = |ip: &IpAddr| match family {
        Some(Family::V4) => ip.is_ipv4(),
        Some(Family::V6) => ip.is_ipv6(),
        None => true,
    };
    match &a.host {
        Host::Any => Ok(vec![SocketAddr::new(wildcard(family), a.port)]),
        Host::Ip(ip) if fits(ip) => Ok(vec![SocketAddr::new(*ip, a.port)]),
        Host::Ip(ip) => Err(fail(format!(
            "{ip} is not in the address family -4/-6 asks for"
        ))),
        Host::Name(name) => {
            let found: Vec<SocketAddr> = (name.as_str(), a.port)
                .to_socket_addrs()
                .map_err(|e| fail(format!("cannot resolve {name:?}: {e}")))?
                .filter(|s| fits(&s.ip()))
                .collect();
            // in.tftpd binds the first address of each family the name resolves to.
            let first = |v4: bool| found.iter().find(|s| s.is_ipv4() == v4).copied();
            let addrs: Vec<SocketAddr> =
                [first(true), first(false)].into_iter().flatten().collect();
            if addrs.is_empty() {
                return Err(fail(format!("{name:?} resolves to no usable address")));
            }
            Ok(addrs)
        }
    }
}

fn prefix(s: &str) -> Result<SourcePrefix, LoadError> {
    s.parse().map_err(|message| LoadError::InTftpd {
        flag: "-6",
        message,
    })
}

#[cfg(test)]
mod tests;
