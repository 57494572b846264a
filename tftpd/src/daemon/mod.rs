//! Process-level concerns: dropping privileges after the sockets are bound, signals, CPU
//! affinity, real-time scheduling and locked memory, and systemd (notifications, socket
//! activation).

pub mod affinity;
pub mod listeners;
pub mod privs;
#[cfg(linux)]
pub mod realtime;
pub mod signals;
pub mod start_log;
pub mod systemd;
