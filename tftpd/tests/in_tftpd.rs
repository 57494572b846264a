//! tftpd as a drop-in for tftp-hpa's in.tftpd (issue #20 item 1): the same command lines,
//! word for word, run once by the real in.tftpd (Debian's tftpd-hpa) and once by tftpd, and
//! a real client (tftp-hpa's `tftp`, `curl`) must see the same: the bytes of a download, the
//! ERROR code for a missing file, an upload with -c, the names a -m map file rewrites or
//! refuses (and again after SIGHUP), the OACK that -B and -r shape, a transfer port inside -R. tftpd is started both as `in.tftpd` (argv[0]) and under its own name, where the
//! in.tftpd flags alone select that command line.
//!
//! Without in.tftpd (`apt-get install tftpd-hpa`, or `cargo xtask setup`) the tests skip, and
//! under CI=true they fail.

mod harness;

use std::net::{SocketAddr, UdpSocket};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use harness::clients::{Client, Opts, get, put};
use harness::raw::{Raw, Reply, request};
use harness::{TempDir, current_user, pattern, skip};

/// How long a server may take to answer its first request.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

const IN_TFTPD: &str = "/usr/sbin/in.tftpd";

/// tftp-hpa's server: where `cargo xtask test` unpacked it from its package
/// (`TFTPD_TEST_IN_TFTPD`; installing tftpd-hpa would start a service on port 69 where
/// services start), else the installed one.
fn in_tftpd() -> PathBuf {
    std::env::var_os("TFTPD_TEST_IN_TFTPD").map_or_else(|| IN_TFTPD.into(), Into::into)
}

/// One server at a time: with its default `ebpf.mode = "auto"` tftpd pins its maps under
/// /sys/fs/bpf/tftpd, which two tftpd daemons cannot share.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Who runs a command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server {
    /// tftp-hpa's in.tftpd.
    InTftpd,
    /// tftpd invoked as `in.tftpd`.
    TftpdAsInTftpd,
    /// tftpd under its own name: the in.tftpd flags select the command line.
    Tftpd,
}

const SERVERS: [Server; 3] = [Server::InTftpd, Server::TftpdAsInTftpd, Server::Tftpd];

/// A running server, killed on drop.
struct Running {
    child: Child,
    addr: SocketAddr,
    server: Server,
    log: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A UDP port free on 127.0.0.1 now: in.tftpd cannot report a port it was given 0 for.
fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free UDP port")
        .port()
}

/// True when in.tftpd and the tftp client are installed; otherwise skips (fails under CI).
fn tools(test: &str) -> bool {
    if !in_tftpd().exists() {
        skip(
            test,
            "needs tftp-hpa's in.tftpd (cargo xtask test unpacks it; or apt-get install tftpd-hpa)",
        );
        return false;
    }
    Client::TftpHpa.available(test) && Client::Curl.available(test)
}

/// Starts `server` with `words`, in which `PORT` stands for the port chosen here; waits until
/// it answers a request.
fn start(server: Server, words: &[&str], logs: &Path) -> Running {
    let port = free_udp_port();
    let words: Vec<String> = words
        .iter()
        .map(|w| w.replace("PORT", &port.to_string()))
        .collect();
    let mut cmd = match server {
        Server::InTftpd => Command::new(in_tftpd()),
        Server::TftpdAsInTftpd => {
            let mut c = Command::new(env!("CARGO_BIN_EXE_tftpd"));
            c.arg0("in.tftpd");
            c
        }
        Server::Tftpd => Command::new(env!("CARGO_BIN_EXE_tftpd")),
    };
    let log = logs.join(format!("{server:?}.log"));
    let out = std::fs::File::create(&log).expect("log file");
    cmd.args(&words)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("dup"))
        .stderr(out);
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("starting {server:?}: {e}"));
    let mut running = Running {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        server,
        log,
    };
    wait_until_answering(&mut running);
    running
}

