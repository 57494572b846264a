//! A small LAN made by the test (root only): a bridge here holding the server's address,
//! and one network namespace per client, each joined to the bridge by a veth pair, with a
//! route for 224.0.0.0/4 so clients can join multicast groups. Multicast snooping is off, so
//! the bridge floods group traffic to every port. Everything is removed on drop, also when
//! the test fails.

use std::net::Ipv4Addr;
use std::process::Command;

use super::netns::ip;

/// The bridge and the client namespaces.
pub(crate) struct Lan {
    bridge: String,
    namespaces: Vec<String>,
    host_ifs: Vec<String>,
}

impl Lan {
    /// A bridge holding `server`/24 and one namespace per address in `clients`.
    pub(crate) fn new(tag: &str, server: Ipv4Addr, clients: &[Ipv4Addr]) -> Self {
        let id = std::process::id() % 100_000;
        let bridge = format!("{tag}b{id}");
        let mut lan = Self {
            bridge: bridge.clone(),
            namespaces: Vec::new(),
            host_ifs: Vec::new(),
        };
        // Leftovers of a killed run would make this one fail for no reason.
        let _ = Command::new("ip").args(["link", "del", &bridge]).output();
        ip(&["link", "add", &bridge, "type", "bridge"]);
        ip(&[
            "link",
            "set",
            &bridge,
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ]);
        ip(&["addr", "add", &format!("{server}/24"), "dev", &bridge]);
        ip(&["link", "set", &bridge, "up"]);
        for (i, c) in clients.iter().enumerate() {
            let ns = format!("tftpd-{tag}{i}-{id}");
            let host_if = format!("{tag}h{i}-{id}");
            let peer_if = format!("{tag}c{i}-{id}");
            let _ = Command::new("ip").args(["netns", "del", &ns]).output();
            let _ = Command::new("ip").args(["link", "del", &host_if]).output();
            ip(&["netns", "add", &ns]);
            lan.namespaces.push(ns.clone());
            ip(&[
                "link", "add", &host_if, "type", "veth", "peer", "name", &peer_if, "netns", &ns,
            ]);
            lan.host_ifs.push(host_if.clone());
            ip(&["link", "set", &host_if, "master", &bridge]);
            ip(&["link", "set", &host_if, "up"]);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{c}/24"),
                "dev",
                &peer_if,
            ]);
            ip(&["-n", &ns, "link", "set", &peer_if, "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            ip(&["-n", &ns, "route", "add", "224.0.0.0/4", "dev", &peer_if]);
        }
        lan
    }

    /// Runs `f` on a new thread inside client `i`'s namespace.
    pub(crate) fn spawn<T: Send + 'static>(
        &self,
        i: usize,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let path = format!("/var/run/netns/{}", self.namespaces[i]);
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).expect("opening the namespace");
            nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .expect("entering the namespace");
            f()
        })
    }

    /// A command run inside client `i`'s namespace (`ip netns exec`).
    pub(crate) fn command(&self, i: usize, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.namespaces[i], program]);
        c
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        // Deleting a namespace deletes its veth end, and with it the pair.
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        for i in &self.host_ifs {
            let _ = Command::new("ip").args(["link", "del", i]).output();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
    }
}
