//! Process-level concerns: dropping privileges after the sockets are bound, signals, CPU
//! affinity, and systemd (notifications, socket activation).

pub mod affinity;
pub mod privs;
pub mod signals;
pub mod systemd;