/// Polls with a read request for a name no test serves until the server answers.
fn wait_until_answering(r: &mut Running) {
    let deadline = Instant::now() + READY_TIMEOUT;
    let probe = request(1, b"no-such-file-probe", "octet", &[]);
    loop {
        if let Some(status) = r.child.try_wait().expect("try_wait") {
            panic!("{:?} exited at start ({status}):\n{}", r.server, r.log());
        }
        let c = Raw::new(r.addr);
        c.send(&probe);
        if c.recv(Duration::from_millis(200)).is_some() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{:?} did not answer within {READY_TIMEOUT:?}:\n{}",
            r.server,
            r.log()
        );
    }
}

/// The ERROR code a read of `name` gets (None: the server sent DATA).
fn read_error(addr: SocketAddr, name: &str) -> Option<u16> {
    let c = Raw::new(addr);
    c.send(&request(1, name.as_bytes(), "octet", &[]));
    match c.expect(Duration::from_secs(5), "an answer to a read").0 {
        Reply::Error { code, .. } => Some(code),
        Reply::Data { .. } => None,
        other => panic!("read of {name:?}: unexpected {other:?}"),
    }
}

/// What a client gets for `name`: the bytes, or the client's error output.
fn download(client: Client, addr: SocketAddr, name: &str, dir: &Path) -> Result<Vec<u8>, String> {
    let local = dir.join(format!("got-{}", harness::random_u64()));
    get(client, addr, name, &local, &Opts::default())?;
    let bytes = std::fs::read(&local).map_err(|e| format!("reading {}: {e}", local.display()))?;
    let _ = std::fs::remove_file(&local);
    Ok(bytes)
}

/// A root with the files the tests fetch, world-readable as in.tftpd without -p wants.
fn root_with_files() -> TempDir {
    let root = TempDir::new("in-tftpd-root");
    let put_file = |name: &str, content: &[u8]| {
        let p = root.path().join(name);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, content).expect("write");
        harness::set_mode(&p, 0o644);
    };
    put_file("boot.img", &pattern(70_000, 7));
    put_file("Boot/BCD", b"bcd for windows clients");
    put_file("pxelinux.0", b"lower-cased");
    // 127.0.0.1 as tftp-hpa's \x writes it.
    put_file("7F000001.cfg", b"per-client");
    put_file("secret.key", b"never served");
    root
}

/// What every comparison needs: the tools (or a skip), the one-server lock, a work directory,
/// a served root and the user to run as.
struct Setup {
    _one: std::sync::MutexGuard<'static, ()>,
    work: TempDir,
    root: TempDir,
    user: String,
}

impl Setup {
    fn new(test: &str) -> Option<Self> {
        if !tools(test) {
            return None;
        }
        Some(Self {
            _one: ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner()),
            work: TempDir::new("in-tftpd-work"),
            root: root_with_files(),
            user: current_user(),
        })
    }

    fn root(&self) -> &str {
        self.root.path().to_str().expect("utf-8 root")
    }
}

