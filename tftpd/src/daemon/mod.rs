//! Process-level concerns: dropping privileges after the sockets are bound, and signals.

pub mod privs;
pub mod signals;
