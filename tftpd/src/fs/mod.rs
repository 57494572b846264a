//! The filesystem side: the root jail every path is resolved beneath ([`resolve`]) and
//! atomic uploads that leave no debris ([`upload`]). Nothing here knows about TFTP packets; the server maps these
//! errors to wire errors with their `wire_error` methods.

pub mod remap;
pub mod resolve;
pub mod unique;
pub mod upload;

#[cfg(test)]
mod testdir;

/// A temporary directory for other modules' tests.
#[cfg(test)]
pub(crate) fn testdir_for_config() -> testdir::TestDir {
    testdir::TestDir::new()
}

pub use resolve::{FoundFile, ReadFile, RequestPath, ResolveError, Resolver, Root};
pub use upload::{InFlight, PROCESS_IN_FLIGHT, Upload, UploadError, UploadPolicy, WriteMode};
