//! The docs stand alone: no page cites a file users do not have (this project's build
//! machine's `/work/...` tree and its `shared/notes/`), and the operator's pages carry no
//! issue numbers. The facts those notes held are in docs/kernel-measurements.md; cite that.
//! Runs in `cargo test -p xtask` (part of `cargo xtask test`).

use std::path::{Path, PathBuf};

/// Strings no shipped text may contain, with what to write instead.
const FORBIDDEN: [(&str, &str); 3] = [
    ("/work/", "a path users have"),
    ("shared/notes", "docs/kernel-measurements.md"),
    ("farm-studio", "nothing: it is a tool of the build machine"),
];

/// Pages written for the operator: no issue numbers (the design records, the benchmark log
/// and the architecture page keep theirs, as history).
fn operator_page(relative: &Path) -> bool {
    let name = relative.to_string_lossy();
    name == "README.md"
        || (name.starts_with("docs/")
            && !name.starts_with("docs/adr/")
            && name != "docs/benchmarks.md"
            && name != "docs/architecture.md")
}

/// Every text file shipped with the docs: README.md, docs/ and dist/.
fn shipped_files(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut out = vec![root.join("README.md")];
    walk(&root.join("docs"), &mut out);
    walk(&root.join("dist"), &mut out);
    out
}

/// What is wrong, one line per finding: `file:line: what`.
pub(crate) fn findings(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for path in shipped_files(root) {
        // Binary files (images) are not text and cite nothing.
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let relative = path.strip_prefix(root).unwrap_or(&path);
        for (n, line) in text.lines().enumerate() {
            for (bad, instead) in FORBIDDEN {
                if line.contains(bad) {
                    out.push(format!(
                        "{}:{}: mentions {bad:?} (cite {instead})",
                        relative.display(),
                        n + 1
                    ));
                }
            }
            if operator_page(relative) && has_issue_number(line) {
                out.push(format!(
                    "{}:{}: an issue number in an operator's page (say what it means instead)",
                    relative.display(),
                    n + 1
                ));
            }
        }
    }
    out
}

