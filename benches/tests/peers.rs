//! tftp-load against servers other than tftpd: tftp-hpa's in.tftpd (when installed), and a
//! minimal RFC 1350 server that ignores every option, so the client must fall back to
//! 512-byte lock-step on plain DATA.

mod harness;

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::{download, free_udp_port, pattern, skip};
use tftpd::proto::Packet;
use tftpd::proto::packet::{ack, data_header, encode_error};
use tftpd_benches::{RequestOptions, run};

const IN_TFTPD: &str = "/usr/sbin/in.tftpd";

/// tftp-hpa's server: where `cargo xtask test` unpacked it (`TFTPD_TEST_IN_TFTPD`), else the
/// installed one.
fn in_tftpd() -> std::path::PathBuf {
    std::env::var_os("TFTPD_TEST_IN_TFTPD").map_or_else(|| IN_TFTPD.into(), Into::into)
}
/// How long in.tftpd may take to answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// in.tftpd, killed on drop.
struct InTftpd(Child);

impl Drop for InTftpd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends a plain RRQ for `file` until `addr` answers (then tells it to stop), or panics.
fn wait_until_serving(addr: SocketAddr, file: &str) {
    let probe = UdpSocket::bind("127.0.0.1:0").expect("a probe socket");
    probe
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("probe timeout");
    let mut rrq = Vec::new();
    Packet::Rrq(tftpd::proto::Request {
        filename: file.as_bytes(),
        mode: b"octet",
        options: Vec::new(),
    })
    .encode(&mut rrq);
    let deadline = Instant::now() + START_TIMEOUT;
    let mut buf = [0u8; 600];
    loop {
        probe.send_to(&rrq, addr).expect("sending the probe");
        if let Ok((_, from)) = probe.recv_from(&mut buf) {
            let mut stop = Vec::new();
            encode_error(&mut stop, tftpd::proto::ErrorCode::NotDefined, b"probe");
            let _ = probe.send_to(&stop, from);
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{addr} did not answer within {START_TIMEOUT:?}"
        );
    }
}

#[test]
fn in_tftpd_downloads_verify_with_the_options_it_knows() {
    let test = "in_tftpd_downloads_verify_with_the_options_it_knows";
    if !in_tftpd().exists() {
        skip(
            test,
            "needs tftp-hpa's in.tftpd (cargo xtask test unpacks it as root; or apt-get install tftpd-hpa)",
        );
        return;
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if !is_root {
        skip(
            test,
            "needs root (in.tftpd -s chroots into the served root)",
        );
        return;
    }
    let root = harness::temp_dir();
    let content = pattern(300_000, 7);
    std::fs::write(root.path().join("hpa.bin"), &content).expect("the served file");
    let port = free_udp_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    // -L: stay in the foreground; -s: chroot into the root; -u: the user to drop to.
    let _server = InTftpd(
        Command::new(in_tftpd())
            .arg("-L")
            .arg("-s")
            .arg(root.path())
            .args(["-a", &addr.to_string(), "-u", "root"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting in.tftpd"),
    );
    wait_until_serving(addr, "hpa.bin");
    let mut spec = download(addr, "hpa.bin", &content);
    // tftp-hpa knows blksize and tsize but not windowsize: its OACK leaves windowsize out,
    // and the client must fall back to lock-step.
    spec.options = RequestOptions {
        blksize: Some(1428),
        windowsize: Some(8),
        tsize: true,
        timeout: None,
    };
    spec.clients = 2;
    let r = run(&spec).expect("a run against in.tftpd");
    assert!(
        r.failures.is_empty() && r.ok == 2,
        "in.tftpd downloads must verify:\n{r}"
    );
    assert_eq!(r.bytes, 600_000);
    assert_eq!(
        (r.negotiated[0].blksize, r.negotiated[0].windowsize),
        (1428, 1),
        "in.tftpd takes blksize, leaves windowsize out: {:?}",
        r.negotiated
    );
}

/// Serves one RRQ in RFC 1350 lock-step with 512-byte blocks, whatever options it carries.
fn serve_without_options(listener: UdpSocket, content: Vec<u8>) {
    let mut buf = [0u8; 600];
    let Ok((_, client)) = listener.recv_from(&mut buf) else {
        return;
    };
    let tid = UdpSocket::bind("127.0.0.1:0").expect("a transfer socket");
    tid.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let mut blocks: Vec<&[u8]> = content.chunks(512).collect();
    if content.len().is_multiple_of(512) {
        blocks.push(&[]);
    }
    for (i, chunk) in blocks.iter().enumerate() {
        let block = (i + 1) as u16;
        let datagram = [&data_header(block)[..], chunk].concat();
        let acked = (0..5).any(|_| {
            tid.send_to(&datagram, client).expect("sending DATA");
            matches!(tid.recv_from(&mut buf), Ok((4, _)) if buf[..4] == ack(block))
        });
        if !acked {
            return;
        }
    }
}

#[test]
fn a_server_that_ignores_options_is_followed_on_plain_data() {
    let listener = UdpSocket::bind("127.0.0.1:0").expect("a listener");
    let addr = listener.local_addr().expect("address");
    // 1300 bytes: blocks of 512, 512 and 276, then no empty one. Had the client kept the
    // blksize it asked for, the first 512-byte block would look like the last.
    let content = pattern(1300, 8);
    let served = content.clone();
    let server = std::thread::spawn(move || serve_without_options(listener, served));
    let mut spec = download(addr, "any", &content);
    spec.options = RequestOptions {
        blksize: Some(1428),
        windowsize: Some(8),
        tsize: true,
        timeout: Some(2),
    };
    let r = run(&spec).expect("a run");
    server.join().expect("the option-blind server");
    assert!(
        r.failures.is_empty() && r.ok == 1,
        "plain DATA must be taken as 512-byte lock-step:\n{r}"
    );
    assert_eq!(r.bytes, 1300);
    assert_eq!(
        (r.negotiated[0].blksize, r.negotiated[0].windowsize),
        (512, 1),
        "RFC 1350 values"
    );
}
