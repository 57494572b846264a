//! Wrappers around real third-party TFTP clients: tftp-hpa `tftp`, `atftp`, `curl` and
//! `busybox tftp`. Each run is bounded by a timeout and returns the client's output on
//! failure. tftp-hpa exits 0 even on a TFTP error, so its output is checked too.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{CLIENT_TIMEOUT, TempDir, skip};

/// A client program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Client {
    TftpHpa,
    Atftp,
    Curl,
    Busybox,
}

impl Client {
    pub(crate) const ALL: [Self; 4] = [Self::TftpHpa, Self::Atftp, Self::Curl, Self::Busybox];

    pub(crate) fn program(self) -> &'static str {
        match self {
            Self::TftpHpa => "tftp",
            Self::Atftp => "atftp",
            Self::Curl => "curl",
            Self::Busybox => "busybox",
        }
    }

    /// True when installed; otherwise skips (or fails under CI) and returns false.
    pub(crate) fn available(self, test: &str) -> bool {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {} >/dev/null", self.program())])
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            skip(test, &format!("needs the {} client", self.program()));
        }
        found
    }
}

/// Options for one client run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Opts {
    pub(crate) blksize: Option<u16>,
    pub(crate) windowsize: Option<u16>,
    pub(crate) tsize: bool,
    pub(crate) netascii: bool,
}

fn host_port(server: SocketAddr) -> (String, String) {
    (server.ip().to_string(), server.port().to_string())
}

fn url(server: SocketAddr, remote: &str) -> String {
    format!("tftp://{server}/{remote}")
}

/// Downloads `remote` into `local`.
pub(crate) fn get(
    client: Client,
    server: SocketAddr,
    remote: &str,
    local: &Path,
    o: &Opts,
) -> Result<String, String> {
    let (host, port) = host_port(server);
    let mut cmd = match client {
        Client::TftpHpa => {
            assert!(
                o.blksize.is_none() && o.windowsize.is_none(),
                "tftp-hpa's client has no options"
            );
            let mut c = Command::new("tftp");
            c.args([
                "-m",
                if o.netascii { "ascii" } else { "binary" },
                &host,
                &port,
                "-c",
                "get",
                remote,
            ])
            .arg(local);
            c
        }
        Client::Atftp => {
            let mut c = Command::new("atftp");
            c.args(["--get", "-r", remote, "-l"]).arg(local);
            atftp_options(&mut c, o);
            c.args([&host, &port]);
            c
        }
        Client::Curl => {
            let mut c = Command::new("curl");
            c.args(["-sS", "--max-time", &CLIENT_TIMEOUT.as_secs().to_string()]);
            if let Some(b) = o.blksize {
                c.args(["--tftp-blksize", &b.to_string()]);
            }
            c.arg(url(server, remote)).arg("-o").arg(local);
            c
        }
        Client::Busybox => {
            let mut c = Command::new("busybox");
            c.args(["tftp", "-g", "-r", remote, "-l"]).arg(local);
            if let Some(b) = o.blksize {
                c.args(["-b", &b.to_string()]);
            }
            c.args([&host, &port]);
            c
        }
    };
    run(&mut cmd)
}

/// Uploads `local` as `remote`.
pub(crate) fn put(
    client: Client,
    server: SocketAddr,
    local: &Path,
    remote: &str,
    o: &Opts,
) -> Result<String, String> {
    let (host, port) = host_port(server);
    let mut cmd = match client {
        Client::TftpHpa => {
            let mut c = Command::new("tftp");
            c.args([
                "-m",
                if o.netascii { "ascii" } else { "binary" },
                &host,
                &port,
                "-c",
                "put",
            ])
            .arg(local)
            .arg(remote);
            c
        }
        Client::Atftp => {
            let mut c = Command::new("atftp");
            c.args(["--put", "-r", remote, "-l"]).arg(local);
            atftp_options(&mut c, o);
            c.args([&host, &port]);
            c
        }
        Client::Curl => {
            let mut c = Command::new("curl");
            c.args(["-sS", "--max-time", &CLIENT_TIMEOUT.as_secs().to_string()]);
            if let Some(b) = o.blksize {
                c.args(["--tftp-blksize", &b.to_string()]);
            }
            c.arg("-T").arg(local).arg(url(server, remote));
            c
        }
        Client::Busybox => {
            let mut c = Command::new("busybox");
            c.args(["tftp", "-p", "-l"]).arg(local).args(["-r", remote]);
            if let Some(b) = o.blksize {
                c.args(["-b", &b.to_string()]);
            }
            c.args([&host, &port]);
            c
        }
    };
    run(&mut cmd)
}

