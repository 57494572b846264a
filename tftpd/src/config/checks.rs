//! Settings that parse and validate but do nothing as written: a key whose effect depends on
//! another key that is off, an upload glob no request path can match, a prefix list an
//! earlier one already covers. Refusing them would turn an upgrade or a half-finished edit
//! into a daemon that does not start, so they are warnings: `--check-config` prints them and
//! the daemon logs them at start, each naming the key, its value and why it has no effect.
//! Values out of range are errors, and live in `validate` beside each section.

use super::{Config, EbpfConfig, MetricsConfig, MulticastConfig, SourcePrefix, WriteMode};

impl Config {
    /// Everything in this configuration that is accepted but has no effect as written, one
    /// sentence each: the keys older releases read ([`super::PerformanceConfig::old_keys`])
    /// and the settings below. Empty for a configuration where every key does something.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = self.performance.old_keys();
        xdp(&self.ebpf, self.performance.profile, &mut out);
        uploads(self, &mut out);
        ports(self, &mut out);
        sections(self, &mut out);
        remap(self, &mut out);
        client_roots(self, &mut out);
        out
    }
}

/// The XDP keys act only where the XDP program is attached, and the rate keys only with a rate.
fn xdp(e: &EbpfConfig, profile: super::Profile, out: &mut Vec<String>) {
    let d = EbpfConfig::default();
    if e.xdp_interfaces.is_empty() {
        if e.xdp_rate_limit > 0 {
            // The secure profile sets a rate; its user may not know it needs XDP.
            let from = if profile == super::Profile::Secure {
                " (performance.profile = \"secure\" sets it)"
            } else {
                ""
            };
            out.push(format!(
                "ebpf.xdp_rate_limit = {}{from} does nothing: the rate limit runs in the XDP \
                 program, and ebpf.xdp_interfaces is empty, so it is attached nowhere (name \
                 the interfaces clients reach the server by)",
                e.xdp_rate_limit
            ));
        }
        if !e.xdp_deny.is_empty() {
            out.push(format!(
                "ebpf.xdp_deny = {} is not dropped in the kernel: ebpf.xdp_interfaces is \
                 empty, so no XDP program is attached; the listener still refuses these \
                 sources after their datagrams reach the daemon (set ebpf.xdp_interfaces, or \
                 move the prefixes to [access] deny, which says what happens)",
                list(&e.xdp_deny)
            ));
        }
        if e.xdp_mode != d.xdp_mode {
            out.push(format!(
                "ebpf.xdp_mode = \"{}\" does nothing: ebpf.xdp_interfaces is empty",
                e.xdp_mode.label()
            ));
        }
    }
    if e.xdp_rate_limit == 0 {
        for (key, set) in [
            ("ebpf.xdp_rate_burst", e.xdp_rate_burst != d.xdp_rate_burst),
            (
                "ebpf.xdp_rate_prefix_v4",
                e.xdp_rate_prefix_v4 != d.xdp_rate_prefix_v4,
            ),
            (
                "ebpf.xdp_rate_prefix_v6",
                e.xdp_rate_prefix_v6 != d.xdp_rate_prefix_v6,
            ),
        ] {
            if set {
                out.push(format!(
                    "{key} does nothing: ebpf.xdp_rate_limit is 0 (no rate limit)"
                ));
            }
        }
    }
    if e.mode == super::EbpfMode::Off && e.pin_dir != d.pin_dir {
        out.push(format!(
            "ebpf.pin_dir = {:?} does nothing: ebpf.mode = \"off\" loads no program and pins \
             no map",
            e.pin_dir.display().to_string()
        ));
    }
}

