//! Exponential backoff with jitter, as an iterator-like counter with a
//! seeded generator so tests are repeatable.

use std::time::Duration;

use crate::options::Retry;

/// Counts consecutive failed attempts and says how long to wait before the
/// next one, or that the policy has given up.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    retry: Retry,
    failures: u32,
    rng: SplitMix64,
}

impl Backoff {
    pub(crate) fn new(retry: Retry, seed: u64) -> Backoff {
        Backoff {
            retry,
            failures: 0,
            rng: SplitMix64(seed),
        }
    }

    /// The delay before the next attempt, or `None` when retries are exhausted.
    ///
    /// Never panics and never overflows, whatever the policy and however
    /// many failures came before: the count saturates, the exponent is
    /// capped, and any delay the arithmetic cannot represent (infinite,
    /// NaN, past `Duration`) becomes `max_delay`.
    pub(crate) fn next_delay(&mut self) -> Option<Duration> {
        if let Some(max) = self.retry.max_retries {
            if self.failures >= max {
                return None;
            }
        }
        Some(self.next_delay_unbounded())
    }

    /// The delay before the next attempt whatever `max_retries` says (the
    /// first connection has a budget of its own); the same arithmetic.
    pub(crate) fn next_delay_unbounded(&mut self) -> Duration {
        // multiplier >= 1, so past 2^16 steps the delay is long at max_delay
        // (or the multiplier is 1 and the exponent does not matter).
        let exponent = self.failures.min(1 << 16) as i32;
        self.failures = self.failures.saturating_add(1);
        let max_delay = self.retry.max_delay;
        let base = self.retry.initial_delay.as_secs_f64() * self.retry.multiplier.powi(exponent);
        // `f64::min` would pick max_delay over NaN; the comparison keeps
        // that explicit.
        let capped = if base.is_finite() && base <= max_delay.as_secs_f64() {
            base
        } else {
            max_delay.as_secs_f64()
        };
        let jittered = capped * (1.0 - self.retry.jitter * self.rng.next_unit());
        let delay = Duration::try_from_secs_f64(jittered.max(0.0)).unwrap_or(max_delay);
        delay.min(max_delay)
    }

    /// Forget past failures (after a connection stayed up long enough).
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }

    pub(crate) fn retry(&self) -> &Retry {
        &self.retry
    }
}

/// A tiny, well-known generator (SplitMix64): good enough to spread
/// reconnects, no dependency, and no `getrandom` in the wasm graph.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in [0, 1).
    fn next_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry() -> Retry {
        Retry::default()
            .initial_delay(Duration::from_millis(100))
            .max_delay(Duration::from_secs(1))
            .jitter(0.0)
    }

    #[test]
    fn delays_double_up_to_the_cap() {
        let mut backoff = Backoff::new(retry(), 1);
        let delays: Vec<_> = (0..6)
            .map(|_| backoff.next_delay().unwrap().as_millis())
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn gives_up_after_max_retries_and_resets() {
        let mut backoff = Backoff::new(retry().max_retries(2), 1);
        assert!(backoff.next_delay().is_some());
        assert!(backoff.next_delay().is_some());
        assert_eq!(backoff.next_delay(), None);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Some(Duration::from_millis(100)));
    }

    #[test]
    fn jitter_spreads_delays_within_bounds() {
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..50 {
            let mut backoff = Backoff::new(retry().jitter(0.5), seed);
            let delay = backoff.next_delay().unwrap();
            assert!(delay <= Duration::from_millis(100) && delay >= Duration::from_millis(50));
            seen.insert(delay);
        }
        assert!(
            seen.len() > 40,
            "jitter should spread delays, got {}",
            seen.len()
        );
    }

    #[test]
    fn same_seed_same_delays() {
        let a: Vec<_> = {
            let mut b = Backoff::new(retry().jitter(1.0), 7);
            (0..5).map(|_| b.next_delay()).collect()
        };
        let b: Vec<_> = {
            let mut b = Backoff::new(retry().jitter(1.0), 7);
            (0..5).map(|_| b.next_delay()).collect()
        };
        assert_eq!(a, b);
    }

    #[test]
    fn extreme_policies_saturate_at_max_delay() {
        let max = crate::options::MAX_DURATION;
        let policies = [
            retry().multiplier(1e300).max_delay(max),
            retry().multiplier(f64::MAX).max_delay(max),
            retry().multiplier(1.0).initial_delay(max).max_delay(max),
            retry().multiplier(2.0).max_delay(max).jitter(1.0),
            // Invalid policies never reach a Backoff (open refuses them),
            // but the arithmetic still does not panic on them.
            retry().multiplier(f64::NAN),
            retry()
                .multiplier(f64::INFINITY)
                .initial_delay(Duration::ZERO),
            retry().jitter(f64::NAN),
            retry().jitter(-5.0),
        ];
        for policy in policies {
            let cap = policy.max_delay;
            let mut backoff = Backoff::new(policy.clone(), 3);
            for _ in 0..200 {
                let delay = backoff.next_delay().expect("retries forever");
                assert!(delay <= cap, "{policy:?}: {delay:?}");
            }
        }
    }

    #[test]
    fn huge_multipliers_reach_the_cap_on_the_second_retry() {
        let max = crate::options::MAX_DURATION;
        let mut backoff = Backoff::new(retry().multiplier(1e300).max_delay(max), 1);
        assert_eq!(backoff.next_delay(), Some(Duration::from_millis(100)));
        assert_eq!(backoff.next_delay(), Some(max));
        assert_eq!(backoff.next_delay(), Some(max));
    }

    #[test]
    fn the_failure_count_saturates() {
        let mut backoff = Backoff::new(retry(), 1);
        backoff.failures = u32::MAX - 1;
        for _ in 0..3 {
            assert_eq!(backoff.next_delay(), Some(Duration::from_secs(1)));
        }
        assert_eq!(backoff.failures, u32::MAX);
        // With max_retries at u32::MAX, the last retry is the u32::MAX-th.
        let mut backoff = Backoff::new(retry().max_retries(u32::MAX), 1);
        backoff.failures = u32::MAX - 1;
        assert_eq!(backoff.next_delay(), Some(Duration::from_secs(1)));
        assert_eq!(backoff.next_delay(), None);
        assert_eq!(backoff.next_delay(), None);
    }

    #[test]
    fn unbounded_delays_ignore_max_retries_but_not_the_cap() {
        let mut backoff = Backoff::new(retry().max_retries(0), 1);
        let delays: Vec<_> = (0..5)
            .map(|_| backoff.next_delay_unbounded().as_millis())
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000]);
        assert_eq!(backoff.next_delay(), None);
    }

    #[test]
    fn never_retry_gives_up_at_once() {
        assert_eq!(Backoff::new(Retry::never(), 1).next_delay(), None);
    }
}
