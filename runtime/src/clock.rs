//! The clock everything time-related in the runtime reads: timers, `ctx.now()`, activity
//! deadlines (start-to-close, schedule-to-close, heartbeat), retry backoff, leases. The real clock
//! by default (`SystemTime::now()`, tokio's timers: one branch on a `None`, nothing else); a
//! virtual clock for [`crate::testing::TestEnv`], which moves only when told to, or when every
//! workflow of the test waits on a timer.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// The real clock (`Clock::default()`) or a virtual one. Cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct Clock(Option<Arc<watch::Sender<i64>>>);

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            None => f.write_str("Clock::Real"),
            Some(v) => write!(f, "Clock::Virtual({})", *v.borrow()),
        }
    }
}

/// Milliseconds since the Unix epoch, on the real clock.
pub(crate) fn real_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A future's time ran out (from [`Clock::timeout`]).
#[derive(Debug)]
pub(crate) struct Elapsed;

impl Clock {
    /// A virtual clock that reads `start_ms` until moved.
    pub(crate) fn virtual_at(start_ms: i64) -> Clock {
        Clock(Some(Arc::new(watch::channel(start_ms).0)))
    }

    /// Whether this is a virtual clock.
    pub(crate) fn is_virtual(&self) -> bool {
        self.0.is_some()
    }

    /// Milliseconds since the Unix epoch, now.
    #[inline]
    pub(crate) fn now_ms(&self) -> i64 {
        match &self.0 {
            None => real_now_ms(),
            Some(v) => *v.borrow(),
        }
    }

    /// Moves a virtual clock forward to `ms` (never back); a real clock ignores it.
    pub(crate) fn advance_to(&self, ms: i64) {
        if let Some(v) = &self.0 {
            v.send_if_modified(|now| {
                let moved = ms > *now;
                if moved {
                    *now = ms;
                }
                moved
            });
        }
    }

    /// Waits until the clock reads `ms` or later.
    pub(crate) async fn sleep_until_ms(&self, ms: i64) {
        match &self.0 {
            None => {
                let wait = ms.saturating_sub(real_now_ms()).max(0) as u64;
                tokio::time::sleep(Duration::from_millis(wait)).await
            }
            Some(v) => {
                let mut rx = v.subscribe();
                // The sender lives as long as this clock: `wait_for` only ends when it holds.
                let _ = rx.wait_for(|now| *now >= ms).await;
            }
        }
    }

    /// Waits `d` on this clock.
    pub(crate) async fn sleep(&self, d: Duration) {
        match &self.0 {
            None => tokio::time::sleep(d).await,
            Some(_) => {
                let until = self.now_ms().saturating_add(d.as_millis() as i64);
                self.sleep_until_ms(until).await
            }
        }
    }

    /// Runs `fut` for at most `d` on this clock.
    pub(crate) async fn timeout<F: Future>(
        &self,
        d: Duration,
        fut: F,
    ) -> Result<F::Output, Elapsed> {
        match &self.0 {
            None => tokio::time::timeout(d, fut).await.map_err(|_| Elapsed),
            Some(_) => {
                tokio::select! {
                    out = fut => Ok(out),
                    _ = self.sleep(d) => Err(Elapsed),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_virtual_clock_moves_only_forward_and_wakes_sleepers() {
        let c = Clock::virtual_at(1_000);
        assert!(c.is_virtual());
        let sleeper = tokio::spawn({
            let c = c.clone();
            async move { c.sleep(Duration::from_secs(30 * 86_400)).await }
        });
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        c.advance_to(500);
        assert_eq!(c.now_ms(), 1_000, "never back");
        c.advance_to(1_000 + 30 * 86_400_000);
        sleeper.await.unwrap();
        let timed = tokio::spawn({
            let c = c.clone();
            async move {
                c.timeout(Duration::from_millis(10), std::future::pending::<()>())
                    .await
                    .is_err()
            }
        });
        tokio::task::yield_now().await;
        c.advance_to(c.now_ms() + 10);
        assert!(
            timed.await.unwrap(),
            "a pending future times out once the clock moves"
        );
    }

    #[test]
    fn the_real_clock_reads_system_time() {
        let c = Clock::default();
        assert!(!c.is_virtual());
        let (a, b) = (real_now_ms(), c.now_ms());
        assert!(b >= a && b - a < 60_000);
    }
}