#[test]
fn the_debian_command_line_serves_the_same_files_and_errors() {
    let Some(t) = Setup::new("the_debian_command_line_serves_the_same_files_and_errors") else {
        return;
    };
    let (root, work, user, root_s) = (&t.root, &t.work, &t.user, t.root());
    // /etc/init.d/tftpd-hpa: --listen --user $TFTP_USERNAME --address $TFTP_ADDRESS
    // $TFTP_OPTIONS $TFTP_DIRECTORY, with TFTP_OPTIONS="--secure"; --foreground so the test
    // keeps the process (in.tftpd would detach).
    let line = [
        "--listen",
        "--foreground",
        "--user",
        user,
        "--address",
        "127.0.0.1:PORT",
        "--secure",
        root_s,
    ];
    let expected = std::fs::read(root.path().join("boot.img")).expect("read");
    for server in SERVERS {
        let s = start(server, &line, work.path());
        for client in [Client::TftpHpa, Client::Curl] {
            let got = download(client, s.addr, "boot.img", work.path())
                .unwrap_or_else(|e| panic!("{server:?} with {client:?}: {e}\n{}", s.log()));
            assert!(got == expected, "{server:?} with {client:?}: other bytes");
        }
        let got = download(Client::TftpHpa, s.addr, "/boot.img", work.path())
            .unwrap_or_else(|e| panic!("{server:?}: /boot.img: {e}"));
        assert!(got == expected, "{server:?}: a leading / names the root");
        assert_eq!(
            read_error(s.addr, "missing.bin"),
            Some(1),
            "{server:?}: a missing file is ERROR 1"
        );
        let err =
            download(Client::TftpHpa, s.addr, "missing.bin", work.path()).expect_err("missing");
        assert!(err.contains("Error code 1"), "{server:?}: {err}");
        let refused = download(Client::TftpHpa, s.addr, "upload.bin", work.path());
        assert!(refused.is_err(), "{server:?}: nothing named upload.bin");
        let local = work.path().join("to-upload");
        std::fs::write(&local, b"x").expect("write");
        let e = put(Client::TftpHpa, s.addr, &local, "new.bin", &Opts::default())
            .expect_err("no -c: no new files");
        assert!(e.contains("Error code"), "{server:?}: {e}");
        assert!(
            !root.path().join("new.bin").exists(),
            "{server:?}: no upload without -c"
        );
    }
}

