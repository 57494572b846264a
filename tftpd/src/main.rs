//! The `tftpd` binary: parse the command line, load the configuration, bind the sockets,
//! drop privileges, then serve until SIGTERM. Errors here are `anyhow`, with context saying
//! what was being done.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, anyhow};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use tftpd::cli::{Cli, Command};
use tftpd::daemon::privs::{Identity, drop_privileges};
use tftpd::io::socket::bind_listener_group;
use tftpd::metrics::Metrics;
use tftpd::server::runtime::Runtime;
use tftpd::{daemon, filter, logging, metrics, server};

fn main() -> ExitCode {
    let cli = Cli::from_env();
    match start(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tftpd: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn start(cli: Cli) -> anyhow::Result<()> {
    if let Some(Command::Stats(args)) = &cli.command {
        return tftpd::stats::run(&cli, args)
            .map(|out| print!("{out}"))
            .map_err(Into::into);
    }
    let (config, notes) = tftpd::cli::load_with_notes(&cli).context("loading the configuration")?;
    if let Some(Command::Health { file, timeout }) = &cli.command {
        let probe = tftpd::health::Probe::for_config(
            &config,
            file.as_deref(),
            std::time::Duration::from_secs(*timeout),
        )?;
        for line in probe.run().context("health")? {
            println!("tftpd health: ok: {line}");
        }
        return Ok(());
    }
    if let Some(name) = &cli.map_test {
        let runtime = Runtime::new(config).context("checking the configuration")?;
        let client = cli.client.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let mapped = runtime
            .remapper
            .map(name, tftpd::config::RemapOp::Read, client);
        let shown = match &mapped {
            tftpd::fs::remap::Mapped::Unchanged => name.clone(),
            tftpd::fs::remap::Mapped::Rewritten(to) => to.clone(),
            tftpd::fs::remap::Mapped::Denied(rule) => {
                println!("{name:?} from {client}: denied by remap[{rule}]");
                return Ok(());
            }
        };
        let verdict = match tftpd::fs::RequestPath::parse(shown.as_bytes()) {
            Ok(_) => "served from the root if it exists".to_string(),
            Err(e) => format!("refused by the name checks: {e}"),
        };
        println!("{name:?} from {client} -> {shown:?} ({verdict})");
        return Ok(());
    }
    if cli.check_config {
        let source = config.source.as_ref().map_or_else(
            || "built-in defaults".to_string(),
            |p| p.display().to_string(),
        );
        for warning in config.warnings() {
            eprintln!("tftpd: warning: {warning}");
        }
        Runtime::new(config).context("checking the configuration")?;
        println!("tftpd: configuration OK ({source})");
        return Ok(());
    }
    let level = logging::init(&config.log).map_err(|e| anyhow!("setting up logging: {e}"))?;
    tftpd::cli::merge::log_notes(&notes);
    raise_fd_limit();

    // Bind everything that may need privileges first.
    // Socket activation (systemd's tftpd.socket) hands over bound sockets; `listen` then
    // describes nothing.
    let per_address = config.performance.socket.listeners_per_address();
    let listeners = match daemon::systemd::listen_fds().context("adopting systemd's sockets")? {
        Some(adopted) => {
            info!(
                count = adopted.len(),
                "using the sockets passed by systemd; `listen` is ignored"
            );
            adopt_into_groups(adopted, per_address)
        }
        None => config
            .listen
            .iter()
            .map(|a| {
                bind_listener_or_v4(*a, per_address)
                    .with_context(|| format!("binding the TFTP listener {a}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect(),
    };
    if per_address > 1 {
        info!(
            fastpath = "reuseport",
            per_address,
            sockets = listeners.len(),
            "listening with SO_REUSEPORT groups, one receive task per socket"
        );
    }
    let b = &config.performance.socket;
    for l in &listeners {
        tftpd::io::buffers::apply(l, b.recv_buffer, b.send_buffer)
            .context("setting the listening socket's buffers (performance.socket)")?;
        let got = tftpd::io::buffers::effective(l).context("reading the socket buffers back")?;
        // The kernel reports twice what it was asked for (half is its own bookkeeping).
        if (b.recv_buffer > 0 && got.recv < b.recv_buffer)
            || (b.send_buffer > 0 && got.send < b.send_buffer)
        {
            warn!(
                requested_recv = b.recv_buffer,
                requested_send = b.send_buffer,
                effective_recv = got.recv,
                effective_send = got.send,
                "socket buffers capped by net.core.rmem_max/wmem_max (raise them, or start as root)"
            );
        } else {
            info!(
                effective_recv = got.recv,
                effective_send = got.send,
                "socket buffers set"
            );
        }
    }
    let metrics_listener = config
        .metrics
        .listen
        .map(|a| {
            let l = std::net::TcpListener::bind(a)
                .with_context(|| format!("binding the metrics endpoint {a}"))?;
            l.set_nonblocking(true)
                .context("making the metrics socket non-blocking")?;
            anyhow::Ok(l)
        })
        .transpose()?;
    // The kernel filter loads and attaches while the process still may (CAP_BPF).
    let kernel_filter = filter::setup(
        config.ebpf.mode,
        &config.ebpf.pin_dir,
        config.protocol.largest_data(),
        config.single_port,
        &listeners,
    )
    .context("setting up the packet filter")?;
    let listen_ports = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.port())
        .collect();
    let xdp = match filter::setup_xdp(&config, listen_ports) {
        Ok(x) => x,
        Err(e) => {
            // Leave no pins of a daemon that never ran.
            if let Some(f) = &kernel_filter {
                f.unpin();
            }
            return Err(e).context("setting up XDP");
        }
    };

    if let Some(f) = &kernel_filter
        && let Some((uid, gid)) = daemon::privs::target_ids(&config.user, config.group.as_deref())
            .context("looking up the user to run as")?
    {
        f.chown_pins(uid, gid)
            .context("handing the pinned eBPF maps to the service user")?;
    }
    if let Some(x) = &xdp
        && let Some((uid, gid)) = daemon::privs::target_ids(&config.user, config.group.as_deref())
            .context("looking up the user to run as")?
    {
        x.chown_pins(uid, gid)
            .context("handing the pinned XDP maps to the service user")?;
    }
    // Written while the process may still write where pid files live (/run).
    if let Some(p) = &config.pidfile {
        std::fs::write(p, format!("{}\n", std::process::id()))
            .with_context(|| format!("writing the pidfile {}", p.display()))?;
    }
    // While still privileged (CAP_SYS_NICE, CAP_IPC_LOCK, raising RLIMIT_MEMLOCK) and
    // before the runtime's threads exist, so they inherit the policy.
    #[cfg(linux)]
    daemon::realtime::apply(
        &config.performance.realtime,
        config.user == "root" || !nix::unistd::geteuid().is_root(),
    );
    // One thread still: dropping privileges now applies to every thread made later.
    match drop_privileges(&config.user, config.group.as_deref()).context("dropping privileges")? {
        Identity::Dropped { user, uid, gid } => info!(user, uid, gid, "dropped privileges"),
        Identity::StayedRoot => warn!("running as root (user = \"root\"): privileges not dropped"),
        Identity::Unchanged { uid } => info!(uid, "not started as root; running as this user"),
    }
    // After the drop, so the writer thread never holds privileges; held to the end of this
    // function, so every queued line is written before `main` prints an error.
    let _log_writer = match logging::start_writer() {
        Ok(guard) => Some(guard),
        Err(e) => {
            warn!(error = %e, "could not start the log writer thread: lines are written by the threads that log");
            None
        }
    };
    if config.performance.io == tftpd::config::IoChoice::Portable {
        info!(
            io = "portable",
            off = %tftpd::config::PORTABLE_TURNS_OFF.join(", "),
            "performance.io = \"portable\": no platform fast path; every transfer on the async runtime through tokio's socket"
        );
    }
    match (
        config.performance.batching.gso,
        tftpd::fastpath::support().gso,
    ) {
        (true, true) => info!(fastpath = "gso", "windows are sent with UDP GSO"),
        (true, false) => warn!(
            fastpath = "gso",
            "performance.batching.gso is on but this kernel has no UDP GSO: one datagram per call"
        ),
        (false, _) => info!(
            fastpath = "gso",
            "UDP GSO off (performance.batching.gso = false)"
        ),
    }
    match (
        config.performance.batching.recvmmsg,
        tftpd::fastpath::support().recvmmsg,
    ) {
        (true, true) => info!(
            fastpath = "recvmmsg",
            batch = config.performance.batching.recv_batch,
            "listeners read requests with recvmmsg"
        ),
        (true, false) => warn!(
            fastpath = "recvmmsg",
            "performance.batching.recvmmsg is on but this kernel (or platform) has no \
             recvmmsg: one datagram per call"
        ),
        (false, _) => info!(
            fastpath = "recvmmsg",
            "recvmmsg off (performance.batching.recvmmsg = false)"
        ),
    }
    for warning in config.warnings() {
        warn!("{warning}");
    }
    // Before the runtime exists, so its threads inherit the mask; threads already running
    // (this one, the log writer's) are pinned one by one.
    let cpus = &config.performance.cpu.affinity;
    if !cpus.is_empty() {
        let threads = daemon::affinity::pin_process(cpus)
            .context("pinning the daemon's threads (performance.cpu.affinity)")?;
        info!(
            cpus = %daemon::affinity::list(cpus),
            threads,
            "threads pinned to performance.cpu.affinity"
        );
    }
    server::file_io::log_start(&config);
    let runtime = Runtime::new(config).context("opening the served root")?;
    // Before serving and after the privilege drop: the sweep removes only what the service
    // user could have written. Not with uploads off: a daemon told not to write leaves its
    // roots as they are (the first start with uploads on sweeps what an earlier run left).
    if runtime.config.write != tftpd::fs::WriteMode::Off {
        tftpd::fs::upload::sweep(runtime.roots());
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tftpd")
        .build()
        .context("starting the async runtime")?;
    rt.block_on(serve(
        cli,
        runtime,
        listeners,
        metrics_listener,
        level,
        kernel_filter,
        xdp,
    ))
}

/// Raises the soft open-file limit to the hard one: each transfer holds a socket and a file,
/// and a boot storm of a thousand clients would hit the usual soft limit of 1024.
fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => info!(from = soft, to = hard, "raised the open-file limit"),
            Err(e) => warn!(soft, hard, error = %e, "could not raise the open-file limit"),
        },
        Ok(_) => {}
        Err(e) => warn!(error = %e, "could not read the open-file limit"),
    }
}

/// Binds `n` sockets on `addr` (an `SO_REUSEPORT` group when `n` > 1); the IPv6 wildcard
/// falls back to the IPv4 one on a host without IPv6, so the default `[::]:69` ("every
/// address") still works there.
fn bind_listener_or_v4(addr: SocketAddr, n: usize) -> std::io::Result<Vec<std::net::UdpSocket>> {
    match bind_listener_group(addr, n) {
        Err(e) if addr.ip() == IpAddr::V6(Ipv6Addr::UNSPECIFIED) && ipv6_unavailable(&e) => {
            let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), addr.port());
            warn!(%addr, fallback = %v4, error = %e, "IPv6 is not available; listening on IPv4 only");
            bind_listener_group(v4, n)
        }
        other => other,
    }
}

/// Socket activation with `reuseport_workers` > 1: each adopted socket gets `n - 1` siblings
/// in its `SO_REUSEPORT` group, which needs `ReusePort=yes` in the .socket unit. Without it
/// the adopted sockets serve alone, and one line says why.
fn adopt_into_groups(adopted: Vec<std::net::UdpSocket>, n: usize) -> Vec<std::net::UdpSocket> {
    if n <= 1 {
        return adopted;
    }
    let mut all = Vec::with_capacity(adopted.len() * n);
    let mut refused = None;
    for s in adopted {
        match tftpd::io::socket::join_group(&s, n - 1) {
            Ok(more) => {
                all.push(s);
                all.extend(more);
            }
            Err(e) => {
                refused.get_or_insert(e);
                all.push(s);
            }
        }
    }
    if let Some(e) = refused {
        warn!(
            fastpath = "reuseport",
            error = %e,
            "performance.socket.reuseport_workers: adopted sockets without SO_REUSEPORT are \
             served by one socket each"
        );
    }
    all
}

fn ipv6_unavailable(e: &std::io::Error) -> bool {
    // EAFNOSUPPORT: no IPv6 in the kernel; EADDRNOTAVAIL: IPv6 disabled by sysctl.
    use nix::errno::Errno;
    matches!(e.raw_os_error(), Some(c) if c == Errno::EAFNOSUPPORT as i32 || c == Errno::EADDRNOTAVAIL as i32)
}

async fn serve(
    cli: Cli,
    runtime: Runtime,
    listeners: Vec<std::net::UdpSocket>,
    metrics_listener: Option<std::net::TcpListener>,
    level: logging::LevelHandle,
    kernel_filter: Option<filter::KernelFilter>,
    xdp: Option<filter::xdp::XdpFilter>,
) -> anyhow::Result<()> {
    let tx_pidfile = runtime.config.pidfile.clone();
    let metrics_limits = metrics::http::Limits::from(&runtime.config.metrics);
    let (tx, rx) = watch::channel(Arc::new(runtime));
    let shutdown = CancellationToken::new();
    let kernel_filter = kernel_filter.map(Arc::new);
    let metrics = Arc::new(Metrics::default());
    tokio::spawn(metrics::build_info::follow(metrics.clone(), rx.clone()));
    if let Some(f) = &kernel_filter {
        metrics.set_kernel_filter(f.clone());
    }
    let xdp = xdp.map(Arc::new);
    if let Some(x) = &xdp {
        metrics.set_xdp(x.clone());
    }
    if let Some(l) = metrics_listener {
        let l = tokio::net::TcpListener::from_std(l).context("registering the metrics socket")?;
        info!(addr = %l.local_addr()?, "metrics endpoint listening");
        tokio::spawn(metrics::http::serve(
            l,
            metrics.clone(),
            metrics_limits,
            shutdown.clone(),
        ));
    }
    let notifier = daemon::systemd::Notifier::from_env()
        .context("reading NOTIFY_SOCKET")?
        .map(Arc::new);
    if let (Some(n), Some(every)) = (&notifier, daemon::systemd::watchdog_interval()) {
        // Half the interval, as sd_watchdog_enabled(3) advises.
        let n = n.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every / 2);
            loop {
                tick.tick().await;
                n.notify("WATCHDOG=1");
            }
        });
    }
    let signals = daemon::signals::install(
        cli,
        tx,
        Some(level),
        xdp.clone(),
        notifier.clone(),
        shutdown.clone(),
    )
    .context("installing the SIGTERM/SIGINT/SIGHUP handlers")?;
    tokio::spawn(signals);
    let served = server::run(
        listeners,
        rx,
        metrics,
        kernel_filter.clone(),
        notifier,
        shutdown,
    )
    .await;
    if let Some(f) = &kernel_filter {
        f.unpin();
    }
    if let Some(x) = &xdp {
        x.detach_all();
        x.unpin();
    }
    if let Some(p) = &tx_pidfile {
        // After the privilege drop the directory may not be ours: then the file stays, and
        // its content (a dead pid) says so.
        if let Err(e) = std::fs::remove_file(p) {
            warn!(path = %p.display(), error = %e, "removing the pidfile failed");
        }
    }
    served.context("serving")
}
