//! Uploads: the policy, the two temporary-file strategies, the sweep and the two space caps.

use std::os::unix::fs::{PermissionsExt as _, symlink};
use std::path::Path;

use super::*;
use crate::fs::testdir::TestDir;

fn setup(mode: WriteMode, allow: &[&str], max: u64) -> (TestDir, Root, UploadPolicy) {
    let t = TestDir::new();
    std::fs::create_dir_all(t.path().join("root/sub")).expect("root");
    std::fs::write(t.path().join("root/existing.bin"), b"old content").expect("existing");
    let root = Root::open(&t.path().join("root")).expect("open root");
    let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
    let policy = UploadPolicy::new(mode, &allow, max, 0o640).expect("policy");
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

#[test]
fn create_mode_stores_a_new_file_with_the_configured_mode() {
    let (t, root, policy) = setup(WriteMode::Create, &["**"], 1 << 20);
    let mut up = root
        .create_upload(&path("sub/new.bin"), &policy)
        .expect("create");
    up.write(b"hello ").expect("write");
    up.write(b"world").expect("write");
    assert_eq!(up.written(), 11, "written() counts both writes");
    up.commit().expect("commit");
    let p = t.path().join("root/sub/new.bin");
    assert_eq!(
        std::fs::read(&p).expect("read back"),
        b"hello world",
        "the committed file holds what was written, in order"
    );
    let mode = std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "file_mode applied regardless of umask");
    assert_eq!(
        entries(&t.path().join("root/sub")),
        vec!["new.bin"],
        "no temp debris"
    );
}

#[test]
fn create_mode_refuses_an_existing_file_and_leaves_it_alone() {
    let (t, root, policy) = setup(WriteMode::Create, &["*"], 1 << 20);
    let err = root
        .create_upload(&path("existing.bin"), &policy)
        .expect_err("exists");
    assert!(matches!(err, ResolveError::Exists { .. }), "{err}");
    assert_eq!(
        err.wire_error().code,
        ErrorCode::FileExists,
        "the client is told the file exists"
    );
    assert_eq!(
        std::fs::read(t.path().join("root/existing.bin")).expect("read"),
        b"old content",
        "the existing file is untouched"
    );
    assert_eq!(
        entries(&t.path().join("root")),
        vec!["existing.bin", "sub"],
        "no temp file was made"
    );
}

#[test]
fn file_appearing_during_a_create_upload_is_not_clobbered() {
    let (t, root, policy) = setup(WriteMode::Create, &["*"], 1 << 20);
    let mut up = root
        .create_upload(&path("race.bin"), &policy)
        .expect("create");
    up.write(b"mine").expect("write");
    std::fs::write(t.path().join("root/race.bin"), b"theirs").expect("racing writer");
    let err = up.commit().expect_err("must not replace");
    assert!(matches!(err, UploadError::Exists { .. }), "{err}");
    assert_eq!(
        std::fs::read(t.path().join("root/race.bin")).expect("read"),
        b"theirs",
        "the file that appeared first wins"
    );
    assert_eq!(
        entries(&t.path().join("root")),
        vec!["existing.bin", "race.bin", "sub"],
        "the failed commit removed its temp file"
    );
}

#[test]
fn overwrite_replaces_atomically() {
    let (t, root, policy) = setup(WriteMode::Overwrite, &["*"], 1 << 20);
    let mut up = root
        .create_upload(&path("existing.bin"), &policy)
        .expect("create");
    up.write(b"new").expect("write");
    assert_eq!(
        std::fs::read(t.path().join("root/existing.bin")).expect("read"),
        b"old content",
        "the old file stays until commit"
    );
    up.commit().expect("commit");
    assert_eq!(
        std::fs::read(t.path().join("root/existing.bin")).expect("read"),
        b"new",
        "the commit replaced the content"
    );
    assert_eq!(
        entries(&t.path().join("root")),
        vec!["existing.bin", "sub"],
        "the temp file became the target"
    );
}

#[test]
fn aborted_or_dropped_upload_leaves_the_old_file_and_no_debris() {
    let (t, root, policy) = setup(WriteMode::Overwrite, &["*"], 1 << 20);
    let mut up = root
        .create_upload(&path("existing.bin"), &policy)
        .expect("create");
    up.write(b"partial").expect("write");
    drop(up);
    let mut up = root
        .create_upload(&path("other.bin"), &policy)
        .expect("create");
    up.write(b"partial").expect("write");
    up.abort();
    assert_eq!(
        std::fs::read(t.path().join("root/existing.bin")).expect("read"),
        b"old content",
        "the dropped overwrite left the old content"
    );
    assert_eq!(
        entries(&t.path().join("root")),
        vec!["existing.bin", "sub"],
        "no temp files"
    );
}

#[test]
fn too_large_upload_is_refused_before_writing() {
    let (t, root, policy) = setup(WriteMode::Create, &["*"], 10);
    let mut up = root
        .create_upload(&path("big.bin"), &policy)
        .expect("create");
    up.write(b"0123456789").expect("exactly the limit");
    let err = up.write(b"x").expect_err("over the limit");
    assert!(
        matches!(err, UploadError::TooLarge { limit: 10, .. }),
        "{err}"
    );
    assert_eq!(
        err.wire_error().code,
        ErrorCode::DiskFull,
        "too large is disk full on the wire"
    );
    assert_eq!(up.written(), 10, "the refused block was not counted");
    drop(up);
    assert_eq!(
        entries(&t.path().join("root")),
        vec!["existing.bin", "sub"],
        "the refused upload left nothing behind"
    );
}

