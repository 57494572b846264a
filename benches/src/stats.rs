//! Percentiles over a run's samples (nearest-rank: every figure reported is a sample that
//! was actually observed, never an interpolation between two).

use std::time::Duration;

/// p50, p99 and the maximum of a set of durations, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Spread {
    /// The median.
    pub p50_ms: f64,
    /// The 99th percentile.
    pub p99_ms: f64,
    /// The largest sample.
    pub max_ms: f64,
}

impl Spread {
    /// The spread of `samples` (sorted here), or `None` when there are none.
    pub fn of(samples: &mut [Duration]) -> Option<Self> {
        samples.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        Some(Self {
            p50_ms: ms(percentile(samples, 50.0)?),
            p99_ms: ms(percentile(samples, 99.0)?),
            max_ms: ms(*samples.last()?),
        })
    }
}

/// The nearest-rank `p`-th percentile of `sorted` (ascending): the smallest sample with at
/// least p % of the samples at or below it. `None` when empty.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_of_one_to_a_hundred() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(1), "p0 is the smallest sample");
    }

    #[test]
    fn small_sets_report_observed_samples() {
        assert_eq!(percentile::<u32>(&[], 50.0), None);
        assert_eq!(percentile(&[7], 99.0), Some(7));
        // Two samples: the median is the lower one, p99 the upper one.
        assert_eq!(percentile(&[1, 9], 50.0), Some(1));
        assert_eq!(percentile(&[1, 9], 99.0), Some(9));
    }

    #[test]
    fn spread_sorts_and_converts_to_milliseconds() {
        let mut d: Vec<Duration> = [30, 10, 20].map(Duration::from_millis).to_vec();
        let s = Spread::of(&mut d).expect("three samples");
        assert_eq!((s.p50_ms, s.p99_ms, s.max_ms), (20.0, 30.0, 30.0));
        assert_eq!(Spread::of(&mut []), None);
    }
}
