//! XDP exists only on Linux. Here there is no XDP value, so nothing is ever attached; the
//! configuration is accepted so one file serves a mixed fleet, and start-up says XDP is off.

use crate::config::Config;

use super::counters::Totals;

/// Why XDP failed: it is not there.
#[derive(Debug, thiserror::Error)]
#[error("XDP exists only on Linux")]
pub struct XdpError;

/// No value exists on this platform.
#[derive(Debug)]
pub enum XdpFilter {}

impl XdpFilter {
    /// Always fails: there is no XDP here.
    pub fn load(_pin_dir: &std::path::Path, _listen_ports: Vec<u16>) -> Result<Self, XdpError> {
        Err(XdpError)
    }
    /// Never called: no value exists.
    pub fn reconfigure(&self, _config: &Config) -> Vec<XdpError> {
        match *self {}
    }
    /// Never called: no value exists.
    pub fn totals(&self) -> Result<Totals, XdpError> {
        match *self {}
    }
    /// Never called: no value exists.
    pub fn detach_all(&self) {
        match *self {}
    }
    /// Never called: no value exists.
    pub fn unpin(&self) {
        match *self {}
    }
    /// Never called: no value exists.
    pub fn chown_pins(&self, _uid: u32, _gid: u32) -> std::io::Result<()> {
        match *self {}
    }
}
