//! Process-level concerns: dropping privileges after the sockets are bound, signals, and
//! systemd (notifications, socket activation).

pub mod privs;
pub mod signals;
pub mod systemd;
