//! How the long commands (`attack`, and `bench` too) write the time a run has left. Lives
//! with the attack suite because its files are also compiled into `tftpd/tests/attack.rs`.

/// `secs` rounded to a second: "42 s", or "3 min 05 s" from a minute on.
pub(crate) fn minutes(secs: f64) -> String {
    let s = secs.round() as u64;
    if s >= 60 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}
