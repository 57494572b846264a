//! docs/config-reference.md states the code's defaults: for every row whose default cell
//! starts with a TOML value in backticks, a file that sets the key to that value must load to
//! exactly [`Config::default`]. A default changed in the code (or in the page) without the
//! other fails here, naming the key. Rows whose default is prose ("none", "required", "=
//! `max_transfers`") and the per-rule tables (`[[remap]]`, `[[client_roots]]`) are skipped.

use std::path::Path;

use super::Config;

/// (dotted key, its default cell) for every key row of the section tables.
fn documented_keys(page: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut section: Option<String> = None;
    for line in page.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            section = if heading == "Top level" {
                Some(String::new())
            } else {
                heading
                    .strip_prefix("`[")
                    .and_then(|h| h.strip_suffix("]`"))
                    .filter(|h| !h.starts_with('['))
                    .map(str::to_string)
            };
            continue;
        }
        let Some(section) = &section else { continue };
        let cells: Vec<&str> = line.split(" | ").collect();
        let (Some(key), Some(default)) = (cells.first(), cells.get(2)) else {
            continue;
        };
        let Some(key) = key
            .strip_prefix("| `")
            .and_then(|k| k.strip_suffix('`'))
            .filter(|k| !k.contains('`'))
        else {
            continue;
        };
        let dotted = if section.is_empty() {
            key.to_string()
        } else {
            format!("{section}.{key}")
        };
        out.push((dotted, default.to_string()));
    }
    out
}

/// (dotted key, the default cell's first backticked value) for every row that has one.
fn documented_defaults(page: &str) -> Vec<(String, String)> {
    documented_keys(page)
        .into_iter()
        .filter_map(|(dotted, default)| {
            let value = default.strip_prefix('`')?.split_once('`')?.0.to_string();
            Some((dotted, value))
        })
        .collect()
}

/// `performance.file_io.read_ahead = 65536` as a TOML document.
fn as_toml(dotted: &str, value: &str) -> String {
    match dotted.rsplit_once('.') {
        None => format!("{dotted} = {value}\n"),
        Some((section, key)) => format!("[{section}]\n{key} = {value}\n"),
    }
}

#[test]
fn the_reference_states_the_codes_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/config-reference.md");
    let page = std::fs::read_to_string(&path).expect("docs/config-reference.md");
    let defaults = documented_defaults(&page);
    assert!(
        defaults.len() >= 60,
        "too few defaults found in the reference: {defaults:?}"
    );
    let mut wrong = Vec::new();
    for (key, value) in &defaults {
        let text = as_toml(key, value);
        match Config::from_toml_str(&text, None) {
            Ok(c) if c == Config::default() => {}
            Ok(_) => wrong.push(format!(
                "{key}: the reference says {value}, the code differs"
            )),
            Err(e) => wrong.push(format!("{key}: the reference's {value} does not load: {e}")),
        }
    }
    assert!(
        wrong.is_empty(),
        "docs/config-reference.md defaults:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn a_wrong_default_in_the_page_is_caught() {
    let page = "## `[shutdown]`\n\n| key | type | default |\n|---|---|---|\n\
                | `grace_period_secs` | integer | `30` | 0..=3600 | ... |\n";
    let found = documented_defaults(page);
    assert_eq!(
        found,
        vec![("shutdown.grace_period_secs".into(), "30".into())]
    );
    let c = Config::from_toml_str(&as_toml(&found[0].0, &found[0].1), None).expect("loads");
    assert_ne!(c, Config::default(), "30 is not the default grace period");
}

/// (dotted key, the first word after "default" in its entry) for every tftpd.toml(5) entry
/// that states a default as a TOML value: `true`, a number, a quoted string, `[]`.
fn man_page_defaults(page: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let lines: Vec<&str> = page.lines().collect();
    for (i, pair) in lines.windows(2).enumerate() {
        let (".TP", Some(key)) = (pair[0], pair[1].strip_prefix(".B ")) else {
            continue;
        };
        let body: String = lines[i + 2..]
            .iter()
            .take_while(|l| !l.starts_with(".TP") && !l.starts_with(".SH"))
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        let Some((_, after)) = body.split_once("default ") else {
            continue;
        };
        let word = after
            .split([' ', ';', ','])
            .next()
            .unwrap_or("")
            .trim_end_matches('.')
            .replace("\\-", "-");
        let literal = word == "true"
            || word == "false"
            || word == "[]"
            || (word.starts_with('"') && word.ends_with('"') && word.len() > 1)
            || word.starts_with(|c: char| c.is_ascii_digit());
        if literal {
            out.push((key.to_string(), word));
        }
    }
    out
}

