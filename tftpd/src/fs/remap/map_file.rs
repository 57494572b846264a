//! tftp-hpa's map file (`in.tftpd -m FILE`, tftpd(8) of tftp-hpa 5.2, "FILENAME REMAPPING")
//! read into `[[remap]]` rules. One rule a line: `FLAGS REGEX [REPLACEMENT]`, words split at
//! whitespace a backslash does not escape, `#` starting a comment. The regular expression is
//! POSIX extended (egrep) and is rewritten into the `regex` crate's syntax; the replacement's
//! `\0`..`\9`, `\i` and `\x` become `${0}`..`${9}`, `${client}` and `${client_hex}`.
//!
//! Whatever would make tftpd answer a client differently from tftp-hpa is an error naming the
//! line; what changes only an error's text, or may change a match in a corner POSIX and the
//! regex crate disagree on, is a warning the daemon logs at start.

use crate::config::{RemapAction, RemapOp, RemapRule, SourcePrefix};

/// A line tftpd's rules cannot express, or that tftp-hpa would refuse too.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct MapFileError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong, and what to write instead where there is a way.
    pub message: String,
}

/// The rules of a map file, and what the operator should know about them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Translated {
    /// The rules, in the file's order.
    pub rules: Vec<RemapRule>,
    /// `line N: ...` notes on differences that do not change which file a client gets.
    pub warnings: Vec<String>,
}

/// Reads the text of a map file.
pub fn translate(text: &str) -> Result<Translated, MapFileError> {
    let mut out = Translated::default();
    for (index, raw) in text.split('\n').enumerate() {
        let line = index + 1;
        // in.tftpd drops CR and NUL bytes wherever they are.
        let clean: String = raw.chars().filter(|c| *c != '\r' && *c != '\0').collect();
        let err = |message: String| MapFileError { line, message };
        let mut rest = clean.as_str();
        let Some(flags) = word(&mut rest) else {
            continue;
        };
        let regex = word(&mut rest).ok_or_else(|| err(format!("{flags:?} has no regex")))?;
        let replacement = word(&mut rest).unwrap_or_default();
        if let Some(extra) = word(&mut rest) {
            out.warnings.push(format!(
                "line {line}: {extra:?} after the replacement is ignored, as tftp-hpa ignores it"
            ));
        }
        if let Some(rule) = rule(line, &flags, &regex, &replacement, &mut out.warnings)? {
            out.rules.push(rule);
        }
    }
    Ok(out)
}

/// in.tftpd's `readescstring`: skips leading whitespace, then takes characters up to an
/// unescaped whitespace or `#` (a comment: the rest of the line is dropped). The backslashes
/// stay in the word; the regex and replacement readers interpret them.
fn word(rest: &mut &str) -> Option<String> {
    let s = rest.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let mut escaped = false;
    let mut end = s.len();
    for (i, c) in s.char_indices() {
        if !escaped && (c.is_ascii_whitespace() || c == '#') {
            end = i;
            break;
        }
        // Two backslashes leave the state unescaped, as in in.tftpd.
        escaped = !escaped && c == '\\';
    }
    let (w, after) = s.split_at(end);
    *rest = if after.starts_with('#') { "" } else { after };
    (!w.is_empty()).then(|| w.to_string())
}

/// The flags of one line.
#[derive(Default)]
struct Flags {
    rewrite: bool,
    repeat: bool,
    ignore_case: bool,
    last: bool,
    deny: bool,
    read_only: bool,
    write_only: bool,
    v4: bool,
    v6: bool,
}

