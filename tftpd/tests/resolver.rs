//! The path resolver without `openat2`: the real daemon run under a seccomp filter that hides
//! the syscall, as a kernel before 5.6 or an older container runtime's profile does, must say
//! so at start, serve files through the `O_NOFOLLOW` walk and still refuse every symlink.
//! And a daemon whose `openat2` goes away while it runs demotes once and keeps serving.

mod harness;

use std::os::unix::fs::symlink;
use std::os::unix::process::CommandExt as _;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness::clients::{Client, Opts, get, put};
use harness::raw::{Raw, Reply};
use harness::{Daemon, DaemonArgs, LOG_TIMEOUT, TempDir, pattern};
use nix::libc;

/// How long one reply may take.
const REPLY: Duration = Duration::from_secs(5);
const SECRET: &[u8] = b"SECRET-OUTSIDE-THE-ROOT-rsm";

/// `openat2`'s number: the same on x86_64 and aarch64 (the unified syscall table).
const NR_OPENAT2: u32 = 437;

/// The audit architecture seccomp reports for this build (`AUDIT_ARCH_*` in
/// linux/audit.h: the ELF machine, 64-bit and little-endian bits), or None where the test
/// does not know it.
fn audit_arch() -> Option<u32> {
    if cfg!(target_arch = "x86_64") {
        Some(0xC000_003E)
    } else if cfg!(target_arch = "aarch64") {
        Some(0xC000_00B7)
    } else {
        None
    }
}

/// A classic-BPF seccomp program: `openat2` on this architecture answers `errno`, every
/// other syscall (and any other architecture) is allowed.
fn hide_openat2_program(arch: u32, errno: i32) -> [libc::sock_filter; 6] {
    let op = |code: u32| u16::try_from(code).expect("a cBPF opcode fits 16 bits");
    let stmt = |code, k| libc::sock_filter {
        code: op(code),
        jt: 0,
        jf: 0,
        k,
    };
    let jeq = |k, jt, jf| libc::sock_filter {
        code: op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K),
        jt,
        jf,
        k,
    };
    let errno = u32::try_from(errno).expect("a positive errno");
    [
        // struct seccomp_data: nr at offset 0, arch at offset 4.
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 4),
        jeq(arch, 0, 3),
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        jeq(NR_OPENAT2, 0, 1),
        stmt(
            libc::BPF_RET | libc::BPF_K,
            libc::SECCOMP_RET_ERRNO | (errno & libc::SECCOMP_RET_DATA),
        ),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ]
}

/// Installs `program` on the calling thread (and what it later spawns or execs). Only
/// syscalls: safe to call between fork and exec.
#[expect(
    unsafe_code,
    reason = "prctl and seccomp(2) have no safe wrapper in our dependencies"
)]
fn install(program: &mut [libc::sock_filter; 6]) -> std::io::Result<()> {
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integer arguments only; it lets an unprivileged
    // process install a filter and changes nothing else here.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let prog = libc::sock_fprog {
        len: 6,
        filter: program.as_mut_ptr(),
    };
    // SAFETY: `prog` points at `program`, six initialised instructions that outlive the call;
    // the kernel copies the program before it returns.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &raw const prog,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Makes `cmd`'s process see `openat2` fail with `errno`.
#[expect(unsafe_code, reason = "pre_exec runs a closure between fork and exec")]
fn hide_openat2(cmd: &mut Command, arch: u32, errno: i32) {
    let mut program = hide_openat2_program(arch, errno);
    // SAFETY: the closure only makes two syscalls (no allocation, no lock), as code between
    // fork and exec must; the program was built before the fork.
    unsafe {
        cmd.pre_exec(move || install(&mut program));
    }
}

