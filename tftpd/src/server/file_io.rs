//! Chooses, per download, the `[performance.file_io]` fast paths that apply: the hot-file
//! cache, `posix_fadvise` hints and `sendfile`. The transfer's config snapshot decides, so a
//! reload (SIGHUP) turning one off takes effect with the next transfer. A path that does not
//! apply to this transfer says why at debug level, inside the transfer's span; a path the
//! kernel lacks is reported once at start ([`log_start`]).

use tracing::{debug, info, warn};

use crate::config::{Config, FileIoConfig};
use crate::io::file::BlockSource;
use crate::server::Shared;

use super::request::error_chain;

/// Applies the cache and the hints to a download's source.
pub(super) fn prepare_source(source: &mut BlockSource, cfg: &FileIoConfig, shared: &Shared) {
    let cache = &shared.file_cache;
    // Always: a reload that shrank or disabled the cache frees the memory here.
    cache.configure(cfg.cache_size, cfg.cache_max_file);
    if cfg.cache_size > 0 {
        match source.use_cache(cache) {
            Ok(true) => {
                debug!(file_io = "cache", "served from the hot-file cache");
                return;
            }
            Ok(false) => {}
            Err(e) => debug!(error = %error_chain(&e), "hot-file cache lookup failed; reading the file"),
        }
    }
    #[cfg(target_os = "linux")]
    if cfg.fadvise && crate::fastpath::support().fadvise {
        match source.advise_over(cfg.fadvise_threshold) {
            Ok(true) => debug!(file_io = "fadvise", "posix_fadvise hints on"),
            Ok(false) => {}
            Err(e) => debug!(error = %e, "posix_fadvise refused; reading without hints"),
        }
    }
}

/// Logs once at start which file fast paths are on, and why one is off.
pub fn log_start(config: &Config) {
    let f = &config.performance.file_io;
    if f.cache_size > 0 {
        info!(
            fastpath = "cache",
            cache_size = f.cache_size,
            cache_max_file = f.cache_max_file,
            "hot-file cache on"
        );
    }
    match (f.fadvise, crate::fastpath::support().fadvise) {
        (true, true) => info!(
            fastpath = "fadvise",
            threshold = f.fadvise_threshold,
            "posix_fadvise hints on for large files"
        ),
        (true, false) => warn!(
            fastpath = "fadvise",
            "performance.file_io.fadvise is on but this build has no posix_fadvise path (Linux only): reading without hints"
        ),
        (false, _) => {}
    }
}
