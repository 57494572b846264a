//! The standard Prometheus process metrics an operator compares with the limits:
//! `process_open_fds` against `process_max_fds` (each transfer holds a socket and a file) and
//! `process_resident_memory_bytes`. Read from `/proc/self` at scrape time, so Linux only;
//! elsewhere the families are left out (docs/monitoring.md says so), never shown as 0.

/// Open file descriptors (gauge).
pub const PROCESS_OPEN_FDS: &str = "process_open_fds";
/// The soft limit on open file descriptors, `RLIMIT_NOFILE` (gauge).
pub const PROCESS_MAX_FDS: &str = "process_max_fds";
/// Resident set size in bytes (gauge).
pub const PROCESS_RESIDENT_MEMORY_BYTES: &str = "process_resident_memory_bytes";

/// The soft "Max open files" limit from `/proc/self/limits` text; `None` for "unlimited" or
/// a table without the row.
pub fn parse_max_fds(limits: &str) -> Option<u64> {
    let row = limits.lines().find(|l| l.starts_with("Max open files"))?;
    row["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Resident pages from `/proc/self/statm` text (its second field).
pub fn parse_resident_pages(statm: &str) -> Option<u64> {
    statm.split_whitespace().nth(1)?.parse().ok()
}

/// Appends the process families this platform can read.
pub fn render(out: &mut String) {
    #[cfg(target_os = "linux")]
    {
        use std::fmt::Write as _;
        let mut gauge = |name: &str, help: &str, value: Option<u64>| {
            if let Some(v) = value {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
            }
        };
        // The directory handle read_dir holds is one of the entries; it is not the daemon's.
        let open = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| (d.count() as u64).saturating_sub(1));
        gauge(PROCESS_OPEN_FDS, "Number of open file descriptors.", open);
        let max = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|t| parse_max_fds(&t));
        gauge(
            PROCESS_MAX_FDS,
            "Maximum number of open file descriptors.",
            max,
        );
        let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .and_then(|p| u64::try_from(p).ok());
        let rss = std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|t| parse_resident_pages(&t))
            .zip(page)
            .map(|(pages, size)| pages * size);
        gauge(
            PROCESS_RESIDENT_MEMORY_BYTES,
            "Resident memory size in bytes.",
            rss,
        );
    }
    #[cfg(not(target_os = "linux"))]
    let _ = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: &str = "Limit                     Soft Limit           Hard Limit           Units     \n\
        Max cpu time              unlimited            unlimited            seconds   \n\
        Max open files            1024                 524288               files     \n\
        Max locked memory         8388608              8388608              bytes     \n";

    #[test]
    fn the_soft_fd_limit_and_resident_pages_are_read_from_proc_text() {
        assert_eq!(
            parse_max_fds(LIMITS),
            Some(1024),
            "the soft limit, not the hard"
        );
        assert_eq!(
            parse_max_fds(&LIMITS.replace("1024 ", "unlimited")),
            None,
            "no number for unlimited"
        );
        assert_eq!(parse_max_fds("garbage"), None);
        assert_eq!(
            parse_resident_pages("5843 1234 567 1 0 890 0\n"),
            Some(1234)
        );
        assert_eq!(parse_resident_pages("5843"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_all_three_with_plausible_values() {
        let mut page = String::new();
        render(&mut page);
        let value = |name: &str| -> u64 {
            page.lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .unwrap_or_else(|| panic!("no {name} in {page}"))
                .parse()
                .expect("a number")
        };
        let open = value(PROCESS_OPEN_FDS);
        assert!(open >= 3, "stdin, stdout, stderr at least: {open}");
        assert!(open <= value(PROCESS_MAX_FDS), "{page}");
        assert!(value(PROCESS_RESIDENT_MEMORY_BYTES) > 1 << 20, "{page}");
    }
}
