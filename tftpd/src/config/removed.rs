//! Keys older releases read that no longer do anything. A file that still sets one starts
//! (an upgrade must not turn a working config into a refused one) and is told, at start and
//! by `--check-config`, which key does nothing and why ([`super::PerformanceConfig::old_keys`]).

use serde::{Deserialize, Deserializer};

/// Whatever a removed key or section was set to, kept as TOML text for the warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed(pub String);

impl<'de> Deserialize<'de> for Removed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = toml::Value::deserialize(d)?;
        Ok(Self(match value {
            // A whole section: its keys on one line.
            toml::Value::Table(t) => t
                .iter()
                .map(|(k, v)| format!("{k} = {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            v => v.to_string(),
        }))
    }
}

/// A removed key: its name, and why it does nothing now (the ADR that measured it and the
/// commit that removed it).
pub(super) struct Gone {
    pub key: &'static str,
    pub why: &'static str,
}

/// The warning for `gone` when the file sets it (`value`).
pub(super) fn warning(gone: &Gone, value: Option<&Removed>) -> Option<String> {
    let Removed(text) = value?;
    Some(format!(
        "{} ({text}) does nothing: {}; delete it",
        gone.key, gone.why
    ))
}

/// Every removed key or section, as its warning names it (a section in brackets).
pub const REMOVED: [&str; 4] = [
    ZEROCOPY.key,
    IO_URING.key,
    SENDFILE.key,
    SENDFILE_THRESHOLD.key,
];

pub(super) const ZEROCOPY: Gone = Gone {
    key: "[performance.zerocopy]",
    why: "MSG_ZEROCOPY was removed (on loopback and veth the kernel always copied, and it cost \
          more CPU than a plain send: docs/adr/0021)",
};

pub(super) const IO_URING: Gone = Gone {
    key: "[performance.io_uring]",
    why: "io_uring transfer lanes were removed (no gain over blocking or async sockets, and \
          SQPOLL took a core: docs/adr/0024, 0028)",
};

pub(super) const SENDFILE: Gone = Gone {
    key: "performance.file_io.sendfile",
    why: "MSG_MORE + sendfile was removed (slower than pread + send at every block size \
          measured: docs/adr/0019)",
};

pub(super) const SENDFILE_THRESHOLD: Gone = Gone {
    key: "performance.file_io.sendfile_threshold",
    why: SENDFILE.why,
};
