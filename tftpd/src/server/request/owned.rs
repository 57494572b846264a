//! The request as a transfer task keeps it: copied out of the listener's receive buffer, so
//! it outlives the datagram it came in.

use crate::metrics::Kind;
use crate::proto::Request;

/// A request copied out of the listener's receive buffer.
#[derive(Debug, Clone)]
pub struct OwnedRequest {
    /// RRQ or WRQ.
    pub kind: Kind,
    /// The file name as sent.
    pub filename: Vec<u8>,
    /// The mode as sent.
    pub mode: Vec<u8>,
    /// The options as sent.
    pub options: Vec<(Vec<u8>, Vec<u8>)>,
}

impl OwnedRequest {
    /// The option names as sent, for the core's questions about them.
    pub fn option_names(&self) -> impl Iterator<Item = &[u8]> {
        self.options.iter().map(|(name, _)| name.as_slice())
    }
}

impl OwnedRequest {
    /// Copies a decoded request.
    pub fn new(kind: Kind, req: &Request<'_>) -> Self {
        Self {
            kind,
            filename: req.filename.to_vec(),
            mode: req.mode.to_vec(),
            options: req
                .options
                .iter()
                .map(|(k, v)| (k.to_vec(), v.to_vec()))
                .collect(),
        }
    }

    /// The file name for logs (lossy, control characters escaped by `Debug` formatting).
    pub fn filename_lossy(&self) -> String {
        String::from_utf8_lossy(&self.filename).into_owned()
    }
}
