//! The root jail against hostile names and symlinks.

use std::os::unix::fs::symlink;

use super::*;
use crate::fs::testdir::TestDir;
use crate::proto::ErrorCode;

const SECRET: &[u8] = b"the secret outside the root";

/// tmp/secret (outside) and tmp/root (served) with a few files, the root opened with the
/// process's resolver (openat2 on Linux).
fn jail() -> (TestDir, Root) {
    jail_with(Root::open)
}

/// The same jail once per resolver: the process's, and the walk.
fn jails() -> [(TestDir, Root); 2] {
    [jail(), jail_with(Root::open_walking)]
}

fn jail_with(open: fn(&Path) -> Result<Root, ResolveError>) -> (TestDir, Root) {
    let t = TestDir::new();
    std::fs::write(t.path().join("secret"), SECRET).expect("secret");
    let root = t.path().join("root");
    std::fs::create_dir_all(root.join("sub")).expect("root/sub");
    std::fs::write(root.join("hello.txt"), b"hello").expect("hello");
    std::fs::write(root.join("sub/inner.bin"), b"inner").expect("inner");
    let r = open(&root).expect("open root");
    (t, r)
}

fn read(root: &Root, name: &[u8]) -> Result<Vec<u8>, ResolveError> {
    use std::io::Read as _;
    let p = RequestPath::parse(name)?;
    let mut f = root.open_read(&p)?;
    let mut v = Vec::new();
    f.file.read_to_end(&mut v).expect("read");
    assert_eq!(v.len() as u64, f.size, "size matches content");
    Ok(v)
}

#[test]
fn files_inside_the_root_are_served() {
    for (_t, root) in jails() {
        assert_eq!(
            read(&root, b"hello.txt").expect("hello"),
            b"hello",
            "a top-level file is served"
        );
        assert_eq!(
            read(&root, b"/sub/inner.bin").expect("inner"),
            b"inner",
            "a file in a subdirectory is served, the leading / meaning the root"
        );
    }
}

#[test]
fn no_request_name_reads_the_secret_outside_the_root() {
    for (t, root) in jails() {
        let r = t.path().join("root");
        symlink("../secret", r.join("rel-link")).expect("symlink");
        symlink(t.path().join("secret"), r.join("abs-link")).expect("symlink");
        symlink("..", r.join("up")).expect("symlink");
        let secret = t.path().join("secret");
        let absolute = secret.to_string_lossy().into_owned();
        let names: [&[u8]; 14] = [
            b"../secret",
            b"a/../../secret",
            b"/../secret",
            b"sub/../../secret",
            b"..\\secret",
            b"rel-link",
            b"abs-link",
            b"up/secret",
            b"/up/secret",
            b"sub/../up/secret",
            b"up/root/../secret",
            b"secret\0",
            b"./../secret",
            absolute.as_bytes(),
        ];
        for name in names {
            let shown = String::from_utf8_lossy(name);
            match read(&root, name) {
                Ok(bytes) => panic!("{shown} was served: {:?}", String::from_utf8_lossy(&bytes)),
                Err(err) => assert!(
                    !matches!(err, ResolveError::Io { .. }),
                    "{shown}: refused for the right reason, got {err}"
                ),
            }
        }
    }
}

#[test]
fn absolute_names_resolve_inside_the_root() {
    for (t, root) in jails() {
        let err = read(&root, b"/etc/passwd").expect_err("no etc in the root");
        assert!(matches!(err, ResolveError::NotFound { .. }), "{err}");
        std::fs::create_dir(t.path().join("root/etc")).expect("root/etc");
        std::fs::write(t.path().join("root/etc/passwd"), b"decoy").expect("decoy");
        assert_eq!(
            read(&root, b"/etc/passwd").expect("the root's own etc/passwd"),
            b"decoy",
            "an absolute name means the file under the root"
        );
    }
}

#[test]
fn symlinks_leaving_the_root_are_refused() {
    for (t, root) in jails() {
        let r = t.path().join("root");
        symlink("../secret", r.join("rel-link")).expect("symlink");
        symlink(t.path().join("secret"), r.join("abs-link")).expect("symlink");
        symlink("..", r.join("dir-link")).expect("symlink");
        symlink("/etc", r.join("etc-link")).expect("symlink");
        symlink("loop-b", r.join("loop-a")).expect("symlink");
        symlink("loop-a", r.join("loop-b")).expect("symlink");
        symlink("loop-dir/x", r.join("loop-dir")).expect("symlink");
        // /proc magic links (/proc/self/root, /proc/self/fd/N) are refused by
        // RESOLVE_NO_MAGICLINKS; a plain symlink can only reach /proc by an absolute target,
        // which RESOLVE_BENEATH refuses first.
        symlink("/proc/self/root/etc/passwd", r.join("proc-link")).expect("symlink");
        for name in [
            &b"rel-link"[..],
            b"abs-link",
            b"dir-link/secret",
            b"etc-link/passwd",
            b"loop-a",
            b"loop-a/file",
            b"loop-dir/file",
            b"proc-link",
        ] {
            let err = read(&root, name).expect_err("must not resolve");
            assert!(
                matches!(err, ResolveError::Escapes { .. }),
                "{} ({}): got {err}",
                String::from_utf8_lossy(name),
                root.resolver().label()
            );
            assert_eq!(
                err.wire_error().code,
                ErrorCode::AccessViolation,
                "an escape is an access violation on the wire"
            );
            assert!(err.is_security_refusal(), "an escape is audited");
        }
    }
}

