//! Chooses, per download, the `[performance.file_io]` fast paths that apply: the hot-file
//! cache, `posix_fadvise` hints and read-ahead. The transfer's config snapshot decides, so a
//! reload (SIGHUP) turning one off takes effect with the next transfer. A path that does not
//! apply to this transfer says why at debug level, inside the transfer's span; a path the
//! platform lacks is reported once at start ([`log_start`]).

use tracing::{debug, info, warn};

use crate::config::{Config, FileIoConfig};
use crate::io::cache::Loader;
use crate::io::file::{BlockSource, CacheUse};
use crate::server::Shared;

use crate::logging::error_chain;

/// Applies the cache, the hints and read-ahead to a download's source.
pub(super) fn prepare_source(source: &mut BlockSource, cfg: &FileIoConfig, shared: &Shared) {
    let cache = &shared.file_cache;
    // Always: a reload that shrank or disabled the cache frees the memory here.
    cache.configure(cfg.cache_size, cfg.cache_max_file);
    if cfg.cache_size > 0 {
        match source.use_cache(cache) {
            Ok(CacheUse::Hit) => {
                debug!(file_io = "cache", "served from the hot-file cache");
                return;
            }
            Ok(CacheUse::Load(loader)) if loader.size() <= INLINE_LOAD_MAX => match loader.run() {
                Ok(Some(bytes)) => {
                    source.use_loaded(bytes);
                    debug!(file_io = "cache", "loaded into the hot-file cache");
                    return;
                }
                Ok(None) => debug!("file changed while it was loaded; not cached"),
                Err(e) => {
                    debug!(error = %error_chain(&e), "loading a file into the hot-file cache failed; reading the file");
                }
            },
            Ok(CacheUse::Load(loader)) => fill_in_background(loader),
            Ok(CacheUse::File) => {}
            Err(e) => {
                debug!(error = %error_chain(&e), "hot-file cache lookup failed; reading the file")
            }
        }
    }
    #[cfg(linux)]
    if cfg.fadvise && crate::fastpath::support().fadvise {
        match source.advise_over(cfg.fadvise_threshold) {
            Ok(true) => debug!(file_io = "fadvise", "posix_fadvise hints on"),
            Ok(false) => {}
            Err(e) => debug!(error = %e, "posix_fadvise refused; reading without hints"),
        }
    }
    if source.read_ahead(cfg.read_ahead) {
        debug!(
            file_io = "read_ahead",
            bytes = cfg.read_ahead,
            "reading ahead"
        );
    }
}

/// Files up to this size are loaded by the transfer that missed, before its first block:
/// reading 128 KiB from the page cache into the cache took about 7 µs here, starting and
/// joining a thread about 39 µs, and a provisioning storm of many small per-device files
/// would otherwise start a thread for each.
const INLINE_LOAD_MAX: u64 = 128 * 1024;

/// Loads a larger file into the hot-file cache on a thread of its own. The transfer that missed
/// reads its file meanwhile: loading up to `cache_max_file` (16 MiB by default) first would
/// hold its first DATA back for milliseconds (4-7 ms for 16 MiB here), where a block from
/// the page cache takes microseconds. Transfers that start after the load hit.
fn fill_in_background(loader: Loader) {
    let size = loader.size();
    // Its lines belong to the transfer that asked.
    let span = tracing::Span::current();
    let spawned = std::thread::Builder::new()
        .name("tftpd-cache-fill".into())
        .spawn(move || {
            let _in_transfer = span.enter();
            match loader.run() {
                Ok(Some(_)) => {
                    debug!(file_io = "cache", bytes = size, "file loaded into the hot-file cache");
                }
                Ok(None) => debug!(file_io = "cache", "file changed while it was loaded; not cached"),
                Err(e) => {
                    debug!(error = %error_chain(&e), "loading a file into the hot-file cache failed");
                }
            }
        });
    // The closure, and with it the loader's mark, is dropped when no thread could start:
    // a later transfer tries again.
    if let Err(e) = spawned {
        debug!(error = %e, "no thread to load a file into the hot-file cache; reading the file");
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
