//! Worker liveness: when a worker that holds running activity attempts is dead, so that its
//! attempts are handed on within seconds instead of at their `start_to_close_timeout`.
//!
//! Each worker keeps a lease of its own in the store (a few seconds, renewed in the background,
//! with its process identity). Another worker judges it from what the store shows and from what
//! it saw before:
//!
//! - its process is known to have ended (same machine and process namespace, and that pid no
//!   longer runs the same process): lost at once;
//! - its process is known to run: alive, however late its lease (a slow worker is not a dead one;
//!   its attempts' own timeouts still apply);
//! - otherwise by the lease: unexpired, alive; expired, and seen unchanged for one more lease
//!   period by the judge itself, lost. The judge's own observation protects against an outage of
//!   the store: when the store comes back every lease looks expired, but a live worker renews its
//!   own within the period and is not judged lost.
//!
//! A lost worker's attempts are taken with their tokens bumped (so a worker judged lost that is
//! in fact alive has its results fenced off: nothing is recorded twice) and handed on at once as
//! new attempts; a lost attempt counts against the retry policy, as a timed-out attempt does in
//! Temporal ([`attempt_lost`]).

use super::activity::{resolve_failure, ActivityResolution, ClaimedActivity};
use crate::error::ActivityError;

/// A worker's lease as the store holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WorkerLease {
    /// The worker's id (`lease_owner` of the attempts it runs).
    pub worker_id: String,
    /// When the lease ends, ms since the epoch.
    pub lease_expires_ms: i64,
    /// The worker's process identity (see `worker::liveness::ProcessIdentity`), if recorded.
    pub process: Option<String>,
}

/// What a judge saw of a worker whose lease had expired: the lease value, and since when (the
/// judge's clock) it has seen that value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Seen {
    pub lease_expires_ms: i64,
    pub since_ms: i64,
}

/// Whether the worker's process runs, as the judge can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProcessState {
    /// On this machine, and no longer running.
    Ended,
    /// On this machine, and running.
    Running,
    /// Elsewhere, or not recorded.
    Unknown,
}

/// The judgement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Alive,
    /// Expired, not yet for long enough: remember this and look again.
    Suspect(Seen),
    /// Dead: take its attempts (only while its lease still has the value seen).
    Lost,
}

/// Judges `lease` at `now_ms`, given what was seen of it before and whether its process runs.
pub(crate) fn judge(
    lease: &WorkerLease,
    seen: Option<Seen>,
    process: ProcessState,
    now_ms: i64,
    lease_ms: i64,
) -> Verdict {
    match process {
        ProcessState::Ended => return Verdict::Lost,
        ProcessState::Running => return Verdict::Alive,
        ProcessState::Unknown => {}
    }
    if lease.lease_expires_ms > now_ms {
        return Verdict::Alive;
    }
    match seen {
        Some(s) if s.lease_expires_ms == lease.lease_expires_ms => {
            if now_ms - s.since_ms >= lease_ms {
                Verdict::Lost
            } else {
                Verdict::Suspect(s)
            }
        }
        // First seen expired, or renewed since: the observation starts now.
        _ => Verdict::Suspect(Seen {
            lease_expires_ms: lease.lease_expires_ms,
            since_ms: now_ms,
        }),
    }
}

/// The error a lost attempt ends with (type `WorkerLost`, retryable, so a retry policy can list
/// it as non-retryable).
pub(crate) fn worker_lost_error() -> ActivityError {
    ActivityError::application(
        WORKER_LOST,
        "the worker running this attempt was lost (its process ended, or its liveness lease \
         expired and stayed so); the attempt counts against the retry policy",
    )
}

/// The error type of [`worker_lost_error`].
pub(crate) const WORKER_LOST: &str = "WorkerLost";

