//! The temporary names and the start-up sweep that removes what a killed daemon left, and
//! nothing else.

use std::os::unix::fs::symlink;

use super::*;

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
