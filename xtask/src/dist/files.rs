//! File helpers for staging the package tree: every file gets an explicit mode, so the
//! package does not depend on the umask of whoever builds it.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

pub(super) fn walk_dirs(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut dirs = vec![root.to_path_buf()];
    let mut i = 0;
    while i < dirs.len() {
        let dir = dirs[i].clone();
        for entry in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
            if entry.file_type()?.is_dir() {
                dirs.push(entry.path());
            }
        }
        i += 1;
    }
    Ok(dirs)
}

pub(super) fn mkdir(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

pub(super) fn write(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        mkdir(parent)?;
    }
    let mut file =
        fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {mode:o} {}", path.display()))
}

pub(super) fn copy(from: &Path, to: &Path, mode: u32) -> anyhow::Result<()> {
    let bytes = fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    write(to, &bytes, mode)
}

/// gzip -9n (no name or timestamp inside, as Debian policy asks) of `from` into `to`.
pub(super) fn gzip_into(from: &Path, to: &Path) -> anyhow::Result<()> {
    let output = Command::new("gzip")
        .args(["-9n", "--stdout"])
        .arg(from)
        .output()
        .with_context(|| format!("running gzip on {}", from.display()))?;
    if !output.status.success() {
        bail!(
            "gzip {} failed: {}",
            from.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    write(to, &output.stdout, 0o644)
}

pub(super) fn gzip_in_place(path: &Path) -> anyhow::Result<()> {
    let mut gz = path.as_os_str().to_owned();
    gz.push(".gz");
    gzip_into(path, Path::new(&gz))?;
    fs::remove_file(path).with_context(|| format!("removing {}", path.display()))
}
