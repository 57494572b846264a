//! `tftpd --check-config`, run as an operator runs it: every TOML block of docs/recipes/ and of
//! the README loads, opens its root and draws no warning; a file with settings that do nothing is accepted
//! (exit 0) with a warning naming each; and every complete dnsmasq file in the recipes passes
//! `dnsmasq --test`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tftpd::config::Config;

/// A directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "tftpd-check-{tag}-{}-{:x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&p).expect("creating a scratch directory");
        Self(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn docs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs")
}

/// `tftpd --check-config --config FILE --root ROOT`: the recipes name a production root,
/// which this machine need not have.
fn check(file: &Path, root: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tftpd"))
        .arg("--check-config")
        .arg("--config")
        .arg(file)
        .arg("--root")
        .arg(root)
        .output()
        .expect("running tftpd --check-config")
}

/// The ```toml blocks of a Markdown page.
fn toml_blocks(page: &str) -> Vec<String> {
    fenced_blocks(page, "```toml")
}

/// The blocks of a Markdown page fenced by `opening` (```toml, or ``` alone).
fn fenced_blocks(page: &str, opening: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in page.lines() {
        match &mut current {
            None if line.trim_start() == opening => current = Some(String::new()),
            Some(block) if line.trim_start() == "```" => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    blocks
}

#[test]
fn every_recipe_config_passes_check_config_without_a_warning() {
    let mut pages: Vec<PathBuf> = std::fs::read_dir(docs().join("recipes"))
        .expect("docs/recipes")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("md"))
        .collect();
    pages.push(docs().join("../README.md"));
    let mut checked = Vec::new();
    for page in pages {
        let text = std::fs::read_to_string(&page).expect("read recipe");
        for (i, block) in toml_blocks(&text).into_iter().enumerate() {
            let scratch = Scratch::new("recipe");
            let root = scratch.0.join("root");
            std::fs::create_dir(&root).expect("root");
            // The recipe says to create its upload directories; do as it says.
            let config = Config::from_toml_str(&block, None)
                .unwrap_or_else(|e| panic!("{} block {i}: {e}", page.display()));
            for glob in &config.uploads.allow {
                if let Some((dir, _)) = glob.rsplit_once('/') {
                    std::fs::create_dir_all(root.join(dir)).expect("upload directory");
                }
            }
            let file = scratch.0.join("tftpd.toml");
            std::fs::write(&file, &block).expect("write config");
            let out = check(&file, &root);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && stderr.is_empty(),
                "{} block {i}: --check-config exited {:?}, said: {stderr}",
                page.display(),
                out.status.code()
            );
            checked.push(format!("{}#{i}", page.display()));
        }
    }
    assert!(
        checked.len() >= 6,
        "one complete config per recipe and the README's at least, found {checked:?}"
    );
}

#[test]
fn settings_that_do_nothing_are_warned_about_and_the_file_still_passes() {
    let scratch = Scratch::new("warn");
    let file = scratch.0.join("tftpd.toml");
    std::fs::write(
        &file,
        "write = \"create\"\n[uploads]\nallow = [\"/backups/*\"]\n\
         [ebpf]\nxdp_rate_limit = 50\n",
    )
    .expect("write config");
    let out = check(&file, &scratch.0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "a warning is not an error: {stderr}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("configuration OK"),
        "still OK: {:?}",
        out.stdout
    );
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("tftpd: warning: "))
        .collect();
    assert_eq!(warnings.len(), 2, "two warnings: {stderr}");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("uploads.allow \"/backups/*\" can never match")),
        "{stderr}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("ebpf.xdp_rate_limit = 50 does nothing")),
        "{stderr}"
    );
}

#[test]
fn a_deprecated_key_passes_with_a_warning_naming_its_replacement() {
    let scratch = Scratch::new("deprecated");
    let file = scratch.0.join("tftpd.toml");
    std::fs::write(&file, "[performance.batching]\nrecvmmsg = false\n").expect("write config");
    let out = check(&file, &scratch.0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "an old file still passes: {stderr}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("tftpd: warning: "))
        .collect();
    assert!(
        warnings.len() == 1
            && warnings[0].contains("performance.batching.recvmmsg (false) is deprecated")
            && warnings[0].contains("performance.batching.recv_batch = 1"),
        "{stderr}"
    );
}

#[test]
fn every_dnsmasq_file_in_the_recipes_passes_dnsmasq_test() {
    let test = "every_dnsmasq_file_in_the_recipes_passes_dnsmasq_test";
    if Command::new("dnsmasq").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test} cannot run under CI=true: dnsmasq is not installed"
        );
        eprintln!("skipping: {test} needs dnsmasq (cargo xtask setup installs dnsmasq-base)");
        return;
    }
    let page = std::fs::read_to_string(docs().join("recipes/pxe-bios-uefi.md")).expect("recipe");
    // A complete file hands out addresses; the other plain blocks are file trees and commands.
    let files: Vec<String> = fenced_blocks(&page, "```")
        .into_iter()
        .filter(|b| b.lines().any(|l| l.starts_with("dhcp-range=")))
        .collect();
    assert_eq!(
        files.len(),
        2,
        "the plain and the iPXE dnsmasq files: {files:?}"
    );
    let scratch = Scratch::new("dnsmasq");
    for (i, text) in files.iter().enumerate() {
        let file = scratch.0.join(format!("pxe-{i}.conf"));
        std::fs::write(&file, text).expect("write dnsmasq file");
        let out = Command::new("dnsmasq")
            .arg("--test")
            .arg(format!("--conf-file={}", file.display()))
            .output()
            .expect("running dnsmasq --test");
        assert!(
            out.status.success(),
            "dnsmasq file {i} of the PXE recipe: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_toml_blocks_of_a_page_are_found() {
    let page = "text\n```toml\na = 1\n```\n```sh\nls\n```\n  ```toml\nb = 2\n  ```\n";
    assert_eq!(toml_blocks(page), vec!["a = 1\n", "b = 2\n"]);
}
