//! NUMA placement (`performance.memory.numa`, on by default; Linux): on a host with more than
//! one memory node, a listener thread pinned to a CPU (`performance.cpu.affinity` with
//! listener threads) asks the kernel to place the memory it touches on that CPU's node
//! (`set_mempolicy(MPOL_PREFERRED)`): its receive slots (on huge pages or not) and whatever
//! it allocates while taking requests, so a request is read into memory beside the CPU that
//! reads it. Other threads move between CPUs and keep the kernel's default (first touch).
//! With one node (most virtual machines, single-socket hosts) there is nothing to place, and
//! a start-up line says so.

use std::io;
use std::path::Path;

use nix::libc;

use crate::daemon::affinity::parse_list;

/// Where the kernel describes the memory nodes.
const SYSFS_NODES: &str = "/sys/devices/system/node";

/// The host's memory nodes and the CPUs of each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// (node, its CPUs), by node.
    nodes: Vec<(usize, Vec<usize>)>,
}

impl Topology {
    /// Reads this host's topology.
    pub fn read() -> io::Result<Self> {
        Self::read_from(Path::new(SYSFS_NODES))
    }

    /// Reads a topology laid out as in `/sys/devices/system/node` under `root`: `online`
    /// lists the nodes, `nodeN/cpulist` each node's CPUs.
    pub fn read_from(root: &Path) -> io::Result<Self> {
        let list = |rel: &str| -> io::Result<Vec<usize>> {
            let path = root.join(rel);
            let text = std::fs::read_to_string(&path)?;
            parse_list(&text).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} is not a list: {:?}", path.display(), text.trim()),
                )
            })
        };
        let nodes = list("online")?
            .into_iter()
            .map(|n| Ok((n, list(&format!("node{n}/cpulist"))?)))
            .collect::<io::Result<_>>()?;
        Ok(Self { nodes })
    }

    /// How many nodes there are.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The node `cpu` belongs to.
    pub fn node_of(&self, cpu: usize) -> Option<usize> {
        self.nodes
            .iter()
            .find(|(_, cpus)| cpus.contains(&cpu))
            .map(|(n, _)| *n)
    }
}

/// Bits in the node mask handed to the kernel: far more nodes than any host has.
const MASK_BITS: usize = 1024;

/// Asks the kernel to place the memory the calling thread touches from now on node `node`
/// (`MPOL_PREFERRED`: another node when that one is full, never a failed allocation).
pub fn prefer_node(node: usize) -> io::Result<()> {
    if node >= MASK_BITS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("NUMA node {node} is past the mask's {MASK_BITS} bits"),
        ));
    }
    let mut mask = [0 as libc::c_ulong; MASK_BITS / libc::c_ulong::BITS as usize];
    let word = libc::c_ulong::BITS as usize;
    mask[node / word] |= 1 << (node % word);
    // SAFETY: set_mempolicy reads `maxnode` bits from `mask`, which holds MASK_BITS bits and
    // lives across the call; it changes only the calling thread's policy.
    let r = unsafe {
        libc::syscall(
            libc::SYS_set_mempolicy,
            libc::MPOL_PREFERRED,
            mask.as_ptr(),
            MASK_BITS as libc::c_ulong,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The calling thread's preferred node, when its policy is `MPOL_PREFERRED` (`get_mempolicy`).
pub fn preferred_node() -> io::Result<Option<usize>> {
    let mut mode: libc::c_int = 0;
    let mut mask = [0 as libc::c_ulong; MASK_BITS / libc::c_ulong::BITS as usize];
    // SAFETY: get_mempolicy writes the mode into `mode` and at most `maxnode` bits into
    // `mask`, both alive across the call; addr 0 and flags 0 ask for the thread's policy.
    let r = unsafe {
        libc::syscall(
            libc::SYS_get_mempolicy,
            &raw mut mode,
            mask.as_mut_ptr(),
            MASK_BITS as libc::c_ulong,
            0usize,
            0 as libc::c_ulong,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    if mode != libc::MPOL_PREFERRED {
        return Ok(None);
    }
    let word = libc::c_ulong::BITS as usize;
    Ok((0..MASK_BITS).find(|&n| mask[n / word] & (1 << (n % word)) != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sysfs(online: &str, nodes: &[(usize, &str)]) -> impl AsRef<Path> + use<> {
        let dir = crate::fs::testdir_for_config();
        let root = dir.path();
        std::fs::write(root.join("online"), format!("{online}\n")).expect("online");
        for (n, cpus) in nodes {
            let node = root.join(format!("node{n}"));
            std::fs::create_dir(&node).expect("node dir");
            std::fs::write(node.join("cpulist"), format!("{cpus}\n")).expect("cpulist");
        }
        dir
    }

    #[test]
    fn a_two_node_host_maps_each_cpu_to_its_node() {
        let dir = sysfs("0-1", &[(0, "0-3,8-11"), (1, "4-7,12-15")]);
        let t = Topology::read_from(dir.as_ref()).expect("topology");
        assert_eq!(t.node_count(), 2);
        assert_eq!(t.node_of(2), Some(0));
        assert_eq!(t.node_of(9), Some(0));
        assert_eq!(t.node_of(5), Some(1));
        assert_eq!(t.node_of(15), Some(1));
        assert_eq!(t.node_of(16), None, "a CPU no node lists");
    }

    #[test]
    fn a_node_without_cpus_and_a_broken_list_are_told_apart() {
        // Memory-only nodes (CXL, some 2-socket layouts) list no CPUs.
        let dir = sysfs("0,2", &[(0, "0-1"), (2, "")]);
        let t = Topology::read_from(dir.as_ref()).expect("topology");
        assert_eq!(t.node_count(), 2);
        assert_eq!(t.node_of(1), Some(0));
        let bad = sysfs("0", &[(0, "0-x")]);
        let e = Topology::read_from(bad.as_ref()).expect_err("not a list");
        assert!(e.to_string().contains("cpulist"), "names the file: {e}");
    }

    #[test]
    fn this_host_has_a_topology_with_every_online_cpu_on_a_node() {
        let t = Topology::read().expect("this host's topology");
        assert!(t.node_count() >= 1);
        for cpu in crate::daemon::affinity::usable_cpus().expect("cpus") {
            assert!(t.node_of(cpu).is_some(), "CPU {cpu} is on no node: {t:?}");
        }
    }

    #[test]
    fn a_thread_that_prefers_a_node_reads_that_policy_back() {
        let node = Topology::read()
            .expect("topology")
            .node_of(0)
            .expect("CPU 0's node");
        // On a thread of its own: the policy stays with the thread that set it.
        std::thread::spawn(move || {
            assert_eq!(preferred_node().expect("get_mempolicy"), None, "default");
            prefer_node(node).expect("set_mempolicy");
            assert_eq!(preferred_node().expect("get_mempolicy"), Some(node));
            // Memory touched now comes from that node (the only one on a one-node host).
            let v = vec![1u8; 1 << 20];
            assert_eq!(v.iter().map(|&b| usize::from(b)).sum::<usize>(), 1 << 20);
        })
        .join()
        .expect("thread");
        assert!(prefer_node(MASK_BITS).is_err(), "a node past the mask");
    }
}
