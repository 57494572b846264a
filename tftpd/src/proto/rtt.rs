//! The retransmission timer of a confirmed transfer: fixed, or adapted to the measured round
//! trip in the manner of RFC 6298 (TCP's), so a lost block is sent again after a few round
//! trips rather than after a whole `protocol.timeout_ms`.
//!
//! Pure: the machines hand in round-trip samples and expiries; the timer answers with the
//! timeout to arm next. Samples come only from datagrams sent once (Karn's rule: the ACK of a
//! retransmitted block cannot say which copy it answers).

use std::time::Duration;

/// How a transfer's retransmission timeout is chosen once the peer has answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retransmit {
    /// Always the transfer's `timeout`: adaptation is off (`protocol.adaptive_timeout =
    /// false`), or the client negotiated `timeout` (RFC 2349 makes it the interval to use).
    Fixed,
    /// SRTT + 4·RTTVAR, never below `floor` (`protocol.min_timeout_ms`) nor above the
    /// transfer's `timeout`, doubled for each expiry while a datagram stays unanswered.
    Adaptive {
        /// The shortest timeout the estimate may give.
        floor: Duration,
    },
}

impl Retransmit {
    /// How many expiries in a row, at most, come before the backed-off timeout reaches
    /// `ceiling`: the quick retransmissions a silent peer gets on top of `max_retries`
    /// (which counts only expiries at the full timeout). 0 for the fixed timer.
    pub fn quick_expiries(self, ceiling: Duration) -> u32 {
        let Self::Adaptive { floor } = self else {
            return 0;
        };
        (0..MAX_BACKOFF)
            .find(|&k| floor.max(Duration::from_nanos(1)).saturating_mul(1 << k) >= ceiling)
            .unwrap_or(MAX_BACKOFF)
    }
}

/// The most doublings of the backoff that matter: 2^16 times any floor is past any ceiling.
const MAX_BACKOFF: u32 = 16;

/// The round-trip estimate of one transfer and the timeout it gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RttEstimator {
    /// Smoothed round trip; `None` until the first sample.
    srtt: Option<Duration>,
    /// Round-trip variation.
    rttvar: Duration,
    /// Expiries in a row since the last sample: each doubles the timeout.
    backoff: u32,
}

impl RttEstimator {
    pub(crate) const fn new() -> Self {
        Self {
            srtt: None,
            rttvar: Duration::ZERO,
            backoff: 0,
        }
    }

