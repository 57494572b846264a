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

#[cfg(test)]
mod tests {
    use super::*;

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
