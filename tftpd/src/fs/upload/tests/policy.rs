//! What an upload may write: the write mode and allow-list, refused before any file is made,
//! and targets that stay inside the root and are regular files.

use std::os::unix::fs::symlink;

use super::*;

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

#[cfg(linux)]
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
    let err =
        UploadPolicy::new(WriteMode::Create, &["a[".to_string()], 1, 0o644).expect_err("bad glob");
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
