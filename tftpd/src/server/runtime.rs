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
        let upload_policy = UploadPolicy::new(
            config.write,
            &config.uploads.allow,
            config.uploads.max_size,
            config.uploads.file_mode,
        )
        .map_err(RuntimeError::Uploads)?;
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
