//! The `tftpd` binary: parse the command line, load the configuration, bind the sockets,
//! drop privileges, then serve until SIGTERM. Errors here are `anyhow`, with context saying
//! what was being done.

use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, anyhow};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use tftpd::cli::{Cli, Command};
use tftpd::daemon::privs::{Identity, drop_privileges};
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
        println!("{}", runtime.map_test(name, client));
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
    daemon::listeners::raise_fd_limit();

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
            daemon::listeners::adopt_into_groups(adopted, per_address)
        }
        None => config
            .listen
            .iter()
            .map(|a| {
                daemon::listeners::bind_or_v4(*a, per_address)
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
    daemon::listeners::apply_buffers(&listeners, &config.performance.socket)
        .context("setting the listening socket's buffers (performance.socket)")?;
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
    daemon::start_log::fast_paths(&config);
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