fn atftp_options(c: &mut Command, o: &Opts) {
    if let Some(b) = o.blksize {
        c.args(["--option", &format!("blksize {b}")]);
    }
    if let Some(w) = o.windowsize {
        c.args(["--option", &format!("windowsize {w}")]);
    }
    if o.tsize {
        c.args(["--option", "tsize 0"]);
    }
    if o.netascii {
        c.args(["--option", "mode netascii"]);
    }
}

/// Runs a client with a deadline; Ok(output) only for exit 0 without a TFTP error report.
fn run(cmd: &mut Command) -> Result<String, String> {
    let out_dir = TempDir::new("client-out");
    let out_path = out_dir.path().join("out");
    let out = std::fs::File::create(&out_path).expect("client output file");
    let err = out.try_clone().expect("dup");
    let line = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("{line}: cannot start: {e}"))?;
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let text = std::fs::read_to_string(&out_path).unwrap_or_default();
            return Err(format!(
                "{line}: timed out after {CLIENT_TIMEOUT:?}\n{text}"
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let text = std::fs::read_to_string(&out_path).unwrap_or_default();
    // tftp-hpa prints "Error code N: ..." and still exits 0; atftp prints "tftp: error".
    let reported_error =
        text.contains("Error code") || text.to_lowercase().contains("error received");
    if status.success() && !reported_error {
        Ok(text)
    } else {
        Err(format!("{line}: {status}\n{text}"))
    }
}

/// Every available client downloads each `f{i}.bin` of `sizes` (the caller put
/// `pattern(size, i)` there) and uploads one file, each checked byte for byte against the
/// source or the stored file. `tag` names the run in local file names and messages; `test`
/// is the test's name for the skip lines. Returns (downloads, uploads).
pub(crate) fn every_client_downloads_and_uploads(
    d: &super::Daemon,
    out: &Path,
    sizes: &[usize],
    tag: &str,
    test: &str,
) -> (u64, u64) {
    let (mut downloads, mut uploads) = (0, 0);
    for client in Client::ALL {
        if !client.available(test) {
            continue;
        }
        for (i, size) in sizes.iter().enumerate() {
            if client == Client::Curl && *size == 0 {
                // curl 7.88 fails every empty TFTP download (a client bug; clients.rs).
                continue;
            }
            let local = out.join(format!("{tag}-{client:?}-{i}"));
            get(
                client,
                d.addr(),
                &format!("f{i}.bin"),
                &local,
                &Opts::default(),
            )
            .unwrap_or_else(|e| panic!("{tag}: {client:?} get {size}: {e}"));
            assert!(
                std::fs::read(&local).expect("downloaded") == super::pattern(*size, i as u64),
                "{tag}: {client:?}: {size} bytes differ"
            );
            downloads += 1;
        }
        let content = super::pattern(200_000 + client as usize, 99);
        let local = out.join(format!("{tag}-{client:?}-up"));
        std::fs::write(&local, &content).expect("write");
        let remote = format!("up-{tag}-{client:?}.bin");
        put(client, d.addr(), &local, &remote, &Opts::default())
            .unwrap_or_else(|e| panic!("{tag}: {client:?} put: {e}"));
        assert!(
            std::fs::read(d.root().join(&remote)).expect("stored") == content,
            "{tag}: {client:?}: upload differs"
        );
        uploads += 1;
    }
    (downloads, uploads)
}
