//! The network namespace and veth pair the client and the flood run behind, so each datagram
//! crosses a real interface's receive path.

use std::process::Command;

use super::{CLIENT, SERVER};
use crate::exec;

/// The namespace and veth pair, removed on drop.
pub(super) struct Link {
    pub(super) ns: String,
    pub(super) host_if: String,
}

impl Link {
    pub(super) fn new() -> anyhow::Result<Self> {
        let id = std::process::id() % 100_000;
        let link = Self {
            ns: format!("tftpd-flood-{id}"),
            host_if: format!("tfloodh{id}"),
        };
        let peer = format!("tfloodc{id}");
        let server = format!("{SERVER}/24");
        let client = format!("{CLIENT}/24");
        let steps: [&[&str]; 6] = [
            &["netns", "add", &link.ns],
            &[
                "link",
                "add",
                &link.host_if,
                "type",
                "veth",
                "peer",
                "name",
                &peer,
                "netns",
                &link.ns,
            ],
            &["addr", "add", &server, "dev", &link.host_if],
            &["link", "set", &link.host_if, "up"],
            &["-n", &link.ns, "addr", "add", &client, "dev", &peer],
            &["-n", &link.ns, "link", "set", &peer, "up"],
        ];
        for args in steps {
            exec(Command::new("ip").args(args))?;
        }
        Ok(link)
    }

    /// A command run inside the namespace.
    pub(super) fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns, program]);
        c
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Deleting the namespace deletes its veth end, and with it the pair.
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}