#[cfg(linux)]
#[test]
fn symlinks_inside_the_root_work_on_linux() {
    let (t, root) = jail();
    assert_eq!(
        root.resolver(),
        Resolver::Openat2,
        "this kernel has openat2 (5.6 or later, no seccomp profile hiding it)"
    );
    symlink("sub/inner.bin", t.path().join("root/alias")).expect("symlink");
    symlink("../hello.txt", t.path().join("root/sub/up-alias")).expect("symlink");
    symlink("sub", t.path().join("root/dir-alias")).expect("symlink");
    for (name, want) in [
        (&b"alias"[..], &b"inner"[..]),
        (b"sub/up-alias", b"hello"),
        (b"dir-alias/inner.bin", b"inner"),
    ] {
        assert_eq!(
            read(&root, name).expect("a link inside the root"),
            want,
            "{} follows its link",
            String::from_utf8_lossy(name)
        );
    }
}

#[test]
fn the_walk_refuses_symlinks_even_inside_the_root() {
    let (t, root) = jail_with(Root::open_walking);
    assert_eq!(root.resolver(), Resolver::Walk, "a walking root");
    symlink("sub/inner.bin", t.path().join("root/alias")).expect("symlink");
    symlink("../hello.txt", t.path().join("root/sub/up-alias")).expect("symlink");
    symlink("sub", t.path().join("root/dir-alias")).expect("symlink");
    for name in [&b"alias"[..], b"sub/up-alias", b"dir-alias/inner.bin"] {
        let err = read(&root, name).expect_err("no symlink is followed");
        assert!(
            matches!(err, ResolveError::Escapes { .. }),
            "{}: refused as a symlink, got {err}",
            String::from_utf8_lossy(name)
        );
    }
    assert!(
        matches!(root.subdir("dir-alias"), Err(ResolveError::Escapes { .. })),
        "a symlinked subdirectory is refused too"
    );
    let sub = root.subdir("sub").expect("subdir").expect("sub exists");
    assert_eq!(
        sub.resolver(),
        Resolver::Walk,
        "a subdir keeps its root's resolver"
    );
    assert_eq!(
        read(&sub, b"inner.bin").expect("a file of the subdir"),
        b"inner",
        "the subdir serves its own files"
    );
}

#[test]
fn only_regular_files_are_served() {
    for (t, root) in jails() {
        nix::unistd::mkfifo(&t.path().join("root/fifo"), Mode::from_bits_truncate(0o644))
            .expect("mkfifo");
        // Opened without O_NONBLOCK, the FIFO would block this test forever waiting for a
        // writer; reaching the assert at all is half of what it checks.
        for name in [&b"sub"[..], b"fifo", b"sub/"] {
            let err = read(&root, name).expect_err("not a regular file");
            assert!(matches!(err, ResolveError::NotRegularFile { .. }), "{err}");
            assert_eq!(
                err.wire_error().code,
                ErrorCode::FileNotFound,
                "the client is not told what the name is"
            );
        }
        let err = read(&root, b"hello.txt/more").expect_err("a file is not a directory");
        assert!(matches!(err, ResolveError::NotFound { .. }), "{err}");
    }
}

#[cfg(linux)]
#[test]
fn device_nodes_are_refused_without_being_opened() {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    if !nix::unistd::geteuid().is_root() {
        println!("skipping: device_nodes_are_refused_without_being_opened (mknod needs root)");
        return;
    }
    for (t, root) in jails() {
        // A /dev/null twin: opening it would succeed, so only a watch can tell whether the
        // server opened it before refusing it.
        let node = t.path().join("root/dev");
        nix::sys::stat::mknod(
            &node,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o644),
            nix::sys::stat::makedev(1, 3),
        )
        .expect("mknod");
        let watch = Inotify::init(InitFlags::IN_NONBLOCK).expect("inotify");
        watch
            .add_watch(&node, AddWatchFlags::IN_OPEN)
            .expect("watch the node");
        let err = read(&root, b"dev").expect_err("a device node is refused");
        assert!(matches!(err, ResolveError::NotRegularFile { .. }), "{err}");
        let events = watch.read_events().unwrap_or_default();
        assert!(
            events.is_empty(),
            "the device was opened before it was refused: {events:?}"
        );
        // The watch works: a real open is seen.
        drop(File::open(&node).expect("open the twin"));
        assert!(!watch.read_events().expect("an IN_OPEN event").is_empty());
    }
}

