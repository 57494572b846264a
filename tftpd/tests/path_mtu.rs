//! Root-only: blksize is clamped to the path MTU towards the client. A veth pair into a
//! namespace the test makes, with an MTU of 1400: a client there asking for 8192 is offered
//! 1368 (1400 − 20 IPv4 − 8 UDP − 4 TFTP), and gets all of its file in blocks that fit;
//! with `protocol.blksize_path_mtu = false` it is offered what it asked.

mod harness;

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::Duration;

use harness::netns::{Netns, ip};
use harness::raw::{Raw, Reply, request};
use harness::{Daemon, DaemonArgs, is_root, pattern, skip};

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 213, 78, 1);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 213, 78, 2);
const REPLY: Duration = Duration::from_secs(5);

fn offered_blksize(d: &Daemon, ns: &Netns) -> (String, Vec<u8>) {
    let server = *d
        .addrs()
        .iter()
        .find(|a| a.ip() == SERVER)
        .expect("the veth listener");
    ns.run(|| {
        let socket = UdpSocket::bind(SocketAddrV4::new(CLIENT, 0)).expect("bind");
        let c = Raw { socket, server };
        c.send(&request(1, b"f.bin", "octet", &[("blksize", "8192")]));
        let (reply, _) = c.expect(REPLY, "OACK");
        let Reply::Oack(opts) = reply else {
            panic!("expected an OACK, got {reply:?}")
        };
        let blksize = opts
            .iter()
            .find(|(k, _)| k == "blksize")
            .map(|(_, v)| v.clone())
            .expect("blksize acknowledged");
        let whole = Raw {
            socket: UdpSocket::bind(SocketAddrV4::new(CLIENT, 0)).expect("bind"),
            server,
        }
        .download("f.bin", &[("blksize", "8192")], REPLY)
        .expect("the download completes");
        (blksize, whole)
    })
}

#[test]
fn blksize_is_clamped_to_the_path_mtu() {
    if !is_root() {
        skip(
            "blksize_is_clamped_to_the_path_mtu",
            "needs root (network namespaces)",
        );
        return;
    }
    let ns = Netns::new("mtu", SERVER, &[CLIENT]);
    ip(&["link", "set", "dev", &ns.host_if, "mtu", "1400"]);
    let content = pattern(20_000, 3);
    for (clamp, want) in [(true, "1368"), (false, "8192")] {
        let d = Daemon::start(DaemonArgs {
            args: vec!["--listen".into(), format!("{SERVER}:0")],
            config: Some(format!("[protocol]\nblksize_path_mtu = {clamp}\n")),
            ..DaemonArgs::default()
        });
        d.put_file("f.bin", &content);
        let (offered, got) = offered_blksize(&d, &ns);
        assert_eq!(offered, want, "blksize_path_mtu = {clamp}");
        assert!(
            got == content,
            "blksize_path_mtu = {clamp}: the file arrives intact"
        );
    }
}
