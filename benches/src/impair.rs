//! Client-side impairment (this kernel has no netem): which datagrams are lost, duplicated or
//! held back, decided by a seeded generator so a run can be repeated.
//!
//! Pure: [`Impairer`] only decides a datagram's [`Fate`]; `link` applies it to the socket.
//! Each direction of each transfer has its own generator, seeded from the run's seed, the
//! client, the repetition and the direction, so the n-th datagram sent always meets the same
//! fate whatever the timing of the datagrams received.

use std::time::Duration;

use crate::spec::SpecError;

/// How the client mistreats its own datagrams, both those it sends and those it receives.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Impairment {
    /// Probability that a datagram is dropped.
    pub loss: f64,
    /// Probability that a datagram is delivered twice.
    pub dup: f64,
    /// Probability that a datagram is held back until the next one in the same direction has
    /// passed it (or [`HOLD_LIMIT`] has elapsed).
    pub reorder: f64,
    /// Added to every datagram, each way.
    pub delay: Duration,
    /// Seed of every decision.
    pub seed: u64,
}

/// The longest a held-back datagram waits for another to overtake it; in lock-step nothing
/// else may come, so without a limit a hold would be a loss.
pub const HOLD_LIMIT: Duration = Duration::from_millis(5);

impl Impairment {
    /// True when any datagram may be treated other than plainly.
    pub fn is_active(&self) -> bool {
        self.loss > 0.0 || self.dup > 0.0 || self.reorder > 0.0 || !self.delay.is_zero()
    }

    /// Checks that each probability lies in 0..=1 (NaN included as invalid).
    pub fn validate(&self) -> Result<(), SpecError> {
        for (name, p) in [
            ("loss", self.loss),
            ("dup", self.dup),
            ("reorder", self.reorder),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(SpecError::Invalid {
                    name,
                    value: p.to_string(),
                    allowed: "a probability in 0..=1",
                });
            }
        }
        Ok(())
    }
}

/// Which way a datagram goes, as seen from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// Client to server.
    Send,
    /// Server to client.
    Receive,
}

/// What happens to one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fate {
    /// Never delivered.
    pub drop: bool,
    /// Delivered twice (ignored when dropped).
    pub dup: bool,
    /// Held back so a later datagram overtakes it (ignored when dropped).
    pub hold: bool,
}

/// The seeded decision maker for one direction of one transfer.
#[derive(Debug, Clone)]
pub struct Impairer {
    rng: fastrand::Rng,
    loss: f64,
    dup: f64,
    reorder: f64,
}

impl Impairer {
    /// The generator for `way` of the `repeat`-th transfer of client `client`.
    pub fn new(imp: &Impairment, client: u32, repeat: u64, way: Way) -> Self {
        let stream = (u64::from(client) << 33) ^ (repeat << 1) ^ (way as u64);
        Self {
            rng: fastrand::Rng::with_seed(splitmix(imp.seed ^ splitmix(stream))),
            loss: imp.loss,
            dup: imp.dup,
            reorder: imp.reorder,
        }
    }

    /// The next datagram's fate. Always draws three numbers, so one decision never shifts
    /// the ones after it.
    pub fn decide(&mut self) -> Fate {
        let (a, b, c) = (self.rng.f64(), self.rng.f64(), self.rng.f64());
        let drop = a < self.loss;
        Fate {
            drop,
            dup: !drop && b < self.dup,
            hold: !drop && c < self.reorder,
        }
    }
}

/// SplitMix64's finaliser: spreads neighbouring seeds (clients 0, 1, 2…) apart.
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn imp(seed: u64) -> Impairment {
        Impairment {
            loss: 0.05,
            dup: 0.05,
            reorder: 0.05,
            delay: Duration::ZERO,
            seed,
        }
    }

    fn fates(i: &Impairment, client: u32, way: Way) -> Vec<Fate> {
        let mut d = Impairer::new(i, client, 0, way);
        (0..10_000).map(|_| d.decide()).collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_fates() {
        assert_eq!(
            fates(&imp(7), 3, Way::Send),
            fates(&imp(7), 3, Way::Send),
            "a run must be reproducible from its seed"
        );
    }

    #[test]
    fn seeds_clients_and_directions_give_different_fates() {
        let base = fates(&imp(7), 3, Way::Send);
        assert_ne!(base, fates(&imp(8), 3, Way::Send), "another seed");
        assert_ne!(base, fates(&imp(7), 4, Way::Send), "another client");
        assert_ne!(base, fates(&imp(7), 3, Way::Receive), "the other direction");
    }

    #[test]
    fn rates_follow_the_probabilities() {
        let f = fates(&imp(1), 0, Way::Send);
        let count = |pick: fn(&Fate) -> bool| f.iter().filter(|x| pick(x)).count();
        // 10 000 draws at p = 0.05: 500 expected, and this seed is fixed, so the bounds
        // check the mapping from probability to fate, not luck.
        for (name, n) in [
            ("drop", count(|x| x.drop)),
            ("dup", count(|x| x.dup)),
            ("hold", count(|x| x.hold)),
        ] {
            assert!((400..=600).contains(&n), "{name}: {n} of 10000 at p=0.05");
        }
        assert!(
            f.iter().all(|x| !(x.drop && (x.dup || x.hold))),
            "a dropped datagram is neither duplicated nor held"
        );
    }

    #[test]
    fn no_impairment_never_touches_a_datagram() {
        let none = Impairment::default();
        assert!(!none.is_active());
        let mut d = Impairer::new(&none, 0, 0, Way::Receive);
        assert!((0..1000).all(|_| d.decide() == Fate::default()));
    }

    #[test]
    fn probabilities_outside_zero_to_one_are_refused() {
        for bad in [-0.1, 1.1, f64::NAN] {
            let i = Impairment {
                dup: bad,
                ..Impairment::default()
            };
            assert!(i.validate().is_err(), "dup = {bad} must be refused");
        }
    }
}