#[test]
fn create_lets_clients_upload_new_files() {
    let Some(t) = Setup::new("create_lets_clients_upload_new_files") else {
        return;
    };
    let (work, user) = (&t.work, &t.user);
    let content = pattern(20_000, 11);
    let local = work.path().join("upload-src");
    std::fs::write(&local, &content).expect("write");
    for server in SERVERS {
        let root = root_with_files();
        let root_s = root.path().to_str().expect("utf-8 root");
        let s = start(
            server,
            &["-L", "-c", "-s", "-u", user, "-a", "127.0.0.1:PORT", root_s],
            work.path(),
        );
        put(
            Client::TftpHpa,
            s.addr,
            &local,
            "uploaded.bin",
            &Opts::default(),
        )
        .unwrap_or_else(|e| panic!("{server:?}: upload: {e}\n{}", s.log()));
        // The server may still be committing the file when the client exits.
        let stored = root.path().join("uploaded.bin");
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::read(&stored).ok().as_deref() != Some(&content[..]) {
            assert!(
                Instant::now() < deadline,
                "{server:?}: the upload is not in the root byte for byte"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let back = download(Client::Curl, s.addr, "uploaded.bin", work.path())
            .unwrap_or_else(|e| panic!("{server:?}: reading the upload back: {e}"));
        assert!(back == content, "{server:?}: the upload reads back");
    }
}

#[test]
fn a_map_file_rewrites_and_refuses_the_same_names() {
    let Some(t) = Setup::new("a_map_file_rewrites_and_refuses_the_same_names") else {
        return;
    };
    let (root, work, user, root_s) = (&t.root, &t.work, &t.user, t.root());
    let map = work.path().join("tftpd.map");
    let rules = "# a tftp-hpa map file\n\
         rg \\\\ /            # Windows separators\n\
         rg ^/                # every leading slash, one at a time\n\
         r ^(PXE.*)$ \\L\\1   # case-insensitive boot ROMs\n\
         re ^host\\.cfg$ \\x.cfg\n\
         r ^host\\.cfg$ never.cfg\n\
         a \\.key$\n";
    let map_s = map.to_str().expect("utf-8");
    let line = [
        "-L",
        "-s",
        "-u",
        user,
        "-a",
        "127.0.0.1:PORT",
        "-m",
        map_s,
        root_s,
    ];
    let served = |name: &str| std::fs::read(root.path().join(name)).expect("a served file");
    for server in SERVERS {
        std::fs::write(&map, rules).expect("write map");
        let s = start(server, &line, work.path());
        for (asked, file) in [
            (r"\Boot\BCD", "Boot/BCD"),
            ("PXELINUX.0", "pxelinux.0"),
            ("host.cfg", "7F000001.cfg"),
            ("///boot.img", "boot.img"),
        ] {
            let got = download(Client::TftpHpa, s.addr, asked, work.path())
                .unwrap_or_else(|e| panic!("{server:?}: {asked:?}: {e}\n{}", s.log()));
            assert!(got == served(file), "{server:?}: {asked:?} is {file}");
        }
        assert_eq!(
            read_error(s.addr, "secret.key"),
            Some(2),
            "{server:?}: the a rule refuses with ERROR 2"
        );
        assert_eq!(
            read_error(s.addr, "PXEnothing"),
            Some(1),
            "{server:?}: a rewritten name that does not exist is ERROR 1"
        );
        // SIGHUP re-reads the map file, in both.
        std::fs::write(&map, format!("{rules}r ^renamed$ boot.img\n")).expect("write map");
        let hup = Command::new("kill")
            .args(["-HUP", &s.child.id().to_string()])
            .status()
            .expect("kill -HUP");
        assert!(hup.success(), "{server:?}: SIGHUP sent");
        let deadline = Instant::now() + Duration::from_secs(10);
        while read_error(s.addr, "renamed").is_some() {
            assert!(
                Instant::now() < deadline,
                "{server:?}: the new rule applies after SIGHUP:\n{}",
                s.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn blocksize_refuse_and_port_range_shape_the_same_answer() {
    let Some(t) = Setup::new("blocksize_refuse_and_port_range_shape_the_same_answer") else {
        return;
    };
    let (work, user, root_s) = (&t.work, &t.user, t.root());
    let (lo, hi) = (42_000u16, 42_049u16);
    let range = format!("{lo}:{hi}");
    let line = [
        "-L",
        "-s",
        "-u",
        user,
        "-a",
        "127.0.0.1:PORT",
        "-B",
        "800",
        "-r",
        "tsize",
        "-R",
        &range,
        root_s,
    ];
    for server in SERVERS {
        let s = start(server, &line, work.path());
        let c = Raw::new(s.addr);
        c.send(&request(
            1,
            b"boot.img",
            "octet",
            &[("blksize", "1400"), ("tsize", "0")],
        ));
        let (reply, from) = c.expect(Duration::from_secs(5), "an OACK");
        let Reply::Oack(mut options) = reply else {
            panic!("{server:?}: expected an OACK, got {reply:?}\n{}", s.log());
        };
        options.sort();
        assert_eq!(
            options,
            [("blksize".to_string(), "800".to_string())],
            "{server:?}: -B caps blksize and -r tsize leaves tsize out"
        );
        assert!(
            (lo..=hi).contains(&from.port()),
            "{server:?}: the transfer port {} is in -R {range}",
            from.port()
        );
        c.send_to(&harness::raw::error(0, "done"), from);
    }
}

#[test]
fn tftpd_refuses_what_it_cannot_serve_as_in_tftpd_would() {
    // No in.tftpd needed: these are tftpd's own refusals, each naming the flag.
    let run = |words: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tftpd"))
            .args(words)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .expect("running tftpd");
        assert!(!out.status.success(), "{words:?} must fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = run(&["-s", "/srv/tftp", "--config", "/etc/tftpd/tftpd.toml"]);
    assert!(
        e.contains("-s is in.tftpd's") && e.contains("--config is tftpd's"),
        "a mix names both flags: {e}"
    );
    let e = run(&["--secure", "/srv/tftp"]);
    assert!(e.contains("-l") && e.contains("inetd"), "{e}");
    let e = run(&["-L", "-B", "100", "-s", "/srv/tftp"]);
    assert!(e.contains("-B") && e.contains("512..=65464"), "{e}");
    let dir = TempDir::new("in-tftpd-map");
    let map = dir.path().join("bad.map");
    std::fs::write(&map, "r a b\ns x y\n").expect("write");
    let e = run(&["-L", "-s", "/srv/tftp", "-m", map.to_str().expect("utf-8")]);
    assert!(e.contains("line 2") && e.contains("flag s"), "{e}");
}
