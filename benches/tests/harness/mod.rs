//! Test harness for tftp-load: the real tftpd server (`tftpd::server::run`, the code the
//! daemon runs) on loopback port 0 in a thread of its own with its own runtime, serving a
//! temporary root; and the spec the tests start from.
//!
//! In-process rather than the binary: `cargo test -p tftpd-benches` does not build tftpd's
//! binary, and the library call needs no ready-line parsing to learn the port.

#![allow(
    dead_code,
    reason = "shared by several test binaries, each using a part"
)]

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tftpd::config::Config;
use tftpd::io::socket::bind_listener;
use tftpd::metrics::Metrics;
use tftpd::server::runtime::Runtime;
use tftpd_benches::impair::Impairment;
use tftpd_benches::{Expected, LoadSpec, RequestOptions, Stop, Transfer};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// A temporary directory, removed on drop.
pub(crate) fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("tftp-load-test-")
        .tempdir()
        .expect("creating a temp dir")
}

/// `len` bytes of deterministic content, different for each seed (the generator's own
/// upload content, which is tested on its own in `content`).
pub(crate) fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0; len];
    tftpd_benches::content::fill(seed, 0, &mut v);
    v
}

/// A running tftpd. Stopped (and its thread joined) on drop.
pub(crate) struct Server {
    addr: SocketAddr,
    root: tempfile::TempDir,
    shutdown: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Serves a fresh root on `listen` (port 0) with uploads allowed (`write = "create"`),
    /// a 200 ms retransmit timeout (so impaired tests spend their time on transfers, not
    /// waiting) and `extra` appended to the TOML.
    pub(crate) fn start(listen: &str, extra: &str) -> Self {
        let root = temp_dir();
        let toml = format!(
            "root = {:?}\nwrite = \"create\"\n[ebpf]\nmode = \"off\"\n[protocol]\ntimeout_ms = 200\n{extra}",
            root.path().display().to_string()
        );
        let config = Config::from_toml_str(&toml, None).expect("a valid test config");
        let runtime = Runtime::new(config).expect("opening the test root");
        let socket = bind_listener(listen.parse().expect("a listen address")).expect("binding");
        let addr = socket.local_addr().expect("the bound address");
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("the server's runtime");
            let (_tx, rx) = watch::channel(Arc::new(runtime));
            rt.block_on(tftpd::server::run(
                vec![socket],
                rx,
                Arc::new(Metrics::default()),
                None,
                None,
                stop,
            ))
            .expect("the server ran");
        });
        Self {
            addr,
            root,
            shutdown,
            thread: Some(thread),
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn root(&self) -> &Path {
        self.root.path()
    }

    /// Writes a file into the served root.
    pub(crate) fn put_file(&self, name: &str, content: &[u8]) {
        std::fs::write(self.root.path().join(name), content).expect("writing into the root");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A one-client, one-transfer download of `file` from `server`, checked against `content`.
pub(crate) fn download(server: SocketAddr, file: &str, content: &[u8]) -> LoadSpec {
    LoadSpec {
        server,
        transfer: Transfer::Download {
            file: file.to_string(),
            expect: Expected::Bytes(Arc::from(content)),
        },
        options: RequestOptions::default(),
        retransmit_timeout: Duration::from_millis(500),
        max_retries: 10,
        clients: 1,
        stop: Stop::Repeat(1),
        impairment: Impairment::default(),
        threads: Some(2),
    }
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub(crate) fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("probing for a free port")
        .port()
}

/// True when CI=true: a test that would skip must fail instead.
pub(crate) fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips (prints why) or, under CI, fails.
pub(crate) fn skip(test: &str, why: &str) {
    assert!(!in_ci(), "{test} cannot run under CI=true: {why}");
    eprintln!("skipping: {test} {why}");
}
