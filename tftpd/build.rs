//! Embeds the eBPF object when `cargo xtask build-ebpf` has built it. A stable `cargo build`
//! without it still builds a daemon that runs with the userspace filter (and says so).

use std::path::PathBuf;

fn main() {
    platform_aliases();
    println!("cargo::rustc-check-cfg=cfg(ebpf_object)");
    let object = std::env::var_os("TFTPD_EBPF_OBJECT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../tftp-ebpf/target/bpfel-unknown-none/release/tftp-ebpf")
        });
    println!("cargo::rerun-if-env-changed=TFTPD_EBPF_OBJECT");
    // A path that does not exist makes cargo rerun this script, and rebuild the daemon, on
    // every command. Until the object exists, watch the nearest directory of the workspace
    // that does (cargo scans a watched directory, so the object appearing is seen); never
    // anything above the workspace, which cargo would scan whole.
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let workspace = workspace.canonicalize().unwrap_or(workspace);
    let watched = object
        .ancestors()
        .find(|p| p.exists())
        .and_then(|p| p.canonicalize().ok())
        .filter(|p| p.starts_with(&workspace) && *p != workspace);
    match watched {
        Some(dir) if !object.exists() => println!("cargo::rerun-if-changed={}", dir.display()),
        _ => println!("cargo::rerun-if-changed={}", object.display()),
    }
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if linux && object.is_file() {
        println!("cargo::rustc-cfg=ebpf_object");
        println!("cargo::rustc-env=TFTPD_EBPF_OBJECT={}", object.display());
    }
}

/// Names each platform group once, as quinn-udp does with `cfg_aliases`: the code says
/// `#[cfg(linux)]` or `#[cfg(bsd)]`, and which `target_os` values a group holds lives here.
fn platform_aliases() {
    println!("cargo::rustc-check-cfg=cfg(linux)");
    println!("cargo::rustc-check-cfg=cfg(bsd)");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" {
        println!("cargo::rustc-cfg=linux");
    }
    // The BSDs tftpd builds for: no dropping socket filter, no openat2 (docs/bsd.md).
    if matches!(os.as_str(), "freebsd" | "netbsd" | "openbsd" | "dragonfly") {
        println!("cargo::rustc-cfg=bsd");
    }
}
