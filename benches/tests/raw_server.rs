//! The concurrent raw ceiling (`tftpd_benches::raw_server`) against the real load
//! generator: with each engine every byte verifies at the negotiated blksize (and at 512
//! without options), with many clients at once, with loss that the clients' retransmissions
//! repair, and the responder stops when told. Checks bytes and counts, never speed.

mod harness;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use harness::{download, pattern};
use tftpd_benches::impair::Impairment;
use tftpd_benches::raw_server::{Engine, Files, Served, serve};
use tftpd_benches::{RequestOptions, Stop, run};

struct Responder {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<std::io::Result<Served>>>,
}

impl Responder {
    fn start(engine: Engine, files: Files) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("binding the responder");
        let addr = socket.local_addr().expect("its address");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || serve(socket, &files, engine, &flag));
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> Served {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.take().expect("running");
        thread
            .join()
            .expect("the responder thread")
            .expect("the responder's loop")
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn engines() -> Vec<Engine> {
    let mut v = vec![Engine::Epoll];
    #[cfg(target_os = "linux")]
    v.push(Engine::Uring);
    v
}

#[test]
fn every_byte_arrives_from_each_engine_with_and_without_blksize() {
    let content = pattern(100_000, 7);
    for engine in engines() {
        let mut files = Files::default();
        files.insert("f.bin", content.clone());
        let responder = Responder::start(engine, files);
        for blksize in [None, Some(1428), Some(8192)] {
            let mut spec = download(responder.addr, "f.bin", &content);
            spec.options = RequestOptions {
                blksize,
                ..RequestOptions::default()
            };
            spec.clients = 8;
            spec.stop = Stop::Repeat(3);
            let r = run(&spec).expect("a download run");
            assert!(
                r.failures.is_empty() && r.ok == 24,
                "{engine:?} blksize {blksize:?}: every transfer must verify; report:\n{r}"
            );
            let n = r.negotiated.first().expect("what transfers ran with");
            assert_eq!(
                (n.blksize, n.windowsize),
                (blksize.unwrap_or(512), 1),
                "{engine:?}"
            );
        }
        let served = responder.stop();
        assert_eq!(served.completed, 72, "{engine:?}: 3 × 24 transfers ended");
        // 100 000 bytes: 196 blocks at 512, 71 at 1428, 13 at 8192, each sent once at least.
        assert!(
            served.blocks_sent >= 24 * (196 + 71 + 13),
            "{engine:?}: {served:?}"
        );
    }
}

#[test]
fn lost_datagrams_are_recovered_by_the_clients_retransmissions() {
    let content = pattern(60_000, 3);
    for engine in engines() {
        let mut files = Files::default();
        files.insert("f.bin", content.clone());
        let responder = Responder::start(engine, files);
        let mut spec = download(responder.addr, "f.bin", &content);
        spec.options.blksize = Some(1000);
        spec.clients = 4;
        spec.retransmit_timeout = std::time::Duration::from_millis(50);
        spec.max_retries = 40;
        spec.impairment = Impairment {
            loss: 0.05,
            seed: 11,
            ..Impairment::default()
        };
        let r = run(&spec).expect("an impaired run");
        assert!(
            r.failures.is_empty() && r.ok == 4,
            "{engine:?}: every transfer must verify despite the loss; report:\n{r}"
        );
        let served = responder.stop();
        assert!(
            served.blocks_sent > 4 * 61,
            "{engine:?}: repeated ACKs are answered with the block again: {served:?}"
        );
    }
}

#[test]
fn an_unknown_file_gets_error_1_from_each_engine() {
    for engine in engines() {
        let responder = Responder::start(engine, Files::default());
        let client = UdpSocket::bind("127.0.0.1:0").expect("client");
        client
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        client
            .send_to(b"\x00\x01nope\x00octet\x00", responder.addr)
            .expect("RRQ");
        let mut buf = [0u8; 64];
        let (n, _) = client.recv_from(&mut buf).expect("an answer");
        assert_eq!(&buf[..4], &[0, 5, 0, 1], "{engine:?}: {:?}", &buf[..n]);
        assert_eq!(responder.stop().completed, 0);
    }
}