fn rule(
    line: usize,
    flag_word: &str,
    regex: &str,
    replacement: &str,
    warnings: &mut Vec<String>,
) -> Result<Option<RemapRule>, MapFileError> {
    let err = |message: String| MapFileError { line, message };
    let mut f = Flags::default();
    for c in flag_word.chars() {
        match c {
            'r' => f.rewrite = true,
            'g' => f.repeat = true,
            'i' => f.ignore_case = true,
            'e' => f.last = true,
            'a' => f.deny = true,
            'G' => f.read_only = true,
            'P' => f.write_only = true,
            '4' => f.v4 = true,
            '6' => f.v6 = true,
            's' => {
                return Err(err(
                    "flag s (start over from the first rule) has no counterpart: tftpd applies \
                     its rules once, in order; put the rules the restart would reach after this one"
                        .into(),
                ));
            }
            '~' => {
                return Err(err(
                    "flag ~ (act when the regex does not match) has no counterpart: tftpd's \
                     regular expressions have no negation; write the names that should match"
                        .into(),
                ));
            }
            other => {
                return Err(err(format!(
                    "invalid flag {other:?} in {flag_word:?} (tftp-hpa 5.2's flags: r g i e s a G \
                     P 4 6 ~)"
                )));
            }
        }
    }
    if f.rewrite && f.deny {
        return Err(err(
            "flags r and a cannot be combined (tftp-hpa refuses them too)".into(),
        ));
    }
    let pattern = posix_to_rust(regex).map_err(|m| err(format!("regex {regex:?}: {m}")))?;
    // Compiled as the rule will be, so a pattern refused later is refused here, by its line.
    if let Err(e) = regex::RegexBuilder::new(&pattern)
        .case_insensitive(f.ignore_case)
        .size_limit(super::PATTERN_SIZE_LIMIT)
        .build()
    {
        return Err(err(format!("regex {regex:?}: {e}")));
    }
    if pattern.contains('|') {
        warnings.push(format!(
            "line {line}: regex {regex:?}: of alternatives matching at the same place, tftpd \
             takes the first listed and tftp-hpa (POSIX) the longest; list a longer alternative \
             before its prefix"
        ));
    }
    // A rule that can never apply (G and P, or 4 and 6, together) does nothing in tftp-hpa.
    if (f.read_only && f.write_only) || (f.v4 && f.v6) {
        warnings.push(format!(
            "line {line}: flags {flag_word:?} exclude every request; the rule does nothing"
        ));
        return Ok(None);
    }
    let (action, replace, lowercase) = if f.deny {
        if !replacement.is_empty() {
            warnings.push(format!(
                "line {line}: tftp-hpa sends {replacement:?} as the error text; tftpd sends ERROR 2 \
                 with its own text"
            ));
        }
        (RemapAction::Deny, None, false)
    } else if f.rewrite {
        let (replace, lowercase) = replacement_to_template(replacement, regex)
            .map_err(|m| err(format!("replacement {replacement:?}: {m}")))?;
        (RemapAction::Rewrite, Some(replace), lowercase)
    } else if f.last {
        // A match ends the rules and keeps the name: the match replaced by itself.
        (RemapAction::Rewrite, Some("${0}".to_string()), false)
    } else {
        // Neither r, a nor e: a match changes nothing, as in tftp-hpa.
        return Ok(None);
    };
    let ops = match (f.read_only, f.write_only) {
        (true, _) => vec![RemapOp::Read],
        (_, true) => vec![RemapOp::Write],
        _ => Vec::new(),
    };
    let every = |s: &str| {
        s.parse::<SourcePrefix>()
            .map(|p| vec![p])
            .map_err(|e| err(format!("flags {flag_word:?}: {e}")))
    };
    let clients = match (f.v4, f.v6) {
        (true, _) => every("0.0.0.0/0")?,
        (_, true) => every("::/0")?,
        _ => Vec::new(),
    };
    Ok(Some(RemapRule {
        pattern,
        action,
        replace,
        all: false,
        repeat: f.repeat && f.rewrite,
        ignore_case: f.ignore_case,
        lowercase,
        last: f.last,
        ops,
        clients,
    }))
}

