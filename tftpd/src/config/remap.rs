//! `[[remap]]`: ordered rules that rewrite or refuse a requested file name before it is
//! resolved (tftp-hpa's `--map-file`, atftpd's `--pcre`). Compiled by `fs::remap`.

use serde::Deserialize;

use super::SourcePrefix;

/// Which requests a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RemapOp {
    /// Downloads (RRQ).
    Read,
    /// Uploads (WRQ).
    Write,
}

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RemapAction {
    /// Replace the match with `replace`.
    #[default]
    Rewrite,
    /// Refuse the request (ERROR 2, access violation).
    Deny,
}

/// One `[[remap]]` rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemapRule {
    /// A regular expression (Rust `regex` syntax) searched for in the name.
    #[serde(rename = "match")]
    pub pattern: String,
    /// Rewrite or deny.
    #[serde(default)]
    pub action: RemapAction,
    /// The replacement: `$1`, `${name}` for capture groups, `${client}` for the client's
    /// address, `${client_hex}` for it in upper-case hex (C0A80001; tftp-hpa's `\x`).
    /// Required for `rewrite`.
    #[serde(default)]
    pub replace: Option<String>,
    /// Replace every match, not only the first.
    #[serde(default)]
    pub all: bool,
    /// Apply the rule again, from the start of the new name, until it no longer matches
    /// (tftp-hpa's `g` flag). A name that still matches after 1024 rounds, or that a round
    /// leaves unchanged while it still matches, is refused, as tftp-hpa refuses a remap loop.
    #[serde(default)]
    pub repeat: bool,
    /// Match without regard to case.
    #[serde(default)]
    pub ignore_case: bool,
    /// Lower-case the whole name after the replacement (for clients that disagree on case).
    #[serde(default)]
    pub lowercase: bool,
    /// Stop after this rule when it matches.
    #[serde(default)]
    pub last: bool,
    /// Only these operations; empty: both.
    #[serde(default)]
    pub ops: Vec<RemapOp>,
    /// Only clients in these prefixes; empty: every client.
    #[serde(default)]
    pub clients: Vec<SourcePrefix>,
}
