//! Each check: the config that trips it, the key and reason it names, and the same config
//! with the missing half added, which says nothing.

use crate::config::Config;

/// The warnings for `toml`; unless it sets `root`, with a root that does not exist, so the
/// upload-directory check (which looks at the disk) says nothing about this machine.
fn warnings(toml: &str) -> Vec<String> {
    let mut c =
        Config::from_toml_str(toml, None).unwrap_or_else(|e| panic!("{toml:?} must load: {e}"));
    if !toml.starts_with("root =") {
        c.root = MISSING_ROOT.into();
    }
    c.warnings()
}

const MISSING_ROOT: &str = "/nonexistent/tftpd-checks-root";

/// Exactly one warning, holding every one of `words`.
fn one_warning(toml: &str, words: &[&str]) {
    let said = warnings(toml);
    assert_eq!(said.len(), 1, "one warning for {toml:?}, got {said:?}");
    for w in words {
        assert!(said[0].contains(w), "{w:?} not in {:?}", said[0]);
    }
}

fn silent(toml: &str) {
    let said = warnings(toml);
    assert!(said.is_empty(), "no warning for {toml:?}, got {said:?}");
}

#[test]
fn the_defaults_and_every_example_say_nothing() {
    silent("");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples");
    for entry in std::fs::read_dir(&dir).expect("docs/examples") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read example");
        let mut c = Config::from_toml_str(&text, path.parent()).expect("example loads");
        // The examples name roots of a production host; this one's disk is not the point.
        c.root = MISSING_ROOT.into();
        for r in &mut c.client_roots {
            r.root = MISSING_ROOT.into();
        }
        assert!(
            c.warnings().is_empty(),
            "{} has settings that do nothing: {:?}",
            path.display(),
            c.warnings()
        );
    }
}

#[test]
fn xdp_rate_limit_without_interfaces_does_nothing() {
    one_warning(
        "[ebpf]\nxdp_rate_limit = 50\n",
        &["ebpf.xdp_rate_limit = 50", "xdp_interfaces is empty"],
    );
    silent("[ebpf]\nxdp_rate_limit = 50\nxdp_interfaces = [\"eth0\"]\n");
    one_warning(
        "[performance]\nprofile = \"secure\"\n",
        &["ebpf.xdp_rate_limit = 50", "profile = \"secure\" sets it"],
    );
    silent("[performance]\nprofile = \"secure\"\n[ebpf]\nxdp_interfaces = [\"eth0\"]\n");
}

#[test]
fn xdp_deny_without_interfaces_is_not_dropped_in_the_kernel() {
    one_warning(
        "[ebpf]\nxdp_deny = [\"192.0.2.0/24\"]\n",
        &[
            "ebpf.xdp_deny",
            "192.0.2.0/24",
            "not dropped in the kernel",
            "[access] deny",
        ],
    );
    silent("[ebpf]\nxdp_deny = [\"192.0.2.0/24\"]\nxdp_interfaces = [\"eth0\"]\n");
}

#[test]
fn xdp_mode_without_interfaces_does_nothing() {
    one_warning(
        "[ebpf]\nxdp_mode = \"native\"\n",
        &["ebpf.xdp_mode", "native"],
    );
    silent("[ebpf]\nxdp_mode = \"native\"\nxdp_interfaces = [\"eth0\"]\n");
}

#[test]
fn rate_keys_without_a_rate_do_nothing() {
    for key in [
        "xdp_rate_burst = 5",
        "xdp_rate_prefix_v4 = 24",
        "xdp_rate_prefix_v6 = 48",
    ] {
        let name = key.split(' ').next().expect("key");
        one_warning(
            &format!("[ebpf]\nxdp_interfaces = [\"eth0\"]\n{key}\n"),
            &[name, "xdp_rate_limit is 0"],
        );
        silent(&format!(
            "[ebpf]\nxdp_interfaces = [\"eth0\"]\nxdp_rate_limit = 9\n{key}\n"
        ));
    }
}

#[test]
fn pin_dir_with_the_filter_off_does_nothing() {
    one_warning(
        "[ebpf]\nmode = \"off\"\npin_dir = \"/sys/fs/bpf/tftpd-b\"\n",
        &["ebpf.pin_dir", "mode = \"off\""],
    );
    silent("[ebpf]\npin_dir = \"/sys/fs/bpf/tftpd-b\"\n");
}

#[test]
fn uploads_section_with_writes_off_does_nothing() {
    one_warning(
        "[uploads]\nallow = [\"backups/*\"]\n",
        &["[uploads]", "write = \"off\""],
    );
    silent("write = \"create\"\n[uploads]\nallow = [\"*.cfg\"]\n");
}

#[test]
fn an_empty_allow_list_refuses_every_upload() {
    one_warning(
        "write = \"create\"\n[uploads]\nallow = []\n",
        &["uploads.allow = []", "refuses every upload"],
    );
}

