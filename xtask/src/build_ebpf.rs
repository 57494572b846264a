//! `cargo xtask build-ebpf`: builds the eBPF object with nightly, `-Z build-std=core` and
//! bpf-linker, with BTF so `bpftool map dump` prints field names. Installs what is missing
//! first: nightly's rust-src, and bpf-linker linked against the nightly's own LLVM (the
//! recipe in shared/notes/ebpf-toolchain.md: no system LLVM needed).

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::{exec, exec_in, have, workspace_root};

/// The object the daemon embeds (see tftpd/build.rs).
pub(crate) fn object_path() -> PathBuf {
    workspace_root().join("tftp-ebpf/target/bpfel-unknown-none/release/tftp-ebpf")
}

pub(crate) fn run() -> anyhow::Result<()> {
    exec(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]))?;
    if !have("bpf-linker") {
        install_bpf_linker()?;
    }
    exec_in(
        &workspace_root().join("tftp-ebpf"),
        Command::new("cargo")
            .args([
                "+nightly",
                "build",
                "--release",
                "--target",
                "bpfel-unknown-none",
                "-Z",
                "build-std=core",
            ])
            .env("RUSTFLAGS", "-C debuginfo=2 -C link-arg=--btf")
            // The daemon's build flags must not leak into the eBPF build.
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            // tftpd/build.rs looks for the object under tftp-ebpf/target, so a
            // CARGO_TARGET_DIR meant for the workspace must not move it elsewhere.
            .env_remove("CARGO_TARGET_DIR"),
    )?;
    let object = object_path();
    if !object.is_file() {
        bail!("the build finished but {} is missing", object.display());
    }
    eprintln!("xtask: eBPF object at {}", object.display());
    Ok(())
}

fn nightly(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("rustc")
        .arg("+nightly")
        .args(args)
        .output()
        .context("running rustc +nightly")?;
    if !out.status.success() {
        bail!("rustc +nightly {args:?} failed: is the nightly toolchain installed?");
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn install_bpf_linker() -> anyhow::Result<()> {
    let lib = PathBuf::from(nightly(&["--print", "sysroot"])?).join("lib");
    let version = nightly(&["-vV"])?;
    let major = version
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .and_then(|v| v.split('.').next())
        .context("nightly's LLVM version")?
        .to_string();
    let prefix = format!("libLLVM-{major}-");
    let libllvm = std::fs::read_dir(&lib)
        .with_context(|| format!("listing {}", lib.display()))?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with(&prefix) && n.ends_with(".so"))
        .with_context(|| format!("no {prefix}*.so in {}", lib.display()))?;
    let libllvm = libllvm.trim_start_matches("lib").trim_end_matches(".so");
    let rustflags = format!(
        "-L {0} -l dylib={libllvm} -C link-arg=-Wl,-rpath,{0}",
        lib.display()
    );
    exec(
        Command::new("cargo")
            .args([
                "+nightly",
                "install",
                "bpf-linker",
                "--locked",
                "--no-default-features",
                "--features",
                &format!("llvm-{major},no-llvm-linking"),
            ])
            .env("RUSTFLAGS", rustflags),
    )
}
