//! `unique_root` (dnsmasq's `--tftp-unique-root`): a client whose directory exists inside
//! the root (named by its IP address, or by its MAC address from the kernel's ARP table) is
//! served from it, downloads and uploads alike; a client without one gets the root. By MAC
//! needs a real neighbour, so that test runs a client in a network namespace (root only).

mod harness;

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::Duration;

use harness::netns::Netns;
use harness::raw::{Raw, Reply, request};
use harness::{Daemon, DaemonArgs, is_root, skip};

const REPLY: Duration = Duration::from_secs(5);

fn start(kind: &str, extra: &[&str]) -> Daemon {
    let mut args: Vec<String> = extra.iter().map(|s| (*s).to_string()).collect();
    args.extend(["--write".into(), "create".into()]);
    Daemon::start(DaemonArgs {
        args,
        config: Some(format!("unique_root = \"{kind}\"\n")),
        ..DaemonArgs::default()
    })
}

#[test]
fn by_ip_a_client_with_a_directory_is_served_from_it_and_others_from_the_root() {
    let d = start("ip", &[]);
    d.put_file("boot.cfg", b"shared");
    d.put_file("only-shared.cfg", b"x");
    d.put_file("127.0.0.1/boot.cfg", b"mine");
    let get = |name: &str| Raw::new(d.addr()).download(name, &[], REPLY);
    assert_eq!(get("boot.cfg"), Ok(b"mine".to_vec()), "its own directory");
    assert!(
        matches!(get("only-shared.cfg"), Err(Reply::Error { code: 1, .. })),
        "with a directory of its own, the client sees only it (as dnsmasq does)"
    );
    // An upload lands in the client's directory too.
    let c = Raw::new(d.addr());
    c.send(&request(2, b"up.txt", "octet", &[]));
    let (ack, tid) = c.expect(REPLY, "ACK 0");
    assert_eq!(ack, Reply::Ack(0));
    c.send_to(&harness::raw::data(1, b"hello"), tid);
    let (ack, _) = c.expect(REPLY, "ACK 1");
    assert_eq!(ack, Reply::Ack(1));
    d.wait_for_log("upload stored", REPLY);
    assert_eq!(
        std::fs::read(d.root().join("127.0.0.1/up.txt")).expect("stored"),
        b"hello"
    );
    assert!(!d.root().join("up.txt").exists(), "not in the shared root");
    // Without the directory: the root.
    std::fs::remove_dir_all(d.root().join("127.0.0.1")).expect("remove");
    assert_eq!(
        get("boot.cfg"),
        Ok(b"shared".to_vec()),
        "the root as fallback"
    );
}

#[test]
fn by_ip_the_directory_cannot_lead_outside_the_root() {
    let d = start("ip", &[]);
    let outside = harness::TempDir::new("outside");
    std::fs::write(outside.path().join("boot.cfg"), b"secret").expect("write");
    std::os::unix::fs::symlink(outside.path(), d.root().join("127.0.0.1")).expect("symlink");
    d.put_file("boot.cfg", b"shared");
    let got = Raw::new(d.addr()).download("boot.cfg", &[], REPLY);
    assert!(
        !matches!(&got, Ok(b) if b == b"secret"),
        "a symlinked client directory pointing out of the root is never followed: {got:?}"
    );
}

#[test]
fn by_mac_a_neighbour_is_served_from_its_mac_directory() {
    if !is_root() {
        return skip(
            "by_mac_a_neighbour_is_served_from_its_mac_directory",
            "needs root (network namespaces)",
        );
    }
    let server = Ipv4Addr::new(10, 213, 79, 1);
    let client = Ipv4Addr::new(10, 213, 79, 2);
    let ns = Netns::new("unq", server, &[client]);
    let links = ns
        .command("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("ip link");
    let links = String::from_utf8_lossy(&links.stdout).into_owned();
    let mac = links
        .lines()
        .filter(|l| !l.contains(" lo:"))
        .find_map(|l| l.split("link/ether ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the client's MAC")
        .replace(':', "-")
        .to_ascii_lowercase();
    let d = start("mac", &["--listen", &format!("{server}:0")]);
    let addr = *d
        .addrs()
        .iter()
        .find(|a| a.ip() == server)
        .expect("the veth listener");
    d.put_file("boot.cfg", b"shared");
    let get = || {
        ns.run(|| {
            Raw {
                socket: UdpSocket::bind(SocketAddrV4::new(client, 0)).expect("bind"),
                server: addr,
            }
            .download("boot.cfg", &[], REPLY)
        })
    };
    assert_eq!(get(), Ok(b"shared".to_vec()), "no directory yet: the root");
    d.put_file(&format!("{mac}/boot.cfg"), b"by mac");
    assert_eq!(get(), Ok(b"by mac".to_vec()), "its MAC's directory ({mac})");
}
