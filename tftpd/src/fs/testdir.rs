//! A temporary directory for tests, removed on drop (no extra dependency for one struct).

use std::path::{Path, PathBuf};

pub(crate) struct TestDir(PathBuf);

impl TestDir {
    pub(crate) fn new() -> Self {
        let p = std::env::temp_dir().join(format!("tftpd-test-{:016x}", fastrand::u64(..)));
        std::fs::create_dir(&p).expect("creating a test directory");
        Self(p)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TestDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
