//! The runtime form of a configuration: the config plus what is derived from it once (the
//! opened root, the upload policy, the option limits). Built on start and on every reload,
//! then shared read-only; running transfers keep the snapshot they started with.

use std::net::IpAddr;
use std::time::Duration;

use crate::config::SourcePrefix;
use crate::fs::remap::{RemapError, Remapper};

use crate::config::Config;
use crate::fs::{ResolveError, Root, UploadError, UploadPolicy};
use crate::proto::options::OptionLimits;

use super::admission::Limits as AdmissionLimits;
use super::admission::budget::BudgetLimits;

/// A validated configuration, ready to serve.
#[derive(Debug)]
pub struct Runtime {
    /// The configuration it was built from.
    pub config: Config,
    /// The served root, opened.
    pub root: Root,
    /// Who may upload what.
    pub upload_policy: UploadPolicy,
    /// The server's side of option negotiation.
    pub option_limits: OptionLimits,
    /// What new requests are admitted under.
    pub admission_limits: AdmissionLimits,
    /// The `[[remap]]` rules, compiled.
    pub remapper: Remapper,
    /// The `[[client_roots]]`, opened, in order.
    client_roots: Vec<(Vec<SourcePrefix>, Root)>,
}

/// Why a configuration cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The root cannot be opened.
    #[error("root directory")]
    Root(#[source] ResolveError),
    /// An upload glob is invalid.
    #[error("uploads.allow")]
    Uploads(#[source] UploadError),
    /// A remap rule is invalid (the error names the rule).
    #[error(transparent)]
    Remap(#[from] RemapError),
    /// A client root cannot be opened.
    #[error("client_roots[{index}].root {}", path.display())]
    ClientRoot {
        /// The entry.
        index: usize,
        /// Its root.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: ResolveError,
    },
}

impl Runtime {
    /// Derives the policies, then opens the root: a mistake in the file is reported before
    /// anything about this machine's directories.
    pub fn new(config: Config) -> Result<Self, RuntimeError> {
        let mut upload_policy = UploadPolicy::new(
            config.write,
            &config.uploads.allow,
            config.uploads.max_size,
            config.uploads.file_mode,
        )
        .map_err(RuntimeError::Uploads)?;
        upload_policy.max_in_flight = config.uploads.max_in_flight;
        upload_policy.min_free_bytes = config.uploads.min_free_bytes;
        let option_limits = OptionLimits {
            max_blksize: config.protocol.max_blksize.get(),
            max_windowsize: config.protocol.window_cap(config.single_port),
            default_timeout: Duration::from_millis(config.protocol.timeout_ms),
            max_timeout: Duration::from_secs(config.protocol.max_client_timeout_secs),
            max_upload_size: config.uploads.max_size,
            refuse: config.protocol.refuse_options.clone(),
        };
        let admission_limits = admission_limits(&config);
        let remapper = Remapper::new(&config.remap)?;
        let root = Root::open(&config.root).map_err(RuntimeError::Root)?;
        let client_roots = config
            .client_roots
            .iter()
            .enumerate()
            .map(|(index, c)| {
                Root::open(&c.root)
                    .map(|r| (c.clients.clone(), r))
                    .map_err(|source| RuntimeError::ClientRoot {
                        index,
                        path: c.root.clone(),
                        source,
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            config,
            root,
            upload_policy,
            option_limits,
            admission_limits,
            remapper,
            client_roots,
        })
    }

    /// Every root uploads may reach: `root` and each `[[client_roots]]` root (a client's
    /// `unique_root` directory lies inside one of them).
    pub fn roots(&self) -> impl Iterator<Item = &Root> {
        std::iter::once(&self.root).chain(self.client_roots.iter().map(|(_, r)| r))
    }

    /// What `--map-test NAME --client IP` prints: what `[[remap]]` makes of a read request
    /// for `name` from `client`, and whether the name checks would then serve it.
    pub fn map_test(&self, name: &str, client: IpAddr) -> String {
        use crate::fs::remap::Mapped;
        let shown = match self
            .remapper
            .map(name, crate::config::RemapOp::Read, client)
        {
            Mapped::Unchanged => name.to_string(),
            Mapped::Rewritten(to) => to,
            Mapped::Denied(rule) => {
                return format!("{name:?} from {client}: denied by remap[{rule}]");
            }
        };
        let verdict = match crate::fs::RequestPath::parse(shown.as_bytes()) {
            Ok(_) => "served from the root if it exists".to_string(),
            Err(e) => format!("refused by the name checks: {e}"),
        };
        format!("{name:?} from {client} -> {shown:?} ({verdict})")
    }

    /// The root a client is served from: its `[[client_roots]]` entry, else `root`.
    pub fn root_for(&self, client: IpAddr) -> &Root {
        self.client_roots
            .iter()
            .find(|(clients, _)| clients.iter().any(|p| p.contains(client)))
            .map_or(&self.root, |(_, r)| r)
    }
}

/// The admission limits `config` sets.
fn admission_limits(config: &Config) -> AdmissionLimits {
    let l = &config.limits;
    AdmissionLimits {
        max_total: l.max_transfers,
        max_per_client: l.max_transfers_per_client,
        max_half_open: l.max_half_open,
        // A quarter of the server's timeout: ample for a real client's answer on any LAN,
        // short against the lifetime of a forged request's transfer (two timeouts).
        min_age: Duration::from_millis(config.protocol.timeout_ms / 4),
        budget: BudgetLimits {
            rate: l.half_open_rate,
            burst: l.half_open_burst,
            prefix_v4: l.half_open_prefix_v4,
            prefix_v6: l.half_open_prefix_v6,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_caps_reach_the_policy_and_every_root_is_listed() {
        let t = crate::fs::testdir_for_config();
        std::fs::create_dir_all(t.path().join("main")).expect("root");
        std::fs::create_dir_all(t.path().join("lab")).expect("client root");
        let toml = format!(
            "root = {:?}\nwrite = \"create\"\n[uploads]\nmax_in_flight = 12345\nmin_free_bytes = 678\n\
             [[client_roots]]\nclients = [\"192.0.2.0/24\"]\nroot = {:?}\n",
            t.path().join("main"),
            t.path().join("lab"),
        );
        let config = Config::from_toml_str(&toml, None).expect("config");
        let rt = Runtime::new(config).expect("runtime");
        assert_eq!(
            rt.upload_policy.max_in_flight, 12345,
            "uploads.max_in_flight"
        );
        assert_eq!(
            rt.upload_policy.min_free_bytes, 678,
            "uploads.min_free_bytes"
        );
        let roots: Vec<_> = rt.roots().map(|r| r.path().to_owned()).collect();
        assert_eq!(
            roots,
            vec![t.path().join("main"), t.path().join("lab")],
            "the sweep sees the root and the client root"
        );
    }
}