/// `[uploads]` with uploads off, an allow list that refuses everything, and globs that no
/// request path can match. Request paths are matched normalised (`fs::RequestPath`): no
/// leading or doubled `/`, no `.` or `..` component, no trailing `/`.
fn uploads(c: &Config, out: &mut Vec<String>) {
    let u = &c.uploads;
    if c.write == WriteMode::Off {
        if *u != super::UploadsConfig::default() {
            out.push(
                "[uploads] does nothing: write = \"off\" refuses every upload (set write = \
                 \"create\" or \"overwrite\" to use it)"
                    .to_string(),
            );
        }
        return;
    }
    if u.allow.is_empty() {
        out.push(format!(
            "uploads.allow = [] refuses every upload, though write = \"{}\" (list the globs \
             uploads may match, e.g. \"backups/*\")",
            c.write.as_str()
        ));
    }
    for pattern in &u.allow {
        if let Some(why) = never_matches(pattern) {
            out.push(format!("uploads.allow {pattern:?} can never match: {why}"));
        } else if let Some(dir) = missing_directory(c, pattern) {
            out.push(format!(
                "uploads.allow {pattern:?}: every upload it allows fails, because {dir} does \
                 not exist under the root and tftpd creates no directories (create it, owned \
                 by the service user)"
            ));
        }
    }
}

/// Why no normalised request path can match `pattern`, if none can.
fn never_matches(pattern: &str) -> Option<String> {
    if pattern.starts_with('/') {
        let fixed = pattern.trim_start_matches('/');
        return Some(format!(
            "upload paths are matched without their leading / (a client's \"/{fixed}\" is \
             matched as \"{fixed}\"): write {fixed:?}"
        ));
    }
    if pattern.ends_with('/') {
        return Some(format!(
            "an upload names a file, never a directory ending in /: write \"{pattern}*\" for \
             the files in it"
        ));
    }
    if pattern.contains("//") {
        return Some("upload paths never hold an empty component (// is read as /)".to_string());
    }
    if pattern.split('/').any(|part| part == "." || part == "..") {
        return Some("a request with a . or .. component is refused before it is matched".into());
    }
    None
}

/// The literal directory `pattern` uploads into (the components before the file name, when
/// none holds a glob character), when it exists under no root a client can be given.
/// With `unique_root` each client writes under its own directory, so nothing is said.
fn missing_directory(c: &Config, pattern: &str) -> Option<String> {
    if c.unique_root != super::UniqueRoot::Off {
        return None;
    }
    let (dir, _file) = pattern.rsplit_once('/')?;
    if dir.contains(['*', '?', '[', '{', '\\']) {
        return None;
    }
    // A root that is not there yet says nothing (--check-config reports it when it opens
    // the root); one root holding the directory is enough.
    let exists_somewhere = std::iter::once(&c.root)
        .chain(c.client_roots.iter().map(|r| &r.root))
        .any(|root| !root.is_dir() || root.join(dir).is_dir());
    (!exists_somewhere).then(|| format!("{dir}/"))
}

/// `port_range` with `single_port`, and a range that caps concurrency below the limit.
fn ports(c: &Config, out: &mut Vec<String>) {
    let Some(range) = c.port_range else { return };
    if c.single_port {
        out.push(format!(
            "port_range = \"{range}\" does nothing: single_port = true answers every transfer \
             from the listening port"
        ));
        return;
    }
    let ports = usize::from(range.hi - range.lo) + 1;
    if ports < c.limits.max_transfers {
        out.push(format!(
            "port_range = \"{range}\" holds {ports} ports, fewer than limits.max_transfers = \
             {}: at most {ports} transfers run at once, and the rest get \"server busy\" \
             (widen the range or lower max_transfers to match)",
            c.limits.max_transfers
        ));
    }
}

