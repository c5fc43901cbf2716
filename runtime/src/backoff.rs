//! Capped exponential backoff with jitter, for retrying a store that failed (a server restart, a
//! cut connection, a full disk): the first retry comes soon, later ones ever slower up to a cap, and
//! many workers that lost the store at the same moment do not come back in step.

use std::time::Duration;

/// The waits between retries of one failing operation.
#[derive(Clone, Debug)]
pub(crate) struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
}

impl Backoff {
    /// Starts at about `base`, doubles at each failure, never waits more than `cap`.
    pub(crate) fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff {
            base,
            cap,
            failures: 0,
        }
    }

    /// The backoff of a store that failed: 50 ms, doubling, capped at 5 s.
    pub(crate) fn store() -> Backoff {
        Backoff::new(Duration::from_millis(50), Duration::from_secs(5))
    }

    /// Counts one more failure; the wait before the next try: the doubled delay, capped, with
    /// "equal jitter" (uniform in its upper half).
    pub(crate) fn next_delay(&mut self) -> Duration {
        let exp = self.base.saturating_mul(1u32 << self.failures.min(20));
        let d = exp.min(self.cap);
        self.failures = self.failures.saturating_add(1);
        let half = d / 2;
        half + half.mul_f64(jitter())
    }

    /// Failures since the last success.
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    /// After a success: the next failure waits `base` again. Returns the failures there were.
    pub(crate) fn reset(&mut self) -> u32 {
        std::mem::take(&mut self.failures)
    }
}

/// A number in [0, 1), different in each call and process.
fn jitter() -> f64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_with_jitter_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let waits: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        for (i, w) in waits.iter().enumerate() {
            let full = Duration::from_millis(100 * (1 << i)).min(Duration::from_secs(1));
            assert!(
                *w >= full / 2 && *w <= full,
                "wait {i}: {w:?} not in [{:?}, {full:?}]",
                full / 2
            );
        }
        assert_eq!(b.failures(), 8);
        assert_eq!(b.reset(), 8);
        assert!(b.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn many_failures_do_not_overflow() {
        let mut b = Backoff::store();
        for _ in 0..1000 {
            assert!(b.next_delay() <= Duration::from_secs(5));
        }
    }
}