/// POSIX extended regular expression (glibc's, with its GNU escapes) to the regex crate's
/// syntax. Inside brackets a backslash is a literal in POSIX and an escape in Rust; outside,
/// POSIX takes `\X` of an ordinary character as X itself, where Rust gives some (`\d`, `\n`)
/// a meaning.
fn posix_to_rust(ere: &str) -> Result<String, String> {
    let mut out = String::with_capacity(ere.len() + 8);
    let mut chars = ere.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(e) = chars.next() else {
                    return Err("ends in a lone backslash".into());
                };
                match e {
                    '1'..='9' => {
                        return Err(format!(
                            "back-reference \\{e}: tftpd's regular expressions have none"
                        ));
                    }
                    'w' | 'W' | 's' | 'S' | 'b' | 'B' => {
                        out.push('\\');
                        out.push(e);
                    }
                    '<' => out.push_str(r"\b{start}"),
                    '>' => out.push_str(r"\b{end}"),
                    '`' => out.push_str(r"\A"),
                    '\'' => out.push_str(r"\z"),
                    other => out.push_str(&regex::escape(&other.to_string())),
                }
            }
            '[' => bracket(&mut chars, &mut out)?,
            other => out.push(other),
        }
    }
    Ok(out)
}

/// A POSIX bracket expression, after its `[`, copied as a Rust class.
fn bracket(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    out: &mut String,
) -> Result<(), String> {
    out.push('[');
    if chars.peek() == Some(&'^') {
        chars.next();
        out.push('^');
    }
    // A `]` first is a literal.
    if chars.peek() == Some(&']') {
        chars.next();
        out.push_str(r"\]");
    }
    loop {
        let c = chars.next().ok_or("a [ without its ]")?;
        match c {
            ']' => {
                out.push(']');
                return Ok(());
            }
            '[' => match chars.peek() {
                Some(':') => {
                    // A character class such as [:alpha:], which both syntaxes share.
                    out.push('[');
                    for d in chars.by_ref() {
                        out.push(d);
                        if d == ']' {
                            break;
                        }
                    }
                }
                Some('=' | '.') => {
                    return Err("collating elements ([= =], [. .]) are not supported".into());
                }
                _ => out.push_str(r"\["),
            },
            // Literal in POSIX; escapes or set operators in Rust.
            '\\' | '&' | '~' => {
                out.push('\\');
                out.push(c);
            }
            other => out.push(other),
        }
    }
}

/// tftp-hpa's replacement to a `[[remap]]` template; also whether it lower-cases (`\L`).
fn replacement_to_template(s: &str, regex: &str) -> Result<(String, bool), String> {
    let mut out = String::with_capacity(s.len() + 8);
    let mut lowercase = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.next() {
                Some(d @ '0'..='9') => {
                    out.push_str("${");
                    out.push(d);
                    out.push('}');
                }
                Some('i') => out.push_str("${client}"),
                Some('x') => out.push_str("${client_hex}"),
                Some('L') if out.is_empty() && !lowercase => {
                    if !matches_whole_name(regex) {
                        return Err(format!(
                            "\\L lower-cases the rest of the replacement; tftpd lower-cases the \
                             whole name (lowercase = true), which is the same only when the \
                             regex matches all of it: anchor it as ^...$ (it is {regex:?})"
                        ));
                    }
                    lowercase = true;
                }
                // `\E` closing a leading `\L` at the very end changes nothing.
                Some('E') if lowercase && chars.peek().is_none() => {}
                Some(t @ ('L' | 'U' | 'E')) => {
                    return Err(format!(
                        "\\{t} here has no counterpart: tftpd can lower-case the whole name \
                         (\\L at the start of the replacement), not part of it, and has no \
                         upper-casing"
                    ));
                }
                // A lone trailing backslash is itself; `\\`, `\ `, `\#`, `\X` are X.
                None => out.push('\\'),
                Some('$') => out.push_str("$$"),
                Some(other) => out.push(other),
            },
            other => out.push(other),
        }
    }
    Ok((out, lowercase))
}

/// Whether every match of `regex` (POSIX) is the whole name: anchored at both ends with no
/// alternation, or `.*` (which matches all of a name, since names hold no newline).
fn matches_whole_name(regex: &str) -> bool {
    let anchored = regex.starts_with('^')
        && regex.ends_with('$')
        && !regex.ends_with("\\$")
        && !regex.contains('|');
    anchored || matches!(regex, ".*" | "^.*" | ".*$")
}

#[cfg(test)]
mod tests;
