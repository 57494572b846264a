//! Reading TOML into a [`Config`]: a second pass with the `[performance] profile` preset laid
//! under the file's keys, and toml's errors turned into one line naming the key.

use std::path::Path;

use super::{Config, ConfigError, profile};

/// Parses the file; with a `[performance] profile`, parses it again with the profile's
/// preset laid under the file's keys. The first pass reports the file's own mistakes with
/// their line and column; the second cannot add any but a broken preset's.
pub(super) fn parse(text: &str, path: Option<&Path>) -> Result<Config, ConfigError> {
    let error = |message: String| ConfigError::Parse {
        path: path.map(Path::to_path_buf),
        message,
    };
    let mut config: Config = toml::from_str(text).map_err(|e| error(describe(text, &e)))?;
    let profile = config.performance.profile;
    if profile.preset().is_empty() {
        config.performance.apply_io();
        return Ok(config);
    }
    let in_profile = |e: &dyn std::fmt::Display| {
        error(format!(
            "performance.profile = \"{}\": its preset: {e}",
            profile.name()
        ))
    };
    let mut table: toml::Table = toml::from_str(text).map_err(|e| error(describe(text, &e)))?;
    profile::apply(&mut table, profile).map_err(|e| in_profile(&e))?;
    let mut config: Config = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| in_profile(&e))?;
    config.performance.apply_io();
    Ok(config)
}

/// One line for a TOML error: position, the dotted key it is about, and toml's message.
/// toml's own rendering spans several lines and names the key only in a source excerpt, which
/// reads badly in a log line; the error's span gives the key back.
fn describe(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end();
    let Some(span) = e.span() else {
        return message.to_string();
    };
    let start = span.start.min(text.len());
    let line_no = text[..start].matches('\n').count() + 1;
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..start].chars().count() + 1;
    let line = text[line_start..].lines().next().unwrap_or("").trim();
    let section = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    let key = match line.split_once('=') {
        Some((k, _)) => {
            let k = k.trim();
            match &section {
                Some(s) => format!("{s}.{k}"),
                None => k.to_string(),
            }
        }
        None => line.to_string(),
    };
    format!("line {line_no}, column {column}: key `{key}`: {message}")
}