#[test]
fn allow_globs_no_request_path_can_match_are_named_with_the_fix() {
    for (pattern, words) in [
        ("/backups/*", &["leading /", "\"backups/*\""][..]),
        ("backups/", &["never a directory", "backups/*"]),
        ("backups//*", &["empty component"]),
        ("../etc/*", &[". or .."]),
        ("a/./b", &[". or .."]),
    ] {
        let mut w = vec![pattern, "can never match"];
        w.extend_from_slice(words);
        one_warning(
            &format!("write = \"create\"\n[uploads]\nallow = [{pattern:?}]\n"),
            &w,
        );
    }
    silent("write = \"create\"\n[uploads]\nallow = [\"backups/**\", \"*.cfg\", \"a/b?/*\"]\n");
}

#[test]
fn an_upload_directory_missing_from_the_root_is_named() {
    let root = crate::fs::testdir_for_config();
    let toml = format!(
        "root = {:?}\nwrite = \"create\"\n[uploads]\nallow = [\"backups/*\", \"*.cfg\"]\n",
        root.path().display().to_string()
    );
    one_warning(
        &toml,
        &[
            "\"backups/*\"",
            "backups/ does not exist",
            "creates no directories",
        ],
    );
    std::fs::create_dir(root.path().join("backups")).expect("mkdir");
    silent(&toml);
    // A glob in the directory part, or a per-client directory, is not looked up.
    silent(&format!(
        "root = {:?}\nwrite = \"create\"\n[uploads]\nallow = [\"sw*/*\"]\n",
        root.path().display().to_string()
    ));
}

#[test]
fn port_range_with_single_port_does_nothing() {
    one_warning(
        "single_port = true\nport_range = \"50000-59999\"\n",
        &[
            "port_range = \"50000-59999\" does nothing",
            "single_port = true",
        ],
    );
}

#[test]
fn a_port_range_narrower_than_max_transfers_caps_concurrency() {
    one_warning(
        "port_range = \"50000-50999\"\n[limits]\nmax_transfers = 4096\n",
        &["1000 ports", "max_transfers = 4096", "server busy"],
    );
    silent("port_range = \"50000-52047\"\n");
}

#[test]
fn sections_whose_switch_is_off_do_nothing() {
    one_warning(
        "[multicast]\nttl = 4\n",
        &["[multicast]", "enabled = false"],
    );
    silent("[multicast]\nenabled = true\nttl = 4\n");
    one_warning(
        "[metrics]\nmax_connections = 4\n",
        &["metrics.max_connections", "metrics.listen is not set"],
    );
    silent("[metrics]\nlisten = \"127.0.0.1:9669\"\nmax_connections = 4\n");
    one_warning(
        "[protocol]\nsingle_port_max_windowsize = 8\n",
        &["single_port_max_windowsize = 8", "single_port = false"],
    );
    silent("single_port = true\n[protocol]\nsingle_port_max_windowsize = 8\n");
    one_warning(
        "[protocol]\nadaptive_timeout = false\nmin_timeout_ms = 40\n",
        &["min_timeout_ms = 40", "adaptive_timeout = false"],
    );
    one_warning(
        "single_port = true\n[protocol]\nmin_timeout_ms = 40\n",
        &["min_timeout_ms = 40", "single_port = true", "fixed"],
    );
    silent("[protocol]\nmin_timeout_ms = 40\n");
    one_warning(
        "[performance.file_io]\ncache_size = 0\ncache_max_file = 1024\n",
        &["cache_max_file", "cache_size = 0"],
    );
}

#[test]
fn a_default_window_over_the_cap_is_capped() {
    one_warning(
        "[protocol]\ndefault_windowsize = 16\nmax_windowsize = 8\n",
        &["default_windowsize = 16", "capped at 8"],
    );
    one_warning(
        "single_port = true\n[protocol]\ndefault_windowsize = 8\n",
        &[
            "default_windowsize = 8",
            "capped at 4",
            "single_port_max_windowsize",
        ],
    );
    silent("[protocol]\ndefault_windowsize = 8\n");
}

#[test]
fn remap_rules_that_cannot_apply_are_named() {
    one_warning(
        "[[remap]]\nmatch = \"^x\"\nreplace = \"y\"\nops = [\"write\"]\n",
        &["remap[0]", "uploads only", "write = \"off\""],
    );
    silent("write = \"create\"\n[[remap]]\nmatch = \"^x\"\nreplace = \"y\"\nops = [\"write\"]\n");
    one_warning(
        "[[remap]]\nmatch = \"^x\"\naction = \"deny\"\nreplace = \"y\"\n",
        &["remap[0].replace", "deny"],
    );
}

#[test]
fn a_client_root_an_earlier_one_covers_is_never_used() {
    let dir = crate::fs::testdir_for_config();
    let d = dir.path().display().to_string();
    one_warning(
        &format!(
            "[[client_roots]]\nclients = [\"10.0.0.0/8\"]\nroot = {d:?}\n\
             [[client_roots]]\nclients = [\"10.1.0.0/16\"]\nroot = {d:?}\n"
        ),
        &["client_roots[1]", "10.1.0.0/16", "never used"],
    );
    silent(&format!(
        "[[client_roots]]\nclients = [\"10.1.0.0/16\"]\nroot = {d:?}\n\
         [[client_roots]]\nclients = [\"10.0.0.0/8\"]\nroot = {d:?}\n"
    ));
}

#[test]
fn removed_keys_are_among_the_warnings() {
    one_warning(
        "[performance.file_io]\nsendfile = true\n",
        &["performance.file_io.sendfile", "does nothing"],
    );
}
