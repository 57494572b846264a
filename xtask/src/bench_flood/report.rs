//! The results of one filter path and the Markdown table they are printed as.

pub(super) struct Row {
    pub(super) path: &'static str,
    pub(super) sent: u64,
    pub(super) reached_userspace: u64,
    pub(super) dropped_in_kernel: u64,
    pub(super) cpu_quiet: f64,
    pub(super) cpu_flood: f64,
    pub(super) quiet_mbs: f64,
    pub(super) flood_mbs: f64,
    pub(super) alone_sent: u64,
    pub(super) alone_dropped: u64,
    pub(super) alone_cpu: f64,
}

pub(super) fn print_table(rows: &[Row]) {
    println!(
        "\n| filter path | junk sent | junk reaching userspace | dropped in kernel | daemon CPU s, quiet download | daemon CPU s, flooded download | quiet MB/s | flooded MB/s | flooded / quiet | flood alone: sent | dropped | CPU s (daemon + softirq) | drops per CPU-second |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let (flooded, ratio) = if r.flood_mbs.is_nan() {
            ("failed".to_string(), "0".to_string())
        } else {
            (
                format!("{:.1}", r.flood_mbs),
                format!("{:.2}", r.flood_mbs / r.quiet_mbs),
            )
        };
        let per_cpu_second = if r.alone_cpu > 0.0 {
            format!("{:.0}", r.alone_dropped as f64 / r.alone_cpu)
        } else {
            "n/a".to_string()
        };
        println!(
            "| {} | {} | {} | {} | {:.2} | {:.2} | {:.1} | {flooded} | {ratio} | {} | {} | {:.2} | {per_cpu_second} |",
            r.path,
            r.sent,
            r.reached_userspace,
            r.dropped_in_kernel,
            r.cpu_quiet,
            r.cpu_flood,
            r.quiet_mbs,
            r.alone_sent,
            r.alone_dropped,
            r.alone_cpu,
        );
    }
}