#[test]
fn file_mode_is_applied_whatever_the_umask() {
    // 0o666 has the group and other write bits a usual umask (022) would clear if the
    // mode were only passed to open(2).
    let t = TestDir::new();
    std::fs::create_dir(t.path().join("root")).expect("root");
    let root = Root::open(&t.path().join("root")).expect("open root");
    for (name, bits) in [
        ("rw.bin", 0o666),
        ("private.bin", 0o600),
        ("odd.bin", 0o4755),
    ] {
        let policy =
            UploadPolicy::new(WriteMode::Create, &["*".to_string()], 10, bits).expect("policy");
        let mut up = root.create_upload(&path(name), &policy).expect("create");
        up.write(b"x").expect("write");
        up.commit().expect("commit");
        let mode = std::fs::metadata(t.path().join("root").join(name))
            .expect("meta")
            .permissions()
            .mode()
            & 0o7777;
        assert_eq!(
            mode,
            bits & 0o777,
            "{name}: file_mode {bits:o} applied, set-id and sticky bits dropped"
        );
    }
}

#[test]
fn policy_refusals_come_before_any_file_is_made() {
    let (t, root, policy) = setup(WriteMode::Off, &["*"], 100);
    let err = root
        .create_upload(&path("a.bin"), &policy)
        .expect_err("off");
    assert!(matches!(err, ResolveError::WriteDisabled), "{err}");
    let (_t2, root, policy) = setup(WriteMode::Create, &["*.bin"], 100);
    assert!(
        root.create_upload(&path("a.bin"), &policy).is_ok(),
        "*.bin allows a.bin"
    );
    for name in ["a.txt", "sub/a.bin"] {
        let err = root
            .create_upload(&path(name), &policy)
            .expect_err("not allowed");
        assert!(
            matches!(err, ResolveError::NotAllowed { .. }),
            "{name}: {err}"
        );
        assert!(err.is_security_refusal(), "an audit event");
    }
    let (_t3, root, policy) = setup(WriteMode::Create, &[], 100);
    let err = root
        .create_upload(&path("a.bin"), &policy)
        .expect_err("an empty allow-list allows nothing");
    assert!(matches!(err, ResolveError::NotAllowed { .. }), "{err}");
    assert_eq!(
        entries(&t.path().join("root")),
        vec!["existing.bin", "sub"],
        "a refused upload makes no file"
    );
}

#[test]
fn uploads_never_leave_the_root_or_create_directories() {
    let (t, root, policy) = setup(WriteMode::Overwrite, &["**"], 100);
    symlink(t.path(), t.path().join("root/out")).expect("symlink");
    symlink("..", t.path().join("root/up")).expect("symlink");
    symlink("../..", t.path().join("root/sub/upup")).expect("symlink");
    symlink(t.path().join("victim"), t.path().join("root/link.bin")).expect("symlink");
    for name in ["out/evil", "up/evil", "sub/upup/evil"] {
        let err = root
            .create_upload(&path(name), &policy)
            .expect_err("escape");
        assert!(matches!(err, ResolveError::Escapes { .. }), "{name}: {err}");
        assert!(err.is_security_refusal(), "{name}: an escape is audited");
    }
    let err = root
        .create_upload(&path("nodir/x.bin"), &policy)
        .expect_err("no dir");
    assert!(matches!(err, ResolveError::NotFound { .. }), "{err}");
    let err = root
        .create_upload(&path("link.bin"), &policy)
        .expect_err("symlink target");
    assert!(matches!(err, ResolveError::NotRegularFile { .. }), "{err}");
    assert_eq!(
        entries(t.path()),
        vec!["root"],
        "nothing was written outside the root"
    );
    assert!(
        !t.path().join("root/nodir").exists(),
        "no directory created"
    );
}

#[test]
fn overwrite_refuses_targets_that_are_not_regular_files() {
    let (t, root, policy) = setup(WriteMode::Overwrite, &["**"], 100);
    nix::unistd::mkfifo(&t.path().join("root/fifo"), Mode::from_bits_truncate(0o644))
        .expect("mkfifo");
    for name in ["sub", "fifo"] {
        let err = root
            .create_upload(&path(name), &policy)
            .expect_err("not a regular file");
        assert!(
            matches!(err, ResolveError::NotRegularFile { .. }),
            "{name}: {err}"
        );
    }
    assert!(
        t.path().join("root/sub").is_dir(),
        "the directory is still there"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn uploads_through_a_symlinked_directory_inside_the_root_work_on_linux() {
    let (t, root, policy) = setup(WriteMode::Create, &["**"], 100);
    symlink("sub", t.path().join("root/alias")).expect("symlink");
    let mut up = root
        .create_upload(&path("alias/via-link.bin"), &policy)
        .expect("a link inside the root");
    up.write(b"linked").expect("write");
    up.commit().expect("commit");
    assert_eq!(
        std::fs::read(t.path().join("root/sub/via-link.bin")).expect("read"),
        b"linked",
        "the upload landed in the link's target directory"
    );
}

#[test]
fn invalid_glob_is_an_error_naming_it() {
    let err = UploadPolicy::new(WriteMode::Create, &["a[".to_string()], 1, 0o644)
        .expect_err("bad glob");
    assert!(err.to_string().contains("a["), "{err}");
}

#[test]
fn write_mode_parses_and_lists_allowed_values() {
    for mode in [WriteMode::Off, WriteMode::Create, WriteMode::Overwrite] {
        assert_eq!(
            mode.as_str().parse::<WriteMode>(),
            Ok(mode),
            "{} round-trips",
            mode.as_str()
        );
    }
    let err = "yes".parse::<WriteMode>().expect_err("invalid");
    assert!(err.contains("off, create, overwrite"), "{err}");
}
