//! Filename remapping: the `[[remap]]` rules, compiled once per configuration and applied in
//! order to a requested name before it is resolved. The result still goes through the root
//! jail (`RequestPath::parse`, then `openat2`), so no rule can reach outside the root.
//! [`map_file`] reads tftp-hpa's map files into these rules.

use std::net::IpAddr;

use regex::{Regex, RegexBuilder};

use crate::config::{RemapAction, RemapOp, RemapRule, SourcePrefix};

/// What the rules made of a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapped {
    /// No rule matched.
    Unchanged,
    /// Rewritten to this name.
    Rewritten(String),
    /// Refused by the rule at this index.
    Denied(usize),
}

/// A rule that cannot be compiled; names the rule by its index in the file.
#[derive(Debug, thiserror::Error)]
pub enum RemapError {
    /// The regular expression is invalid.
    #[error("remap[{index}].match: {message}")]
    Pattern {
        /// The rule.
        index: usize,
        /// The regex crate's explanation.
        message: String,
    },
    /// A rewrite without a replacement.
    #[error("remap[{index}].replace: required when action = \"rewrite\"")]
    MissingReplace {
        /// The rule.
        index: usize,
    },
    /// A capture group named like the `${client}` or `${client_hex}` variable.
    #[error(
        "remap[{index}].match: a capture group may not be named \"client\" or \"client_hex\" (those are the client address)"
    )]
    ReservedGroup {
        /// The rule.
        index: usize,
    },
}

#[derive(Debug)]
struct Compiled {
    regex: Regex,
    action: RemapAction,
    replace: String,
    all: bool,
    repeat: bool,
    lowercase: bool,
    last: bool,
    ops: Vec<RemapOp>,
    clients: Vec<SourcePrefix>,
}

/// The compiled rules of one configuration.
#[derive(Debug, Default)]
pub struct Remapper {
    rules: Vec<Compiled>,
}

impl Remapper {
    /// Compiles `rules` in order.
    pub fn new(rules: &[RemapRule]) -> Result<Self, RemapError> {
        let mut out = Vec::with_capacity(rules.len());
        for (index, r) in rules.iter().enumerate() {
            let regex = RegexBuilder::new(&r.pattern)
                .case_insensitive(r.ignore_case)
                .size_limit(PATTERN_SIZE_LIMIT)
                .build()
                .map_err(|e| RemapError::Pattern {
                    index,
                    message: e.to_string(),
                })?;
            if regex
                .capture_names()
                .flatten()
                .any(|n| n == "client" || n == "client_hex")
            {
                return Err(RemapError::ReservedGroup { index });
            }
            let replace = match (r.action, &r.replace) {
                (RemapAction::Rewrite, None) => return Err(RemapError::MissingReplace { index }),
                (_, replace) => replace.clone().unwrap_or_default(),
            };
            out.push(Compiled {
                regex,
                action: r.action,
                replace,
                all: r.all,
                repeat: r.repeat,
                lowercase: r.lowercase,
                last: r.last,
                ops: r.ops.clone(),
                clients: r.clients.clone(),
            });
        }
        Ok(Self { rules: out })
    }

    /// True when there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Applies the rules to `name`, requested by `client` for `op`.
    pub fn map(&self, name: &str, op: RemapOp, client: IpAddr) -> Mapped {
        let mut current = name.to_string();
        let mut changed = false;
        for (index, rule) in self.rules.iter().enumerate() {
            if !rule.ops.is_empty() && !rule.ops.contains(&op) {
                continue;
            }
            if !rule.clients.is_empty() && !rule.clients.iter().any(|p| p.contains(client)) {
                continue;
            }
            if !rule.regex.is_match(&current) {
                continue;
            }
            if rule.action == RemapAction::Deny {
                return Mapped::Denied(index);
            }
            let client = unmapped(client);
            // The variables first, as plain text; then the capture groups.
            let template = rule
                .replace
                .replace("${client_hex}", &hex(client))
                .replace("${client}", &client.to_string());
            let once = |name: &str| {
                let expand = |caps: &regex::Captures<'_>| {
                    let mut out = String::new();
                    caps.expand(&template, &mut out);
                    out
                };
                if rule.all {
                    rule.regex.replace_all(name, expand).into_owned()
                } else {
                    rule.regex.replace(name, expand).into_owned()
                }
            };
            let mut next = once(&current);
            if rule.repeat {
                // tftp-hpa's `g`: again from the start until the rule no longer matches. A
                // round that changes nothing, or growth past the longest path, would never
                // end there either (its step limit refuses the request), so it is refused;
                // a name past the longest path is never grown again.
                let mut rounds = 0;
                loop {
                    if next.len() > crate::fs::resolve::MAX_PATH_LEN {
                        return Mapped::Denied(index);
                    }
                    if !rule.regex.is_match(&next) {
                        break;
                    }
                    rounds += 1;
                    let again = once(&next);
                    if again == next || rounds >= MAX_REPEAT {
                        return Mapped::Denied(index);
                    }
                    next = again;
                }
            }
            current = if rule.lowercase {
                next.to_lowercase()
            } else {
                next
            };
            changed = true;
            // A name past the longest path is refused by the name checks whatever follows,
            // so no later rule may grow it further: a rule such as `.` → `${client}${client}`
            // applied to every character would otherwise turn each request into megabytes.
            if rule.last || current.len() > crate::fs::resolve::MAX_PATH_LEN {
                break;
            }
        }
        if changed && current != name {
            Mapped::Rewritten(current)
        } else {
            Mapped::Unchanged
        }
    }
}

/// The largest compiled pattern. A hostile name must not make matching expensive; the regex
/// crate is linear time, and this bounds the compiled program.
pub(crate) const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// The most rounds a `repeat` rule may take on one name.
const MAX_REPEAT: usize = 1024;

/// The client address as tftp-hpa's `\x` writes it: every byte as two upper-case hex digits
/// (C0A80001 for 192.168.0.1; 32 digits for IPv6).
fn hex(ip: IpAddr) -> String {
    let bytes = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// IPv4 clients on a dual-stack socket arrive as `::ffff:a.b.c.d`; rules see `a.b.c.d`.
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

pub mod map_file;

#[cfg(test)]
mod tests;
