//! A network namespace joined to this one by a veth pair, made and removed by the test
//! (root only). The server side stays here; code that should run "on the client" runs in a
//! thread that has entered the namespace, so the sockets it makes live there.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::Command;

/// Runs `ip` with `args`, panicking with its output on failure.
pub(crate) fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("running ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ns` with a veth pair: `host_if` (here, `server`/24) and its peer inside the namespace
/// holding every address in `clients`.
pub(crate) struct Netns {
    pub(crate) name: String,
    pub(crate) host_if: String,
    /// The veth end inside the namespace.
    pub(crate) peer_if: String,
    pub(crate) server: Ipv4Addr,
}

impl Netns {
    pub(crate) fn new(tag: &str, server: Ipv4Addr, clients: &[Ipv4Addr]) -> Self {
        let id = std::process::id() % 100_000;
        let name = format!("tftpd-{tag}-{id}");
        let host_if = format!("{tag}h{id}");
        let peer_if = format!("{tag}c{id}");
        // Leftovers of a killed run would make the next one fail for no reason.
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
        let _ = Command::new("ip").args(["link", "del", &host_if]).status();
        ip(&["netns", "add", &name]);
        ip(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", &peer_if, "netns", &name,
        ]);
        ip(&["addr", "add", &format!("{server}/24"), "dev", &host_if]);
        ip(&["link", "set", &host_if, "up"]);
        for c in clients {
            ip(&[
                "-n",
                &name,
                "addr",
                "add",
                &format!("{c}/24"),
                "dev",
                &peer_if,
            ]);
        }
        ip(&["-n", &name, "link", "set", &peer_if, "up"]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        Self {
            name,
            host_if,
            peer_if,
            server,
        }
    }

    /// Adds IPv6: `server` here and every address in `clients` on the namespace's end, all
    /// on-link as `/prefix_len`, without duplicate address detection (usable at once).
    pub(crate) fn add_v6(&self, server: Ipv6Addr, clients: &[Ipv6Addr], prefix_len: u8) {
        let with_len = |a: &Ipv6Addr| format!("{a}/{prefix_len}");
        ip(&[
            "addr",
            "add",
            &with_len(&server),
            "dev",
            &self.host_if,
            "nodad",
        ]);
        for c in clients {
            ip(&[
                "-n",
                &self.name,
                "addr",
                "add",
                &with_len(c),
                "dev",
                &self.peer_if,
                "nodad",
            ]);
        }
    }

    /// Runs `f` on a thread inside the namespace and returns its result.
    pub(crate) fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                let ns = std::fs::File::open(&path).expect("opening the namespace");
                nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .expect("entering the namespace");
                f()
            })
            .join()
            .expect("the namespace thread panicked")
        })
    }

    /// Runs a command inside the namespace (`ip netns exec`).
    pub(crate) fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes its veth end, and with it the pair.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .status();
    }
}