/// A daemon whose `openat2` answers `errno`, with a root holding a file, a symlink out of the
/// root, one to the directory above and one that stays inside, and an upload directory
/// (`write = "create"`, `in/*`); the secret sits beside it.
fn daemon_without_openat2(test: &str, errno: i32) -> Option<(Daemon, TempDir)> {
    let Some(arch) = audit_arch() else {
        harness::skip(
            test,
            "knows the seccomp audit arch of x86_64 and aarch64 only",
        );
        return None;
    };
    let args = DaemonArgs {
        args: vec!["--write".into(), "create".into()],
        config: Some("[uploads]\nallow = [\"in/*\"]\n".into()),
        ..DaemonArgs::default()
    };
    let d = Daemon::start_with(args, |cmd| hide_openat2(cmd, arch, errno));
    let outside = TempDir::new("rsm-outside");
    std::fs::write(outside.path().join("secret"), SECRET).expect("secret");
    d.put_file("boot/kernel.img", &pattern(70_000, 437));
    let root = d.root();
    symlink(outside.path().join("secret"), root.join("abs-link")).expect("symlink");
    symlink(outside.path(), root.join("dir-link")).expect("symlink");
    symlink("boot/kernel.img", root.join("alias")).expect("symlink");
    symlink("boot", root.join("boot-link")).expect("symlink");
    std::fs::create_dir(root.join("in")).expect("an upload directory");
    Some((d, outside))
}

/// Asserts `name` is refused with ERROR 2 (access violation), the secret never sent.
fn assert_refused(d: &Daemon, name: &str) {
    match Raw::new(d.addr()).download(name, &[], REPLY) {
        Err(Reply::Error { code: 2, .. }) => {}
        Ok(bytes) => panic!(
            "{name} was served: {:?}\nlog:\n{}",
            String::from_utf8_lossy(&bytes),
            d.log()
        ),
        Err(other) => panic!("{name}: want ERROR 2, got {other:?}\nlog:\n{}", d.log()),
    }
}

#[test]
fn without_openat2_the_daemon_says_so_and_serves_through_the_walk() {
    let test = "without_openat2_the_daemon_says_so_and_serves_through_the_walk";
    if !Client::Curl.available(test) {
        return;
    }
    let Some((d, _outside)) = daemon_without_openat2(test, libc::ENOSYS) else {
        return;
    };
    let line = d.wait_for_log("path resolver:", LOG_TIMEOUT);
    assert!(
        line.contains("path resolver: O_NOFOLLOW walk (openat2: ENOSYS)"),
        "the start-up line names the walk and why: {line}"
    );
    let dl = TempDir::new("rsm-dl");
    let local = dl.path().join("kernel.img");
    get(
        Client::Curl,
        d.addr(),
        "boot/kernel.img",
        &local,
        &Opts::default(),
    )
    .unwrap_or_else(|e| panic!("curl download failed: {e}\nlog:\n{}", d.log()));
    assert_eq!(
        std::fs::read(&local).expect("downloaded file"),
        pattern(70_000, 437),
        "the walk serves a file in a subdirectory byte for byte"
    );
    let upload = dl.path().join("up.bin");
    std::fs::write(&upload, pattern(30_000, 2)).expect("a file to upload");
    put(
        Client::Curl,
        d.addr(),
        &upload,
        "in/up.bin",
        &Opts::default(),
    )
    .unwrap_or_else(|e| panic!("curl upload failed: {e}\nlog:\n{}", d.log()));
    assert_eq!(
        std::fs::read(d.root().join("in/up.bin")).expect("the uploaded file"),
        pattern(30_000, 2),
        "an upload lands through the walk too"
    );
    for name in [
        "abs-link",
        "dir-link/secret",
        "alias",
        "boot-link/kernel.img",
    ] {
        assert_refused(&d, name);
    }
    d.wait_for_log(
        "resolves outside the root or through a refused symlink",
        LOG_TIMEOUT,
    );
    assert!(
        !d.log().contains("path resolver: openat2"),
        "the daemon never claimed openat2:\n{}",
        d.log()
    );
}

