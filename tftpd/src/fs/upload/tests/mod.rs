//! Uploads: the policy, the two temporary-file strategies, the sweep and the two space caps,
//! by topic. The helpers here make a served root with an upload policy and list directories.

mod caps;
mod commit;
mod policy;
mod sweep;

use std::path::Path;

use super::*;
use crate::fs::testdir::TestDir;

fn setup(mode: WriteMode, allow: &[&str], max: u64) -> (TestDir, Root, UploadPolicy) {
    let t = TestDir::new();
    std::fs::create_dir_all(t.path().join("root/sub")).expect("root");
    std::fs::write(t.path().join("root/existing.bin"), b"old content").expect("existing");
    let root = Root::open(&t.path().join("root")).expect("open root");
    let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
    // A count of its own: the process's is shared by every test running at once.
    let policy = UploadPolicy::new(mode, &allow, max, 0o640)
        .expect("policy")
        .counting_in(Box::leak(Box::new(InFlight::new())));
    (t, root, policy)
}

fn path(s: &str) -> RequestPath {
    RequestPath::parse(s.as_bytes()).expect("valid test path")
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