/// What becomes of an attempt whose worker was lost. It counts as a failed attempt against the
/// retry policy (Temporal's yardstick: an attempt whose worker dies times out, and a timed-out
/// attempt is an attempt), with [`worker_lost_error`] as its failure: while the policy allows
/// another attempt, it is handed to another worker at once (no backoff: the failure is the
/// worker's, not the activity's); once it does not, the activity fails.
pub(crate) fn attempt_lost(task: &ClaimedActivity, now_ms: i64) -> ActivityResolution {
    match resolve_failure(
        &task.options,
        &task.activity_type,
        task.attempt,
        task.scheduled_ms,
        worker_lost_error(),
        task.heartbeat_details.clone(),
        now_ms,
    ) {
        ActivityResolution::Retry { last_failure, .. } => ActivityResolution::Retry {
            retry_at_ms: now_ms,
            last_failure,
        },
        ended => ended,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: i64 = 3_000;

    fn lease(expires: i64) -> WorkerLease {
        WorkerLease {
            worker_id: "w".into(),
            lease_expires_ms: expires,
            process: None,
        }
    }

    #[test]
    fn an_unexpired_lease_is_alive() {
        let v = judge(&lease(10_000), None, ProcessState::Unknown, 9_999, LEASE);
        assert_eq!(v, Verdict::Alive);
    }

    #[test]
    fn an_expired_lease_is_lost_only_after_a_lease_period_of_observation() {
        let l = lease(10_000);
        let Verdict::Suspect(seen) = judge(&l, None, ProcessState::Unknown, 10_000, LEASE) else {
            panic!("first look: suspect");
        };
        assert_eq!(seen.since_ms, 10_000);
        assert_eq!(
            judge(&l, Some(seen), ProcessState::Unknown, 12_999, LEASE),
            Verdict::Suspect(seen)
        );
        assert_eq!(
            judge(&l, Some(seen), ProcessState::Unknown, 13_000, LEASE),
            Verdict::Lost
        );
    }

    #[test]
    fn after_an_outage_every_lease_looks_expired_but_a_renewal_clears_it() {
        // The store was down for a minute: the judge first sees the old lease long expired.
        let old = lease(1_000);
        let Verdict::Suspect(seen) = judge(&old, None, ProcessState::Unknown, 61_000, LEASE) else {
            panic!("suspect, not lost, at the first look after the outage");
        };
        // The live worker renews within the period: alive again.
        let renewed = lease(64_500);
        assert_eq!(
            judge(&renewed, Some(seen), ProcessState::Unknown, 62_000, LEASE),
            Verdict::Alive
        );
        // A renewal that expired again starts a new observation, not a verdict.
        let later = lease(64_500);
        let v = judge(&later, Some(seen), ProcessState::Unknown, 65_000, LEASE);
        assert_eq!(
            v,
            Verdict::Suspect(Seen {
                lease_expires_ms: 64_500,
                since_ms: 65_000
            })
        );
    }

    #[test]
    fn the_process_state_decides_when_it_is_known() {
        let live_lease = lease(99_000);
        assert_eq!(
            judge(&live_lease, None, ProcessState::Ended, 1_000, LEASE),
            Verdict::Lost,
            "a local process that ended is lost at once"
        );
        let expired = lease(0);
        assert_eq!(
            judge(&expired, None, ProcessState::Running, 1_000_000, LEASE),
            Verdict::Alive,
            "a running process is slow, not dead"
        );
    }

    #[test]
    fn a_lost_attempt_is_handed_on_at_once_as_a_failed_attempt() {
        let mut task = crate::engine::testkit::claimed(1);
        task.attempt = 1;
        task.options.retry_policy.initial_interval = std::time::Duration::from_secs(60);
        match attempt_lost(&task, 5_000) {
            ActivityResolution::Retry {
                retry_at_ms: 5_000,
                last_failure: Some(e),
            } => assert_eq!(e.error_type(), WORKER_LOST),
            other => panic!("handed on at once, with its failure: {other:?}"),
        }
    }

    #[test]
    fn a_lost_last_attempt_fails_the_activity() {
        let mut task = crate::engine::testkit::claimed(1);
        task.options.retry_policy.maximum_attempts = 3;
        task.attempt = 3;
        match attempt_lost(&task, 5_000) {
            ActivityResolution::Failed(ActivityError::Failed {
                attempts, cause, ..
            }) => {
                assert_eq!(attempts, 3);
                assert_eq!(cause.error_type(), WORKER_LOST);
            }
            other => panic!("the policy is spent: {other:?}"),
        }
        // Listed as non-retryable: not handed on either.
        task.attempt = 1;
        task.options.retry_policy.non_retryable_error_types = vec![WORKER_LOST.into()];
        assert!(matches!(
            attempt_lost(&task, 5_000),
            ActivityResolution::Failed(_)
        ));
    }
}
