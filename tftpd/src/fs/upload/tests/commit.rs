//! An upload from creation to commit or abort, under both temporary-file strategies: create
//! and overwrite, a file appearing meanwhile, the file mode, and no debris left behind.

use std::os::unix::fs::PermissionsExt as _;

use super::*;
use crate::proto::ErrorCode;

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

/// The policy as it runs (O_TMPFILE first, on Linux) and forced to named temporary files,
/// as on a filesystem that refuses O_TMPFILE and on the BSDs.
fn both_strategies(policy: &UploadPolicy) -> [(&'static str, UploadPolicy); 2] {
    [
        ("default", policy.clone()),
        ("named", policy.clone().with_named_temp()),
    ]
}

#[test]
fn file_appearing_during_a_create_upload_is_not_clobbered() {
    let (t, root, policy) = setup(WriteMode::Create, &["*"], 1 << 20);
    for (how, policy) in both_strategies(&policy) {
        let name = format!("race-{how}.bin");
        let mut up = root.create_upload(&path(&name), &policy).expect("create");
        up.write(b"mine").expect("write");
        std::fs::write(t.path().join("root").join(&name), b"theirs").expect("racing writer");
        let err = up.commit().expect_err("must not replace");
        assert!(matches!(err, UploadError::Exists { .. }), "{how}: {err}");
        assert_eq!(
            err.wire_error().code,
            ErrorCode::FileExists,
            "{how}: the client is told the file exists"
        );
        assert_eq!(
            std::fs::read(t.path().join("root").join(&name)).expect("read"),
            b"theirs",
            "{how}: the file that appeared first wins"
        );
    }
    assert_eq!(
        entries(&t.path().join("root")),
        vec!["existing.bin", "race-default.bin", "race-named.bin", "sub"],
        "the failed commits left no temporary file"
    );
}

#[test]
fn overwrite_replaces_atomically() {
    let (t, root, policy) = setup(WriteMode::Overwrite, &["*"], 1 << 20);
    for (how, policy) in both_strategies(&policy) {
        std::fs::write(t.path().join("root/existing.bin"), b"old content").expect("reset");
        let mut up = root
            .create_upload(&path("existing.bin"), &policy)
            .expect("create");
        up.write(how.as_bytes()).expect("write");
        assert_eq!(
            std::fs::read(t.path().join("root/existing.bin")).expect("read"),
            b"old content",
            "{how}: the old file stays until commit"
        );
        up.commit().expect("commit");
        assert_eq!(
            std::fs::read(t.path().join("root/existing.bin")).expect("read"),
            how.as_bytes(),
            "{how}: the commit replaced the content"
        );
        let mode = std::fs::metadata(t.path().join("root/existing.bin"))
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o640, "{how}: file_mode applied to the replacement");
        assert_eq!(
            entries(&t.path().join("root")),
            vec!["existing.bin", "sub"],
            "{how}: no temporary name is left beside the target"
        );
    }
}

#[test]
fn aborted_or_dropped_upload_leaves_the_old_file_and_no_debris() {
    let (t, root, policy) = setup(WriteMode::Overwrite, &["*"], 1 << 20);
    for (how, policy) in both_strategies(&policy) {
        let mut up = root
            .create_upload(&path("existing.bin"), &policy)
            .expect("create");
        up.write(b"partial").expect("write");
        if how == "named" {
            assert_eq!(
                entries(&t.path().join("root")).len(),
                3,
                "the forced fallback does make a named temporary file"
            );
        }
        drop(up);
        let mut up = root
            .create_upload(&path("other.bin"), &policy)
            .expect("create");
        up.write(b"partial").expect("write");
        up.abort();
        assert_eq!(
            std::fs::read(t.path().join("root/existing.bin")).expect("read"),
            b"old content",
            "{how}: the dropped overwrite left the old content"
        );
        assert_eq!(
            entries(&t.path().join("root")),
            vec!["existing.bin", "sub"],
            "{how}: no temp files"
        );
    }
}

#[cfg(linux)]
#[test]
fn o_tmpfile_upload_has_no_directory_entry_while_in_flight() {
    let (t, root, policy) = setup(WriteMode::Overwrite, &["**"], 1 << 20);
    for name in ["new.bin", "existing.bin"] {
        let mut up = root.create_upload(&path(name), &policy).expect("create");
        assert!(
            up.temp.is_anonymous(),
            "{name}: O_TMPFILE works on this test directory's filesystem"
        );
        up.write(b"in flight").expect("write");
        assert!(
            !entries(&t.path().join("root"))
                .iter()
                .any(|e| temp::is_temp_name(e.as_bytes()) || (name == "new.bin" && e == name)),
            "{name}: nothing in the directory while the upload runs: {:?}",
            entries(&t.path().join("root"))
        );
        up.commit().expect("commit");
        assert_eq!(
            std::fs::read(t.path().join("root").join(name)).expect("read"),
            b"in flight",
            "{name}: linked into place on commit"
        );
    }
    assert_eq!(
        entries(&t.path().join("root")),
        vec!["existing.bin", "new.bin", "sub"],
        "create and overwrite leave only their targets"
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