#[test]
fn an_eperm_seccomp_profile_counts_as_no_openat2() {
    let test = "an_eperm_seccomp_profile_counts_as_no_openat2";
    let Some((d, _outside)) = daemon_without_openat2(test, libc::EPERM) else {
        return;
    };
    let line = d.wait_for_log("path resolver:", LOG_TIMEOUT);
    assert!(
        line.contains("path resolver: O_NOFOLLOW walk (openat2: EPERM)"),
        "older Docker profiles answer EPERM: {line}"
    );
    let got = Raw::new(d.addr())
        .download("boot/kernel.img", &[], REPLY)
        .unwrap_or_else(|e| panic!("download refused: {e:?}\nlog:\n{}", d.log()));
    assert_eq!(got, pattern(70_000, 437), "served through the walk");
    assert_refused(&d, "abs-link");
}

#[test]
fn with_openat2_the_start_up_line_names_it() {
    let d = Daemon::start(DaemonArgs::default());
    let line = d.wait_for_log("path resolver:", LOG_TIMEOUT);
    assert!(
        line.contains("path resolver: openat2"),
        "this kernel (5.6 or later, no filter) has openat2: {line}"
    );
}

/// A log sink for one thread's tracing events.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log lock")).into_owned()
    }
}

fn read_all(root: &tftpd::fs::Root, name: &str) -> Result<Vec<u8>, tftpd::fs::ResolveError> {
    use std::io::Read as _;
    let path = tftpd::fs::RequestPath::parse(name.as_bytes())?;
    let mut f = root.open_read(&path)?;
    let mut v = Vec::new();
    f.file.read_to_end(&mut v).expect("read");
    Ok(v)
}

/// The one in-process test of this binary: it owns the process's resolver choice. The
/// filter goes on one thread only (no TSYNC), so the rest of the test runner keeps openat2.
#[test]
fn openat2_failing_at_run_time_is_demoted_once_and_requests_keep_working() {
    let test = "openat2_failing_at_run_time_is_demoted_once_and_requests_keep_working";
    let Some(arch) = audit_arch() else {
        harness::skip(
            test,
            "knows the seccomp audit arch of x86_64 and aarch64 only",
        );
        return;
    };
    let dir = TempDir::new("rsm-demote");
    let served = dir.path().join("root");
    std::fs::create_dir_all(served.join("sub")).expect("root/sub");
    std::fs::write(served.join("sub/file"), b"payload").expect("file");
    std::fs::write(dir.path().join("secret"), SECRET).expect("secret");
    symlink("../secret", served.join("leak")).expect("symlink");
    let log = Captured::default();
    let sink = log.clone();
    let outcome = std::thread::spawn(move || {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let root = tftpd::fs::Root::open(&served).expect("open root");
        let before = root.resolver();
        install(&mut hide_openat2_program(arch, libc::ENOSYS)).expect("seccomp filter");
        let first = read_all(&root, "sub/file").map_err(|e| e.to_string());
        let second = read_all(&root, "sub/file").map_err(|e| e.to_string());
        let leak = read_all(&root, "leak").map_err(|e| e.to_string());
        (before, root.resolver(), first, second, leak)
    })
    .join()
    .expect("the filtered thread");
    let (before, after, first, second, leak) = outcome;
    let text = log.text();
    assert_eq!(
        before,
        tftpd::fs::Resolver::Openat2,
        "openat2 was probed and chosen at start:\n{text}"
    );
    assert!(text.contains("path resolver: openat2"), "{text}");
    assert_eq!(
        first.as_deref(),
        Ok(&b"payload"[..]),
        "the failing request is served"
    );
    assert_eq!(second.as_deref(), Ok(&b"payload"[..]), "and the next one");
    assert_eq!(after, tftpd::fs::Resolver::Walk, "demoted to the walk");
    assert_eq!(
        text.matches("O_NOFOLLOW walk from now on (openat2 began to answer ENOSYS)")
            .count(),
        1,
        "the demotion is logged once:\n{text}"
    );
    let leak = leak.expect_err("a symlink out of the root is refused after the demotion");
    assert!(
        leak.contains("refused symlink"),
        "refused as an escape: {leak}"
    );
}
