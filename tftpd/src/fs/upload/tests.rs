//! Uploads: the policy, the two temporary-file strategies, the sweep and the two space caps.

use std::os::unix::fs::{PermissionsExt as _, symlink};
use std::path::Path;

use super::*;
use crate::fs::testdir::TestDir;
use crate::proto::ErrorCode;

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
fn temp_names_are_recognised_exactly() {
    for _ in 0..32 {
        let name = temp::temp_name("boot.img");
        assert!(
            temp::is_temp_name(name.as_bytes()),
            "{name}: made, so matched"
        );
    }
    let long = "x".repeat(300);
    assert!(
        temp::temp_name(&long).len() <= 255,
        "a long target still gives a name within NAME_MAX"
    );
    for name in [
        ".x.tftpd-0123abcd",
        "..tftpd-0123abcd.tftpd-ffffffff",
        ".a b.tftpd-00000000",
    ] {
        assert!(temp::is_temp_name(name.as_bytes()), "{name}: matches");
    }
    for name in [
        ".x.tftpd-zzzzzzzz",
        ".x.tftpd-0123ABCD",
        ".x.tftpd-0123abc",
        ".x.tftpd-0123abcde",
        "..tftpd-0123abcd",
        "x.tftpd-0123abcd",
        ".x.tftpe-0123abcd",
        ".x.tftpd-0123abcd~",
    ] {
        assert!(!temp::is_temp_name(name.as_bytes()), "{name}: no match");
    }
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

#[test]
fn sweep_removes_debris_and_leaves_everything_else_alone() {
    let (t, root, policy) = setup(WriteMode::Create, &["**"], 1 << 20);
    let r = t.path().join("root");
    let debris = [
        ".existing.bin.tftpd-0123abcd",
        "sub/.deep.bin.tftpd-ffffffff",
    ];
    for d in debris {
        std::fs::write(r.join(d), b"left by a killed daemon").expect("debris");
    }
    let kept_files = [".x.tftpd-zzzzzzzz", ".x.tftpd-0123ABCD", "x.tftpd-0123abcd"];
    for k in kept_files {
        std::fs::write(r.join(k), b"not ours").expect("look-alike");
    }
    std::fs::create_dir(r.join(".dir.tftpd-0123abcd")).expect("a directory named like debris");
    symlink("existing.bin", r.join(".link.tftpd-0123abcd")).expect("symlink named like debris");
    // Debris outside the root, reachable only through a symlinked directory: never entered.
    std::fs::create_dir(t.path().join("outside")).expect("outside");
    std::fs::write(t.path().join("outside/.o.tftpd-0123abcd"), b"x").expect("outside debris");
    symlink(t.path().join("outside"), r.join("sub/out")).expect("symlinked dir");
    // A live upload on the named fallback: its file is locked, so it stays.
    let mut live = root
        .create_upload(&path("live.bin"), &policy.clone().with_named_temp())
        .expect("create");
    live.write(b"running").expect("write");

    let report = sweep(std::iter::once(&root));
    let mut removed: Vec<_> = report
        .removed
        .iter()
        .map(|p| p.strip_prefix(&r).expect("beneath the root").to_owned())
        .collect();
    removed.sort();
    assert_eq!(
        removed,
        debris.map(std::path::PathBuf::from).to_vec(),
        "exactly the debris was removed"
    );
    assert_eq!(report.in_use, 1, "the live upload's file was seen and left");
    assert_eq!(report.skipped, 0, "nothing unreadable here");
    for d in debris {
        assert!(!r.join(d).exists(), "{d} removed");
    }
    for k in kept_files {
        assert!(r.join(k).exists(), "{k} left alone");
    }
    assert!(
        r.join(".dir.tftpd-0123abcd").is_dir(),
        "the directory left alone"
    );
    assert!(
        r.join(".link.tftpd-0123abcd").symlink_metadata().is_ok(),
        "the symlink left alone"
    );
    assert!(
        t.path().join("outside/.o.tftpd-0123abcd").exists(),
        "nothing outside the root removed"
    );
    assert_eq!(
        entries(&r)
            .iter()
            .filter(|e| e.starts_with(".live.bin.tftpd-"))
            .count(),
        1,
        "the live upload's temporary file is still there"
    );
    live.commit()
        .expect("the live upload still commits after the sweep");
    assert_eq!(
        std::fs::read(r.join("live.bin")).expect("read"),
        b"running",
        "and its data is whole"
    );
}

#[test]
fn sweep_walks_a_root_given_twice_once() {
    let (t, root, _policy) = setup(WriteMode::Create, &["*"], 1);
    std::fs::write(t.path().join("root/.a.tftpd-00000000"), b"x").expect("debris");
    let again = Root::open(&t.path().join("root")).expect("open again");
    let report = sweep([&root, &again]);
    assert_eq!(report.removed.len(), 1, "removed once: {report:?}");
    assert_eq!(
        report.skipped, 0,
        "the second walk found nothing to fail on"
    );
}

#[test]
fn in_flight_cap_refuses_with_error_3_and_is_released_on_drop_and_commit() {
    let count: &'static InFlight = Box::leak(Box::new(InFlight::new()));
    let (t, root, policy) = setup(WriteMode::Create, &["*"], 1 << 20);
    let policy = UploadPolicy {
        max_in_flight: 10,
        ..policy.counting_in(count)
    };
    let mut a = root.create_upload(&path("a.bin"), &policy).expect("a");
    a.check_room(Some(10)).expect("an announced size that fits");
    a.write(b"123456").expect("within the cap");
    assert_eq!(count.bytes(), 6, "a's bytes are in flight");
    let mut b = root.create_upload(&path("b.bin"), &policy).expect("b");
    let err = b
        .check_room(Some(5))
        .expect_err("a tsize past what is left");
    assert!(
        matches!(err, UploadError::InFlightFull { limit: 10, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("uploads.max_in_flight"), "{err}");
    let wire = err.wire_error();
    assert_eq!(wire.code, ErrorCode::DiskFull, "ERROR 3");
    assert_eq!(wire.message, "upload space in flight exhausted");
    b.check_room(None)
        .expect("without a tsize, room for some bytes is enough");
    let err = b.write(b"12345").expect_err("a block past the cap");
    assert!(matches!(err, UploadError::InFlightFull { .. }), "{err}");
    assert_eq!(count.bytes(), 6, "the refused block holds nothing");
    drop(a);
    assert_eq!(count.bytes(), 0, "a dropped upload gives its bytes back");
    b.write(b"1234567890").expect("the whole cap is free again");
    b.commit().expect("commit");
    assert_eq!(count.bytes(), 0, "a committed upload gives its bytes back");
    let mut c = root.create_upload(&path("c.bin"), &policy).expect("c");
    c.write(b"0123456789")
        .expect("the cap is free after the commit");
    drop(c);
    assert_eq!(
        entries(&t.path().join("root")),
        vec!["b.bin", "existing.bin", "sub"],
        "only the committed upload is there"
    );
}

#[test]
fn free_space_reserve_refuses_with_error_3() {
    let (t, root, policy) = setup(WriteMode::Create, &["*"], 1 << 20);
    // More than any filesystem here has free.
    let policy = UploadPolicy {
        min_free_bytes: u64::MAX / 2,
        ..policy
    };
    let mut up = root.create_upload(&path("a.bin"), &policy).expect("create");
    let err = up.check_room(None).expect_err("the reserve is not there");
    assert!(matches!(err, UploadError::LowSpace { .. }), "{err}");
    assert!(err.to_string().contains("uploads.min_free_bytes"), "{err}");
    let wire = err.wire_error();
    assert_eq!(wire.code, ErrorCode::DiskFull, "ERROR 3");
    assert_eq!(wire.message, "disk free-space reserve reached");
    let mut up = root.create_upload(&path("b.bin"), &policy).expect("create");
    let err = up.write(b"x").expect_err("writing checks too");
    assert!(matches!(err, UploadError::LowSpace { .. }), "{err}");
    drop(up);
    let modest = UploadPolicy {
        min_free_bytes: 1,
        ..policy
    };
    let mut up = root.create_upload(&path("c.bin"), &modest).expect("create");
    up.check_room(Some(1)).expect("a byte of reserve is there");
    up.write(b"x").expect("write");
    up.commit().expect("commit");
    assert_eq!(
        entries(&t.path().join("root")),
        vec!["c.bin", "existing.bin", "sub"],
        "the refused uploads left nothing"
    );
}

#[test]
fn free_space_is_looked_at_once_per_step_and_counts_what_is_announced() {
    use std::cell::Cell;
    let asked = Cell::new(0);
    let free = Cell::new(10 * space::CHECK_EVERY);
    let available = || {
        asked.set(asked.get() + 1);
        Ok(free.get())
    };
    let mut r = Reserve::new(space::CHECK_EVERY);
    assert_eq!(
        r.allows(0, 9 * space::CHECK_EVERY, available),
        Ok(true),
        "fits"
    );
    assert_eq!(
        Reserve::new(space::CHECK_EVERY).allows(0, 9 * space::CHECK_EVERY + 1, available),
        Ok(false),
        "an announced size past the reserve"
    );
    let mut r = Reserve::new(space::CHECK_EVERY);
    let mut total = 0;
    while total < 3 * space::CHECK_EVERY {
        total += 512;
        assert_eq!(r.allows(total, 0, available), Ok(true), "room at {total}");
    }
    assert_eq!(
        asked.get(),
        2 + 3,
        "one look per CHECK_EVERY bytes, not per block"
    );
    free.set(space::CHECK_EVERY - 1);
    let mut refused = false;
    for _ in 0..(space::CHECK_EVERY / 512) {
        total += 512;
        if r.allows(total, 0, available) == Ok(false) {
            refused = true;
            break;
        }
    }
    assert!(
        refused,
        "the reserve trips within one step of the space going"
    );
    let mut off = Reserve::new(0);
    assert_eq!(off.allows(0, u64::MAX, available), Ok(true), "0 disables");
}