/// "issue #5", "issues #7 and #9", "(#18)".
fn has_issue_number(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    lower.match_indices('#').any(|(i, _)| {
        let digits = lower[i + 1..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        let before = lower[..i].trim_end();
        digits > 0
            && (before.ends_with("issue") || before.ends_with("issues") || before.ends_with('('))
    })
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The text of a Markdown page outside its fenced code blocks.
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Relative links in README.md and docs/ that lead nowhere: a missing file, or an anchor no
/// heading of the target page makes. A user reading the docs offline follows these.
pub(crate) fn broken_links(root: &Path) -> Vec<String> {
    let pages: Vec<PathBuf> = shipped_files(root)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "md") && !p.starts_with(root.join("dist")))
        .collect();
    let anchors = |page: &Path| -> Vec<String> {
        std::fs::read_to_string(page)
            .map(|t| {
                prose(&t)
                    .lines()
                    .filter(|l| l.starts_with('#'))
                    .filter_map(|l| l.trim_start_matches('#').strip_prefix(' '))
                    .map(slug)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for page in &pages {
        let Ok(text) = std::fs::read_to_string(page) else {
            continue;
        };
        let relative = page.strip_prefix(root).unwrap_or(page);
        let body = prose(&text);
        for (at, _) in body.match_indices("](") {
            let link = body[at + 2..].split([')', ' ', '\n']).next().unwrap_or("");
            if link.is_empty() || link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = link.split_once('#').unwrap_or((link, ""));
            let target = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap_or(root).join(file)
            };
            if !target.exists() {
                out.push(format!(
                    "{}: links to {link}, which does not exist",
                    relative.display()
                ));
            } else if !anchor.is_empty()
                && target.extension().is_some_and(|e| e == "md")
                && !anchors(&target).iter().any(|a| a == anchor)
            {
                out.push(format!(
                    "{}: links to {link}, a heading that does not exist",
                    relative.display()
                ));
            }
        }
    }
    out
}

/// The keys `tftpd/src/server/reload.rs` warns need a restart (the `("key", changed)` pairs
/// of `warn_restart_only`), so the docs can be checked against the code that decides.
fn restart_keys(reload_rs: &str) -> Vec<String> {
    let body = reload_rs
        .split_once("fn warn_restart_only")
        .map_or("", |(_, b)| b);
    // Outside and inside of string literals alternate; a key is a literal opening a tuple.
    let pieces: Vec<&str> = body.split('"').collect();
    pieces
        .iter()
        .enumerate()
        .skip(1)
        .step_by(2)
        .filter(|(i, _)| pieces[i - 1].trim_end().ends_with('('))
        .map(|(_, k)| (*k).to_string())
        .collect()
}

/// Where `key` is not documented as needing a restart: the reference's reload table (a row
/// naming it, in backticks, with "restart") and the man page's RELOAD section (after
/// "Needing a restart").
fn restart_findings(reload_rs: &str, reference: &str, man: &str) -> Vec<String> {
    let table = reference
        .split_once("## Reload (SIGHUP)")
        .map_or("", |(_, t)| t);
    let man_restart = man
        .split_once(".SH RELOAD")
        .and_then(|(_, r)| r.split_once("Needing a restart"))
        .map_or("", |(_, r)| r.split(".SH ").next().unwrap_or(""));
    let mut out = Vec::new();
    for key in restart_keys(reload_rs) {
        // reload.rs names the XDP keys together when no XDP program is loaded.
        let key = if key == "ebpf.xdp_*" {
            "ebpf.xdp_interfaces".to_string()
        } else {
            key
        };
        let in_table = table.lines().any(|l| {
            l.contains("restart")
                && (l.contains(&format!("`{key}`")) || l.contains(&format!("`[{key}]`")))
        });
        if !in_table {
            out.push(format!(
                "docs/config-reference.md: the reload table does not say {key} needs a restart"
            ));
        }
        let in_man = man_restart.lines().any(|l| {
            l.strip_prefix(".BR ")
                .or_else(|| l.strip_prefix(".B "))
                .is_some_and(|k| k.trim_end_matches([' ', ',', ';', '.']) == key)
        }) || (key == "ebpf.xdp_interfaces" && man_restart.contains(".B ebpf.xdp_*"));
        if !in_man {
            out.push(format!(
                "dist/man/tftpd.toml.5: RELOAD does not list {key} as needing a restart"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(relative: &str) -> String {
        let path = crate::workspace_root().join(relative);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn the_docs_list_every_key_the_daemon_says_needs_a_restart() {
        let reload = read("tftpd/src/server/reload.rs");
        let keys = restart_keys(&reload);
        for expected in ["listen", "ebpf.mode", "ebpf.xdp_*", "performance.realtime"] {
            assert!(
                keys.iter().any(|k| k == expected),
                "{expected} not in {keys:?}"
            );
        }
        let found = restart_findings(
            &reload,
            &read("docs/config-reference.md"),
            &read("dist/man/tftpd.toml.5"),
        );
        assert!(found.is_empty(), "fix these:\n{}", found.join("\n"));
    }

    #[test]
    fn a_restart_key_missing_from_the_docs_is_found() {
        let reload = "fn warn_restart_only() { [(\"listen\", a), (\"log.format\", b)] }";
        let reference = "## Reload (SIGHUP)\n| `listen` | restart |\n| `log.format` | applied |\n";
        let man = ".SH RELOAD\nNeeding a restart:\n.BR listen ,\n.BR log.format .\n";
        assert_eq!(
            restart_findings(reload, reference, man),
            vec![
                "docs/config-reference.md: the reload table does not say log.format needs a restart"
            ]
        );
    }

    #[test]
    fn the_docs_cite_nothing_users_lack_and_no_issue_numbers() {
        let found = findings(&crate::workspace_root());
        assert!(found.is_empty(), "fix these:\n{}", found.join("\n"));
    }

    #[test]
    fn a_page_citing_the_notes_is_found() {
        let dir = std::env::temp_dir().join(format!("xtask-doc-check-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("docs/adr")).expect("mkdir");
        std::fs::write(dir.join("README.md"), "fine\nsee issue #21\n").expect("write");
        std::fs::write(
            dir.join("docs/tuning.md"),
            "from /work/shared/notes/fastpath-facts.md §7\n",
        )
        .expect("write");
        std::fs::write(dir.join("docs/adr/0001-x.md"), "issue #5 asked for it\n").expect("write");
        let found = findings(&dir);
        std::fs::remove_dir_all(&dir).expect("clean up");
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(
            found[0].starts_with("README.md:2: an issue number"),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|f| f.starts_with("docs/tuning.md:1: mentions \"/work/\""))
        );
        assert!(found.iter().any(|f| f.contains("\"shared/notes\"")));
    }

    #[test]
    fn every_relative_link_in_the_docs_leads_somewhere() {
        let found = broken_links(&crate::workspace_root());
        assert!(found.is_empty(), "fix these:\n{}", found.join("\n"));
    }

    #[test]
    fn a_link_to_a_missing_page_or_heading_is_found() {
        let dir = std::env::temp_dir().join(format!("xtask-links-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("docs")).expect("mkdir");
        std::fs::write(
            dir.join("README.md"),
            "[ok](docs/a.md#the-machine-and-the-method) [gone](docs/b.md) [bad](docs/a.md#nope)\n\
             ```\n[in code](nowhere.md)\n```\n",
        )
        .expect("write");
        std::fs::write(
            dir.join("docs/a.md"),
            "# A\n## The machine, and the method\n",
        )
        .expect("write");
        let found = broken_links(&dir);
        std::fs::remove_dir_all(&dir).expect("clean up");
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].contains("docs/b.md, which does not exist"),
            "{found:?}"
        );
        assert!(found[1].contains("docs/a.md#nope, a heading"), "{found:?}");
    }

    #[test]
    fn issue_numbers_are_told_from_other_hashes() {
        for yes in [
            "issue #5",
            "issues #7 and #9",
            "fixed (#18)",
            "Issue #19 item 3",
        ] {
            assert!(has_issue_number(yes), "{yes}");
        }
        for no in [
            "# Heading",
            "§7",
            "`#[cfg(test)]`",
            "color #fff",
            "row #3 of the table",
        ] {
            assert!(!has_issue_number(no), "{no}");
        }
    }
}