/// Sections whose keys act only when a switch in them (or elsewhere) is on.
fn sections(c: &Config, out: &mut Vec<String>) {
    if !c.multicast.enabled && c.multicast != MulticastConfig::default() {
        out.push(
            "[multicast] does nothing: multicast.enabled = false (the multicast option is \
             ignored and every download is unicast)"
                .to_string(),
        );
    }
    let m = &c.metrics;
    if m.listen.is_none()
        && (m.max_connections, m.timeout_ms)
            != (
                MetricsConfig::default().max_connections,
                MetricsConfig::default().timeout_ms,
            )
    {
        out.push(
            "metrics.max_connections and metrics.timeout_ms do nothing: metrics.listen is not \
             set, so there is no metrics endpoint"
                .to_string(),
        );
    }
    let p = &c.protocol;
    if !c.single_port
        && p.single_port_max_windowsize
            != super::ProtocolConfig::default().single_port_max_windowsize
    {
        out.push(format!(
            "protocol.single_port_max_windowsize = {} does nothing: single_port = false \
             (protocol.max_windowsize caps windows)",
            p.single_port_max_windowsize
        ));
    }
    if p.min_timeout_ms != super::ProtocolConfig::default().min_timeout_ms {
        let why = if !p.adaptive_timeout {
            Some("protocol.adaptive_timeout = false")
        } else if c.single_port {
            Some(
                "single_port = true keeps the fixed protocol.timeout_ms (a blind ACK confirms a transfer there)",
            )
        } else {
            None
        };
        if let Some(why) = why {
            out.push(format!(
                "protocol.min_timeout_ms = {} does nothing: {why}",
                p.min_timeout_ms
            ));
        }
    }
    if p.default_windowsize > p.window_cap(c.single_port) {
        out.push(format!(
            "protocol.default_windowsize = {} is capped at {}: windows never exceed {} \
             (lower it, or raise the cap)",
            p.default_windowsize,
            p.window_cap(c.single_port),
            if c.single_port {
                "protocol.max_windowsize or, with single_port, \
                 protocol.single_port_max_windowsize"
            } else {
                "protocol.max_windowsize"
            }
        ));
    }
    let f = &c.performance.file_io;
    let d = super::FileIoConfig::default();
    if f.cache_size == 0 && f.cache_max_file != d.cache_max_file {
        out.push(
            "performance.file_io.cache_max_file does nothing: performance.file_io.cache_size \
             = 0 (no cache)"
                .to_string(),
        );
    }
}

/// `[[remap]]` rules for uploads while uploads are off, and a deny rule's replacement.
fn remap(c: &Config, out: &mut Vec<String>) {
    for (i, rule) in c.remap.iter().enumerate() {
        let writes_only =
            !rule.ops.is_empty() && rule.ops.iter().all(|o| *o == super::RemapOp::Write);
        if writes_only && c.write == WriteMode::Off {
            out.push(format!(
                "remap[{i}] ({:?}) does nothing: it applies to uploads only (ops = \
                 [\"write\"]) and write = \"off\"",
                rule.pattern
            ));
        }
        if rule.action == super::RemapAction::Deny && rule.replace.is_some() {
            out.push(format!(
                "remap[{i}].replace does nothing: action = \"deny\" refuses the request \
                 without rewriting it"
            ));
        }
    }
}

/// A `[[client_roots]]` entry whose every prefix an earlier entry covers is never chosen:
/// the first entry that holds the client wins.
fn client_roots(c: &Config, out: &mut Vec<String>) {
    for (i, entry) in c.client_roots.iter().enumerate() {
        let earlier = &c.client_roots[..i];
        let shadowed = !entry.clients.is_empty()
            && entry.clients.iter().all(|p| {
                earlier
                    .iter()
                    .any(|e| e.clients.iter().any(|q| q.covers(*p)))
            });
        if shadowed {
            out.push(format!(
                "client_roots[{i}] ({}) is never used: earlier entries hold all of its \
                 clients, and the first entry that holds a client wins (move it up)",
                list(&entry.clients)
            ));
        }
    }
}

fn list(prefixes: &[SourcePrefix]) -> String {
    let shown: Vec<String> = prefixes.iter().map(|p| format!("\"{p}\"")).collect();
    format!("[{}]", shown.join(", "))
}

#[cfg(test)]
mod tests;
