//! Listener threads (`performance.cpu.intake_threads`, on by default; docs/adr/0027): each
//! listening socket takes its requests on a thread of its own with a single-threaded
//! runtime, while the transfers it starts run on the shared async runtime.
//!
//! On the shared runtime a listener is one task among the transfers, so a burst of requests
//! (a rack powering on) waits in the run queue behind every transfer with a block to send.
//! On a thread of its own the operating system schedules it beside the runtime's workers,
//! and a woken listener runs at once.
//!
//! With `performance.cpu.affinity`, the k-th socket of an address's `SO_REUSEPORT` group is
//! served by a thread pinned to the k-th CPU of the list and, on Linux, is given that CPU
//! with `SO_INCOMING_CPU`: the kernel then hands the requests a CPU receives (from the NIC
//! queue whose interrupts it takes) to the worker on that CPU instead of spreading them by
//! a hash of the addresses, so a request is read on the CPU whose cache already holds it.
//! On a host with several NUMA nodes (`performance.memory.numa`), such a thread also asks for
//! its memory on its CPU's node (`fastpath/numa.rs`).

use std::io;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tracing::info;

use crate::io::listen::ListenSocket;

use super::Shared;
use super::listener;

/// Where a listener thread runs: the CPU it is pinned to, and the NUMA node it places its
/// memory on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Placement {
    /// Pinned to this CPU (and the socket steered to it).
    pub cpu: Option<usize>,
    /// Its memory preferred on this node (a host with several nodes).
    pub node: Option<usize>,
}

/// Starts `socket`'s listener on a thread of its own, placed as `place` says. Returns once
/// the thread serves (or with why it could not start), with a task on the calling runtime
/// that ends when the listener does (after the drain stops intake).
pub fn start(
    socket: std::net::UdpSocket,
    shared: Arc<Shared>,
    place: Placement,
) -> io::Result<JoinHandle<()>> {
    let cpu = place.cpu;
    let local = socket.local_addr()?;
    let counter = cpu.map(|c| shared.metrics.pinned_worker(c));
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<io::Result<()>>(1);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let name = match cpu {
        Some(c) => format!("tftpd-intake-{c}"),
        None => "tftpd-intake".to_string(),
    };
    std::thread::Builder::new().name(name).spawn(move || {
        match prepare(socket, place) {
            Ok((runtime, listen)) => {
                let _ = ready_tx.send(Ok(()));
                runtime.block_on(listener::listen(listen, shared, counter));
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
            }
        }
        let _ = done_tx.send(());
    })?;
    ready_rx
        .recv()
        .map_err(|_| io::Error::other("the listener thread ended before it started"))??;
    match (cpu, place.node) {
        (Some(cpu), Some(node)) => info!(
            listen = %local,
            cpu,
            numa_node = node,
            "listener thread pinned, its memory on the CPU's NUMA node; the kernel steers this CPU's requests to it"
        ),
        (Some(cpu), None) => info!(
            listen = %local,
            cpu,
            "listener thread pinned; the kernel steers this CPU's requests to it"
        ),
        (None, _) => info!(listen = %local, "listener thread started"),
    }
    Ok(tokio::spawn(async move {
        let _ = done_rx.await;
    }))
}

/// On the listener's thread: pins it (and steers the socket) to its CPU, prefers its node
/// for memory, and makes the runtime the socket is registered with (so the slots the
/// listener allocates come after the memory policy).
fn prepare(
    socket: std::net::UdpSocket,
    place: Placement,
) -> io::Result<(tokio::runtime::Runtime, ListenSocket)> {
    if let Some(cpu) = place.cpu {
        crate::daemon::affinity::pin_this_thread(cpu).map_err(io::Error::other)?;
        #[cfg(linux)]
        socket2::SockRef::from(&socket).set_cpu_affinity(cpu)?;
    }
    #[cfg(linux)]
    if let Some(node) = place.node
        && let Err(e) = crate::fastpath::numa::prefer_node(node)
    {
        // Placement is an optimisation: the listener serves either way.
        tracing::warn!(numa_node = node, error = %e, "set_mempolicy refused; this listener's memory stays where first touched");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let listen = {
        let _registering = runtime.enter();
        ListenSocket::new(socket)?
    };
    Ok((runtime, listen))
}

/// The CPU the listener of socket `index` of its address's group is pinned to, when
/// `affinity` names CPUs: the group's sockets take the list's CPUs in turn.
pub fn cpu_for(affinity: &[usize], index: usize) -> Option<usize> {
    (!affinity.is_empty()).then(|| affinity[index % affinity.len()])
}

/// The NUMA node of each CPU, for the memory of pinned listener threads: on a host with
/// several nodes and `performance.memory.numa` on, when `pinned` listeners exist; `None`
/// otherwise. Says at start, in one line, what NUMA placement does here.
pub fn numa_nodes(numa: bool, pinned: bool) -> Option<NodeOf> {
    if !numa {
        return None;
    }
    #[cfg(linux)]
    {
        match crate::fastpath::numa::Topology::read() {
            Err(e) => {
                tracing::warn!(error = %e, "reading the NUMA topology failed; performance.memory.numa places nothing");
                None
            }
            Ok(t) if t.node_count() <= 1 => {
                info!("one NUMA node: performance.memory.numa has nothing to place");
                None
            }
            Ok(t) if !pinned => {
                info!(
                    nodes = t.node_count(),
                    "several NUMA nodes, but no listener thread is pinned (performance.cpu.affinity with intake_threads): memory stays where first touched"
                );
                None
            }
            Ok(t) => Some(Box::new(move |cpu| t.node_of(cpu))),
        }
    }
    #[cfg(not(linux))]
    {
        let _ = pinned;
        info!("performance.memory.numa: NUMA placement is implemented on Linux only");
        None
    }
}

/// A CPU's NUMA node.
pub type NodeOf = Box<dyn Fn(usize) -> Option<usize> + Send>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_takes_the_listed_cpus_in_turn() {
        assert_eq!(cpu_for(&[], 0), None, "no list: not pinned");
        assert_eq!(cpu_for(&[2, 5], 0), Some(2));
        assert_eq!(cpu_for(&[2, 5], 1), Some(5));
        assert_eq!(cpu_for(&[2, 5], 2), Some(2), "more workers than CPUs wrap");
    }
}