#[cfg(linux)]
#[test]
fn a_found_file_is_opened_only_when_asked_and_is_the_inode_that_was_found() {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    use std::io::Read as _;
    for (t, root) in jails() {
        let path = t.path().join("root/hello.txt");
        let watch = Inotify::init(InitFlags::IN_NONBLOCK).expect("inotify");
        watch
            .add_watch(&path, AddWatchFlags::IN_OPEN)
            .expect("watch the file");
        let found = root
            .find_read(&RequestPath::parse(b"hello.txt").expect("path"))
            .expect("found");
        assert_eq!(found.size(), 5);
        assert!(
            watch.read_events().unwrap_or_default().is_empty(),
            "finding a file does not open it"
        );
        // Replaced by rename before it is opened: the download gets what was found, never a
        // mix of the name's old and new meanings.
        let tmp = t.path().join("root/hello.new");
        std::fs::write(&tmp, b"replaced").expect("new version");
        std::fs::rename(&tmp, &path).expect("rename over");
        let mut opened = found.open().expect("open");
        let mut v = Vec::new();
        opened.file.read_to_end(&mut v).expect("read");
        assert_eq!(v, b"hello", "the inode that was found");
        assert_eq!((opened.size, opened.stat.st_size), (5, 5));
        assert!(
            !watch.read_events().expect("an IN_OPEN event").is_empty(),
            "open() opens it"
        );
    }
}

#[test]
fn unreadable_files_are_permission_denied() {
    use std::os::unix::fs::PermissionsExt as _;
    if nix::unistd::geteuid().is_root() {
        println!("skipping: unreadable_files_are_permission_denied (root ignores mode bits)");
        return;
    }
    for (t, root) in jails() {
        let p = t.path().join("root/locked.bin");
        std::fs::write(&p, b"locked").expect("locked");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).expect("chmod 000");
        let err = read(&root, b"locked.bin").expect_err("mode 000");
        assert!(
            matches!(err, ResolveError::PermissionDenied { .. }),
            "{err}"
        );
        assert!(err.is_security_refusal(), "a denial is audited");
    }
}

#[test]
fn wire_errors_never_carry_paths() {
    for (_t, root) in jails() {
        let err = read(&root, b"missing/file").expect_err("missing");
        assert!(
            err.to_string().contains("missing/file"),
            "the log detail names the path"
        );
        assert_eq!(
            err.wire_error().message,
            "file not found",
            "the wire text is fixed"
        );
    }
}

#[test]
fn missing_root_is_an_error_naming_it() {
    let err = Root::open(Path::new("/nonexistent/tftp-root")).expect_err("no root");
    assert!(err.to_string().contains("/nonexistent/tftp-root"), "{err}");
}

#[cfg(linux)]
#[test]
fn a_files_own_eperm_does_not_demote_openat2() {
    use std::process::Command;
    /// Clears the immutable flag again, even when the test fails, so the directory can go.
    struct Immutable<'a>(&'a Path);
    impl Drop for Immutable<'_> {
        fn drop(&mut self) {
            let _ = Command::new("chattr").arg("-i").arg(self.0).status();
        }
    }
    static CHOICE: ResolverChoice = ResolverChoice::fixed(Resolver::Openat2);
    let (t, _) = jail();
    let dir = t.path().join("root/sub");
    let root = Root::open_with(&t.path().join("root"), &CHOICE).expect("open root");
    let set = Command::new("chattr").arg("+i").arg(&dir).status();
    if !set.is_ok_and(|s| s.success()) {
        println!(
            "skipping: a_files_own_eperm_does_not_demote_openat2 (chattr +i needs root and a \
             filesystem with attributes)"
        );
        return;
    }
    let _undo = Immutable(&dir);
    // Creating a file in an immutable directory: EPERM from the filesystem, not seccomp.
    let err = root
        .open_beneath(
            "sub/new",
            OFlag::O_CREAT | OFlag::O_WRONLY,
            Mode::from_bits_truncate(0o644),
        )
        .expect_err("an immutable directory takes no new file");
    assert_eq!(
        err,
        Errno::EPERM,
        "the filesystem's answer reaches the caller"
    );
    assert_eq!(
        root.resolver(),
        Resolver::Openat2,
        "the probe still works, so openat2 is kept"
    );
}
