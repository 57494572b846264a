//! tftpd.toml(5) and docs/config-reference.md stay honest: every key the configuration parser
//! accepts is documented in both, and every key the man page documents is one the parser
//! accepts. The keys are read from the parser itself (serde hands each struct's field list to
//! the deserializer), not from a hand-kept list, so a new field without docs fails here.

use std::cell::RefCell;
use std::path::PathBuf;

use serde::de::value::{Error, StrDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer as _, MapAccess, Visitor};
use tftpd::config::Config;

/// A deserializer that walks to the struct at `path` and records its field names there.
/// Anything that is not a struct (a leaf value) fails, which is how leaves are told apart.
struct Probe<'a> {
    path: &'a [&'static str],
    found: &'a RefCell<Option<&'static [&'static str]>>,
}

impl<'de> Deserializer<'de> for Probe<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
        Err(de::Error::custom("a leaf value"))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.path.split_first() {
            None => {
                *self.found.borrow_mut() = Some(fields);
                Err(de::Error::custom("recorded"))
            }
            Some((key, rest)) => visitor.visit_map(OneKey {
                key: Some(key),
                rest,
                found: self.found,
            }),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

/// A map with a single key whose value is probed further down the path.
struct OneKey<'a> {
    key: Option<&'static str>,
    rest: &'a [&'static str],
    found: &'a RefCell<Option<&'static [&'static str]>>,
}

impl<'de> MapAccess<'de> for OneKey<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.key.take() {
            None => Ok(None),
            Some(key) => {
                let key: StrDeserializer<'_, Error> = key.into_deserializer();
                seed.deserialize(key).map(Some)
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        seed.deserialize(Probe {
            path: self.rest,
            found: self.found,
        })
    }
}

/// The fields of the struct at `path`, or None when `path` names a leaf.
fn fields_at(path: &[&'static str]) -> Option<&'static [&'static str]> {
    let found = RefCell::new(None);
    let _ = <Config as serde::Deserialize>::deserialize(Probe {
        path,
        found: &found,
    });
    found.into_inner()
}

/// Every leaf key the parser accepts, dotted ("uploads.max_size").
fn parser_keys() -> Vec<String> {
    fn walk(path: &mut Vec<&'static str>, out: &mut Vec<String>) {
        match fields_at(path) {
            Some(fields) => {
                for field in fields {
                    path.push(field);
                    walk(path, out);
                    path.pop();
                }
            }
            None => out.push(path.join(".")),
        }
    }
    let mut out = Vec::new();
    walk(&mut Vec::new(), &mut out);
    out
}

fn read(relative: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The keys the man page documents: the bold tag line after each `.TP`.
fn man_page_keys(page: &str) -> Vec<String> {
    let lines: Vec<&str> = page.lines().collect();
    lines
        .windows(2)
        .filter(|w| w[0] == ".TP")
        .filter_map(|w| w[1].strip_prefix(".B "))
        .filter(|tag| !tag.starts_with('/'))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_probe_finds_sections_and_leaves() {
    let keys = parser_keys();
    for expected in [
        "root",
        "listen",
        "uploads.max_size",
        "ebpf.pin_dir",
        "shutdown.grace_period_secs",
    ] {
        assert!(
            keys.iter().any(|k| k == expected),
            "{expected} not among {keys:?}"
        );
    }
    assert!(
        !keys.iter().any(|k| k == "uploads" || k == "source"),
        "sections and skipped fields are not keys: {keys:?}"
    );
}

/// The text after `heading` up to the next heading (`next`), if the page has `heading`.
fn section<'a>(page: &'a str, heading: &str, next: &str) -> Option<&'a str> {
    let (_, after) = page.split_once(heading)?;
    Some(after.split(next).next().unwrap_or(after))
}

#[test]
fn every_parser_key_is_in_the_man_page_and_the_reference() {
    let page = read("dist/man/tftpd.toml.5");
    let documented = man_page_keys(&page);
    let reference = read("docs/config-reference.md");
    let mut missing = Vec::new();
    let removed: Vec<&str> = tftpd::config::REMOVED
        .iter()
        .map(|k| k.trim_start_matches('[').trim_end_matches(']'))
        .collect();
    for key in parser_keys() {
        if removed.contains(&key.as_str()) {
            // Still read, doing nothing: listed where removed keys are, not as settings.
            let man = page.split_once(".SH REMOVED KEYS").map(|(_, s)| s);
            let leaf = key.rsplit('.').next().unwrap_or(&key);
            if !man.is_some_and(|m| m.contains(leaf)) {
                missing.push(format!("{key} (dist/man/tftpd.toml.5, REMOVED KEYS)"));
            }
            let table = reference.split_once("## Removed keys").map(|(_, s)| s);
            if !table.is_some_and(|t| {
                t.contains(&format!("`{key}`")) || t.contains(&format!("`[{key}]`"))
            }) {
                missing.push(format!("{key} (docs/config-reference.md, ## Removed keys)"));
            }
            continue;
        }
        if tftpd::config::DEPRECATED.contains(&key.as_str()) {
            // Still read and acting, but replaced: listed with its replacement, not as a
            // setting of its own.
            let man = section(&page, ".SH DEPRECATED KEYS", "\n.SH ");
            if !man.is_some_and(|m| m.contains(&key)) {
                missing.push(format!("{key} (dist/man/tftpd.toml.5, DEPRECATED KEYS)"));
            }
            let table = section(&reference, "## Deprecated keys", "\n## ");
            if !table.is_some_and(|t| t.contains(&format!("| `{key}` |"))) {
                missing.push(format!(
                    "{key} (docs/config-reference.md, ## Deprecated keys)"
                ));
            }
            continue;
        }
        if !documented.contains(&key) {
            missing.push(format!("{key} (dist/man/tftpd.toml.5)"));
        }
        // The reference has one table per section, keyed by the last part in backticks.
        let (section, leaf) = key.rsplit_once('.').unwrap_or(("", &key));
        let heading = if section.is_empty() {
            "## Top level".to_string()
        } else {
            format!("## `[{section}]`")
        };
        let table = reference
            .split_once(&heading)
            .map(|(_, after)| after.split("\n## ").next().unwrap_or(""));
        if !table.is_some_and(|t| t.contains(&format!("| `{leaf}` |"))) {
            missing.push(format!("{key} (docs/config-reference.md, under {heading})"));
        }
    }
    assert!(
        missing.is_empty(),
        "undocumented configuration keys: {missing:?}"
    );
}

#[test]
fn every_man_page_key_is_accepted_by_the_parser() {
    let keys = parser_keys();
    let documented = man_page_keys(&read("dist/man/tftpd.toml.5"));
    assert!(
        documented.len() >= 20,
        "too few keys found in the man page: {documented:?}"
    );
    let unknown: Vec<&String> = documented.iter().filter(|k| !keys.contains(k)).collect();
    assert!(
        unknown.is_empty(),
        "tftpd.toml(5) documents keys the parser rejects: {unknown:?}"
    );
}