#[test]
fn the_man_page_states_the_codes_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/man/tftpd.toml.5");
    let page = std::fs::read_to_string(&path).expect("dist/man/tftpd.toml.5");
    let defaults = man_page_defaults(&page);
    assert!(
        defaults.len() >= 50,
        "too few defaults found in tftpd.toml(5): {defaults:?}"
    );
    let mut wrong = Vec::new();
    for (key, value) in &defaults {
        match Config::from_toml_str(&as_toml(key, value), None) {
            Ok(c) if c == Config::default() => {}
            Ok(_) => wrong.push(format!(
                "{key}: the man page says {value}, the code differs"
            )),
            Err(e) => wrong.push(format!("{key}: the man page's {value} does not load: {e}")),
        }
    }
    assert!(
        wrong.is_empty(),
        "dist/man/tftpd.toml.5 defaults:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn a_wrong_default_in_the_man_page_is_caught() {
    let page = ".TP\n.B shutdown.grace_period_secs\nSeconds; default 30. The drain.\n";
    let found = man_page_defaults(page);
    assert_eq!(
        found,
        vec![("shutdown.grace_period_secs".into(), "30".into())]
    );
}

/// The keys of the section tables that the reload table (`## Reload (SIGHUP)`) does not
/// name: neither the key itself (or its `[[table]]`), nor a section holding it (`[performance.batching]`), nor its
/// last part in a row that names a sibling (`performance.socket.recv_buffer` and
/// `send_buffer`).
fn keys_missing_from_reload_table(page: &str) -> Vec<String> {
    let table = page
        .split_once("## Reload (SIGHUP)")
        .map(|(_, rest)| rest.split("\n## ").next().unwrap_or(rest))
        .unwrap_or("");
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with('|')).collect();
    let names = |row: &str, name: &str| row.contains(&format!("`{name}`"));
    documented_keys(page)
        .into_iter()
        .map(|(dotted, _)| dotted)
        .filter(|dotted| {
            let parts: Vec<&str> = dotted.split('.').collect();
            let leaf = parts[parts.len() - 1];
            let sections = (1..parts.len()).map(|n| parts[..n].join("."));
            let covered = rows.iter().any(|row| {
                names(row, dotted)
                    || names(row, &format!("[[{dotted}]]"))
                    || sections.clone().any(|s| {
                        names(row, &format!("[{s}]"))
                            || (names(row, leaf) && row.contains(&format!("`{s}.")))
                    })
            });
            !covered
        })
        .collect()
}

#[test]
fn the_reload_table_names_every_key() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/config-reference.md");
    let page = std::fs::read_to_string(&path).expect("docs/config-reference.md");
    assert!(documented_keys(&page).len() >= 80, "too few keys found");
    let missing = keys_missing_from_reload_table(&page);
    assert!(
        missing.is_empty(),
        "docs/config-reference.md: the reload table does not say what SIGHUP does to: {}",
        missing.join(", ")
    );
}

#[test]
fn a_key_left_out_of_the_reload_table_is_caught() {
    let page = "## `[performance]`\n\n| key | type | default |\n|---|---|---|\n\
                | `io` | string | `\"auto\"` | x | y |\n\
                | `profile` | string | `\"balanced\"` | x | y |\n\
                ## `[performance.socket]`\n\n| key | type | default |\n|---|---|---|\n\
                | `recv_buffer` | integer | `1` | x | y |\n\
                | `send_buffer` | integer | `1` | x | y |\n\
                ## Reload (SIGHUP)\n\n| keys | on SIGHUP |\n|---|---|\n\
                | `performance.profile` | applied |\n\
                | `performance.socket.recv_buffer` and `send_buffer` | restart |\n";
    assert_eq!(keys_missing_from_reload_table(page), vec!["performance.io"]);
}
