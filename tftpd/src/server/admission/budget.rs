//! The reflection budget: bytes the server may send to half-open peers, per source prefix.
//!
//! Any request may be forged, so what a half-open transfer sends (its OACK or DATA 1 and the
//! one retransmission) may land on a victim who never asked. One request earns little, but
//! many forged requests "from" one network add up; here they draw on one token bucket per
//! prefix (`/24` for IPv4, `/64` for IPv6 by default), refilled at a fixed rate. When a peer
//! answers, what was spent on it is given back: a prefix of real clients (1000 devices
//! behind one NAT) only ever has the bytes of its not-yet-answered first datagrams out, while
//! a victim of forged requests gets at most the bucket and then the refill rate.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// The budget's settings, from `[limits]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetLimits {
    /// Bytes per second a prefix's bucket refills; 0: no budget at all.
    pub rate: u64,
    /// The bucket's size in bytes: what a prefix may have out at once.
    pub burst: u64,
    /// Prefix length for IPv4 sources.
    pub prefix_v4: u8,
    /// Prefix length for IPv6 sources.
    pub prefix_v6: u8,
}

impl BudgetLimits {
    /// No budget: every send is allowed.
    pub const OFF: Self = Self {
        rate: 0,
        burst: 0,
        prefix_v4: 32,
        prefix_v6: 128,
    };

    /// The key of `ip`'s prefix (IPv4-mapped IPv6 counted as the IPv4 address).
    pub fn prefix_of(&self, ip: IpAddr) -> IpAddr {
        match ip.to_canonical() {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix_v4.min(32)))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix_v6.min(128)))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(a) & mask).into())
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: u64,
    at: Instant,
}

impl Bucket {
    /// The bucket as it stands at `now`, refilled since it was last touched.
    fn refilled(self, now: Instant, limits: &BudgetLimits) -> u64 {
        let elapsed = now.saturating_duration_since(self.at);
        let added = (elapsed.as_nanos() * u128::from(limits.rate) / 1_000_000_000) as u64;
        self.tokens.saturating_add(added).min(limits.burst)
    }
}

/// Every prefix's bucket. A prefix whose bucket is full is not stored (it is as if new), so
/// the map holds only prefixes that spent within the last `burst / rate` seconds.
#[derive(Debug, Default)]
pub struct Budget {
    buckets: HashMap<IpAddr, Bucket>,
    /// The map's size after the last sweep of full buckets; the next sweep waits until it
    /// has doubled, so sweeping costs a constant per insertion.
    swept_at: usize,
}

impl Budget {
    /// Takes `bytes` from `prefix`'s bucket; false (and nothing taken) when it holds fewer.
    pub fn spend(
        &mut self,
        prefix: IpAddr,
        bytes: u64,
        now: Instant,
        limits: &BudgetLimits,
    ) -> bool {
        if limits.rate == 0 {
            return true;
        }
        let full = Bucket {
            tokens: limits.burst,
            at: now,
        };
        let tokens = self
            .buckets
            .get(&prefix)
            .map_or(limits.burst, |b| b.refilled(now, limits));
        if tokens < bytes {
            return false;
        }
        self.buckets.insert(
            prefix,
            Bucket {
                tokens: tokens - bytes,
                ..full
            },
        );
        self.sweep(now, limits);
        true
    }

    /// Gives back what was spent on a peer that has now answered.
    pub fn refund(&mut self, prefix: IpAddr, bytes: u64, now: Instant, limits: &BudgetLimits) {
        let Some(b) = self.buckets.get(&prefix).copied() else {
            return;
        };
        let tokens = b.refilled(now, limits).saturating_add(bytes);
        if tokens >= limits.burst {
            self.buckets.remove(&prefix);
        } else {
            self.buckets.insert(prefix, Bucket { tokens, at: now });
        }
    }

    /// Prefixes with a partly spent bucket.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// True when no prefix has spent anything lately.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    fn sweep(&mut self, now: Instant, limits: &BudgetLimits) {
        if self.buckets.len() < (2 * self.swept_at).max(1024) {
            return;
        }
        self.buckets
            .retain(|_, b| b.refilled(now, limits) < limits.burst);
        self.swept_at = self.buckets.len();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const LIMITS: BudgetLimits = BudgetLimits {
        rate: 1000,
        burst: 3000,
        prefix_v4: 24,
        prefix_v6: 64,
    };

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn prefixes_group_sources_by_network() {
        assert_eq!(LIMITS.prefix_of(ip("192.0.2.77")), ip("192.0.2.0"));
        assert_eq!(
            LIMITS.prefix_of(ip("::ffff:192.0.2.77")),
            ip("192.0.2.0"),
            "an IPv4 client on a dual-stack socket is its IPv4 network"
        );
        assert_eq!(
            LIMITS.prefix_of(ip("2001:db8:1:2:aaaa::1")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(
            BudgetLimits::OFF.prefix_of(ip("192.0.2.77")),
            ip("192.0.2.77")
        );
    }

    #[test]
    fn a_prefix_gets_its_burst_then_the_refill_rate() {
        let mut b = Budget::default();
        let p = ip("192.0.2.0");
        let t0 = Instant::now();
        assert!(b.spend(p, 2000, t0, &LIMITS), "within the burst");
        assert!(b.spend(p, 1000, t0, &LIMITS), "the rest of the burst");
        assert!(!b.spend(p, 1, t0, &LIMITS), "the bucket is empty");
        assert!(
            b.spend(ip("198.51.100.0"), 3000, t0, &LIMITS),
            "another prefix has its own bucket"
        );
        let t1 = t0 + Duration::from_millis(500);
        assert!(!b.spend(p, 501, t1, &LIMITS), "500 bytes refilled in 0.5 s");
        assert!(b.spend(p, 500, t1, &LIMITS), "exactly what refilled");
    }

    #[test]
    fn an_answer_gives_back_what_was_spent_on_it() {
        let mut b = Budget::default();
        let p = ip("192.0.2.0");
        let t0 = Instant::now();
        assert!(b.spend(p, 3000, t0, &LIMITS));
        b.refund(p, 1000, t0, &LIMITS);
        assert!(
            b.spend(p, 1000, t0, &LIMITS),
            "refunded bytes can be spent again"
        );
        b.refund(p, 5000, t0, &LIMITS);
        assert_eq!(b.len(), 0, "a full bucket is not kept");
        assert!(b.spend(p, 3000, t0, &LIMITS), "never more than the burst");
        assert!(!b.spend(p, 1, t0, &LIMITS));
    }

    #[test]
    fn full_buckets_are_swept_so_the_map_stays_bounded() {
        let mut b = Budget::default();
        let t0 = Instant::now();
        for i in 0..5000u32 {
            assert!(b.spend(IpAddr::V4((i << 8).into()), 10, t0, &LIMITS));
        }
        assert_eq!(b.len(), 5000, "all spent just now");
        let later = t0 + Duration::from_secs(1);
        for i in 0..4000u32 {
            assert!(b.spend(IpAddr::V4(((100_000 + i) << 8).into()), 10, later, &LIMITS));
        }
        assert!(
            b.len() <= 4000,
            "the 5000 buckets refilled to full are dropped: {} left",
            b.len()
        );
    }

    #[test]
    fn a_zero_rate_turns_the_budget_off() {
        let mut b = Budget::default();
        let t0 = Instant::now();
        for _ in 0..100 {
            assert!(b.spend(ip("192.0.2.1"), 1 << 30, t0, &BudgetLimits::OFF));
        }
        assert_eq!(b.len(), 0);
    }
}