    /// Takes in one round trip measured on a datagram sent once (RFC 6298 §2.2, §2.3).
    pub(crate) fn sample(&mut self, rtt: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                // RTTVAR ← 3/4·RTTVAR + 1/4·|SRTT − R|, then SRTT ← 7/8·SRTT + 1/8·R.
                self.rttvar = (self.rttvar * 3 + srtt.abs_diff(rtt)) / 4;
                self.srtt = Some((srtt * 7 + rtt) / 8);
            }
        }
        // A fresh sample ends the backoff (RFC 6298 §5.7, with Karn's rule).
        self.backoff = 0;
    }

    /// An expiry: the next timeout is twice this one, up to the ceiling (RFC 6298 §5.5).
    pub(crate) fn back_off(&mut self) {
        self.backoff = (self.backoff + 1).min(MAX_BACKOFF);
    }

    /// The timeout to arm now, for a transfer whose fixed timeout (and ceiling) is `ceiling`.
    /// Before the first sample it is the ceiling, as RFC 6298 starts from one second.
    pub(crate) fn timeout(&self, policy: Retransmit, ceiling: Duration) -> Duration {
        let Retransmit::Adaptive { floor } = policy else {
            return ceiling;
        };
        let Some(srtt) = self.srtt else {
            return ceiling;
        };
        let base = (srtt + self.rttvar * 4).max(floor);
        base.saturating_mul(1 << self.backoff).min(ceiling)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: Duration = Duration::from_millis(1);
    const CEILING: Duration = Duration::from_secs(1);
    const ADAPTIVE: Retransmit = Retransmit::Adaptive { floor: MS };

    #[test]
    fn fixed_is_always_the_ceiling() {
        let mut r = RttEstimator::new();
        r.sample(3 * MS);
        assert_eq!(r.timeout(Retransmit::Fixed, CEILING), CEILING);
        r.back_off();
        assert_eq!(r.timeout(Retransmit::Fixed, CEILING), CEILING);
    }

    #[test]
    fn no_sample_yet_means_the_ceiling() {
        assert_eq!(RttEstimator::new().timeout(ADAPTIVE, CEILING), CEILING);
    }

    #[test]
    fn first_sample_gives_three_round_trips() {
        let mut r = RttEstimator::new();
        r.sample(20 * MS);
        // SRTT = 20, RTTVAR = 10: 20 + 4·10.
        assert_eq!(r.timeout(ADAPTIVE, CEILING), 60 * MS);
    }

    #[test]
    fn steady_samples_converge_on_the_round_trip() {
        let mut r = RttEstimator::new();
        for _ in 0..200 {
            r.sample(20 * MS);
        }
        let t = r.timeout(ADAPTIVE, CEILING);
        assert!(t >= 20 * MS && t < 21 * MS, "{t:?}");
    }

    #[test]
    fn the_floor_holds_on_a_fast_link() {
        let mut r = RttEstimator::new();
        for _ in 0..50 {
            r.sample(Duration::from_micros(40));
        }
        let floor = 10 * MS;
        assert_eq!(r.timeout(Retransmit::Adaptive { floor }, CEILING), floor);
    }

    #[test]
    fn jitter_widens_the_timeout() {
        let mut steady = RttEstimator::new();
        let mut jittery = RttEstimator::new();
        for i in 0..100 {
            steady.sample(30 * MS);
            jittery.sample(if i % 2 == 0 { 15 * MS } else { 45 * MS });
        }
        let (s, j) = (
            steady.timeout(ADAPTIVE, CEILING),
            jittery.timeout(ADAPTIVE, CEILING),
        );
        assert!(j > s + 40 * MS, "steady {s:?}, jittery {j:?}");
        // Above the slowest answer, so a jittery client sees no spurious DATA.
        assert!(j > 45 * MS);
    }

    #[test]
    fn backoff_doubles_up_to_the_ceiling_and_a_sample_ends_it() {
        let mut r = RttEstimator::new();
        r.sample(20 * MS);
        let mut seen = vec![r.timeout(ADAPTIVE, CEILING)];
        for _ in 0..6 {
            r.back_off();
            seen.push(r.timeout(ADAPTIVE, CEILING));
        }
        let want: Vec<Duration> = [60, 120, 240, 480, 960, 1000, 1000]
            .into_iter()
            .map(|m| m * MS)
            .collect();
        assert_eq!(seen, want);
        r.sample(20 * MS);
        assert!(r.timeout(ADAPTIVE, CEILING) < 100 * MS);
    }

    #[test]
    fn quick_expiries_count_the_doublings_from_the_floor() {
        assert_eq!(Retransmit::Fixed.quick_expiries(CEILING), 0);
        // 10 ms doubled: 20, 40, 80, 160, 320, 640, 1280 ≥ 1 s.
        let ten = Retransmit::Adaptive { floor: 10 * MS };
        assert_eq!(ten.quick_expiries(CEILING), 7);
        assert_eq!(ten.quick_expiries(10 * MS), 0);
        assert_eq!(ADAPTIVE.quick_expiries(CEILING), 10);
    }

    proptest! {
        /// However fast the estimate, that many expiries bring the timer to the ceiling, so
        /// a silent peer gets no more quick retransmissions than `quick_expiries` says.
        #[test]
        fn quick_expiries_reach_the_ceiling(
            samples in proptest::collection::vec(0u64..5_000_000, 1..20),
            floor_us in 1u64..100_000,
            ceiling_ms in 1u64..255_000,
        ) {
            let floor = Duration::from_micros(floor_us);
            let ceiling = Duration::from_millis(ceiling_ms).max(floor);
            let policy = Retransmit::Adaptive { floor };
            let mut r = RttEstimator::new();
            for s in samples {
                r.sample(Duration::from_micros(s));
            }
            for _ in 0..policy.quick_expiries(ceiling) {
                r.back_off();
            }
            prop_assert_eq!(r.timeout(policy, ceiling), ceiling);
        }

        #[test]
        fn timeout_stays_between_floor_and_ceiling(
            samples in proptest::collection::vec(0u64..5_000_000, 1..50),
            backoffs in 0u32..40,
            floor_us in 1u64..100_000,
            ceiling_ms in 10u64..255_000,
        ) {
            let floor = Duration::from_micros(floor_us);
            let ceiling = Duration::from_millis(ceiling_ms).max(floor);
            let mut r = RttEstimator::new();
            for s in samples {
                r.sample(Duration::from_micros(s));
            }
            for _ in 0..backoffs {
                r.back_off();
            }
            let t = r.timeout(Retransmit::Adaptive { floor }, ceiling);
            prop_assert!(t >= floor.min(ceiling) && t <= ceiling, "{t:?}");
        }
    }
}
