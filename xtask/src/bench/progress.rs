//! Where a bench run stands: which measurement of how many, and a guess at the time left,
//! so whoever started a run of many minutes knows whether to wait for it.
//!
//! Measurements differ in length (a 4 MiB lossy row takes longer than a 1000-client storm of
//! small files), and no fixed estimate holds on a shared machine, so the guess is the pace
//! so far: the time spent per measurement, times the measurements left. It is rough in the
//! first scenario and firms up as the run goes.

use std::time::Duration;

/// Counts the measurements of one run.
pub(crate) struct Progress {
    total: usize,
    done: usize,
}

impl Progress {
    pub(crate) fn new(total: usize) -> Self {
        Self { total, done: 0 }
    }

    /// The line for the next measurement, `what`, with `spent` the run's time so far; counts
    /// it as started.
    pub(crate) fn next(&mut self, what: &str, spent: Duration) -> String {
        let line = line(self.done, self.total, what, spent);
        self.done += 1;
        line
    }
}

fn line(done: usize, total: usize, what: &str, spent: Duration) -> String {
    let left = if done == 0 {
        "time left not known yet".to_string()
    } else {
        let per = spent.as_secs_f64() / done as f64;
        format!(
            "about {} left",
            crate::attack::time_left::minutes(per * (total - done) as f64)
        )
    };
    format!("xtask: bench {} of {total}: {what} ({left})", done + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_left_is_the_pace_so_far_times_what_is_left() {
        let mut p = Progress::new(4);
        assert_eq!(
            p.next("1 round 1/2: tftpd", Duration::ZERO),
            "xtask: bench 1 of 4: 1 round 1/2: tftpd (time left not known yet)"
        );
        // One measurement took 30 s; three are left.
        assert_eq!(
            p.next("1 round 1/2: dnsmasq", Duration::from_secs(30)),
            "xtask: bench 2 of 4: 1 round 1/2: dnsmasq (about 1 min 30 s left)"
        );
        assert_eq!(
            p.next("1 round 2/2: tftpd", Duration::from_secs(50)),
            "xtask: bench 3 of 4: 1 round 2/2: tftpd (about 50 s left)"
        );
    }
}
