//! `[uploads]`: who may upload what, and how much room uploads may take (whether uploads
//! are allowed at all is the top-level `write` key).

use serde::Deserialize;

/// `[uploads]`: who may upload what.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadsConfig {
    /// Globs an upload's path must match (`*` does not cross `/`, `**` does).
    #[serde(default = "default_allow")]
    pub allow: Vec<String>,
    /// Largest upload in bytes.
    #[serde(default = "default_max_upload")]
    pub max_size: u64,
    /// Permission bits of uploaded files.
    #[serde(default = "default_file_mode")]
    pub file_mode: u32,
    /// The most bytes all running uploads may have written and not yet committed, together;
    /// past it a WRQ is refused (by its `tsize`) or a running upload stopped, with ERROR 3.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: u64,
    /// Bytes uploads must leave available on the filesystem they write to (checked when a
    /// WRQ is accepted and every MiB written); 0: no reserve.
    #[serde(default = "default_min_free_bytes")]
    pub min_free_bytes: u64,
}

fn default_allow() -> Vec<String> {
    vec!["*".to_string()]
}
fn default_max_upload() -> u64 {
    1 << 30
}
fn default_file_mode() -> u32 {
    0o644
}
/// 4 GiB: four uploads of the default `max_size` at once; fewer bytes than that in flight
/// never fill a disk that is worth serving from.
fn default_max_in_flight() -> u64 {
    4 << 30
}
/// 256 MiB: room for the logs and the other services of an edge box when uploads would
/// otherwise fill its disk.
fn default_min_free_bytes() -> u64 {
    256 << 20
}

impl Default for UploadsConfig {
    fn default() -> Self {
        Self {
            allow: default_allow(),
            max_size: default_max_upload(),
            file_mode: default_file_mode(),
            max_in_flight: default_max_in_flight(),
            min_free_bytes: default_min_free_bytes(),
        }
    }
}
