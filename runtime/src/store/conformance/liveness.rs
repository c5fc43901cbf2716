//! Worker liveness leases: renewing, listing, and taking a lost worker's attempts with fencing.

use super::support::*;
use crate::engine::liveness::attempt_lost;

pub(super) async fn check_lost_worker(s: &dyn StoreBackend) {
    let c = start(s, "wf").await;
    commit_ok(s, commit(&c, 1, vec![sched(1, AT)])).await;
    let a = claim_act(s, AT, 1).await;
    // No lease recorded for the attempt's worker: nobody can judge it.
    assert!(s.worker_leases("judge").await.unwrap().is_empty());

    s.renew_worker_lease(WORKER, "its-process", 1)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let leases = s.worker_leases("judge").await.unwrap();
    assert_eq!(leases.len(), 1, "{leases:?}");
    assert_eq!(leases[0].worker_id, WORKER);
    assert_eq!(leases[0].process.as_deref(), Some("its-process"));
    assert!(leases[0].lease_expires_ms <= now_ms(), "expired");
    assert!(
        s.worker_leases(WORKER).await.unwrap().is_empty(),
        "a worker does not judge itself"
    );
    let judged = leases[0].lease_expires_ms;

    // It renewed since it was judged: it lives, nothing is taken.
    tokio::time::sleep(Duration::from_millis(2)).await;
    s.renew_worker_lease(WORKER, "its-process", 1)
        .await
        .unwrap();
    let taken = s.claim_lost_attempts(WORKER, judged, 10).await.unwrap();
    assert!(
        taken.is_empty(),
        "a renewed worker is not robbed: {taken:?}"
    );

    let current = s.worker_leases("judge").await.unwrap()[0].lease_expires_ms;
    let taken = s.claim_lost_attempts(WORKER, current, 10).await.unwrap();
    assert_eq!(seqs(&taken), vec![1]);
    let t = &taken[0];
    assert_eq!((t.task_id, t.attempt), (a.task_id, a.attempt));
    assert!(
        t.token > a.token,
        "the token moves on: {} then {}",
        a.token,
        t.token
    );
    // Its row is gone with its attempts.
    assert!(s.worker_leases("judge").await.unwrap().is_empty());

    // The lost worker's late result is fenced; the hand-on is recorded, and the activity is due
    // again at once, as its next attempt.
    let late = finish(
        s,
        &a,
        a.token,
        ActivityResolution::Completed(json!(1)),
        None,
    )
    .await;
    assert!(!late, "a lost worker's result must not be recorded");
    assert!(finish(s, t, t.token, attempt_lost(t, now_ms()), None).await);
    let again = claim_act(s, AT, 1).await;
    assert_eq!(again.attempt, a.attempt + 1);

    // A worker that stops removes its lease.
    s.renew_worker_lease("worker-2", "p2", LONG_LEASE)
        .await
        .unwrap();
    s.end_worker_lease("worker-2").await.unwrap();
    s.renew_worker_lease(WORKER, "p1", LONG_LEASE)
        .await
        .unwrap();
    let leases = s.worker_leases("judge").await.unwrap();
    assert_eq!(leases.len(), 1, "worker-1 holds attempt 2: {leases:?}");
    assert!(leases[0].lease_expires_ms > now_ms());
}

/// A lost attempt counts against the retry policy: the last one allowed, lost, fails the
/// activity (with `WorkerLost`) instead of being handed on.
pub(super) async fn check_lost_last_attempt(s: &dyn StoreBackend) {
    let c = start(s, "wf").await;
    let mut options = ActivityOptions::default();
    options.retry_policy.maximum_attempts = 1;
    commit_ok(
        s,
        commit(&c, 1, vec![scheduled_with(1, AT, Q, options, false)]),
    )
    .await;
    let a = claim_act(s, AT, 1).await;
    assert_eq!(a.attempt, 1);
    s.renew_worker_lease(WORKER, "its-process", 1)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let judged = s.worker_leases("judge").await.unwrap()[0].lease_expires_ms;
    let taken = s.claim_lost_attempts(WORKER, judged, 10).await.unwrap();
    assert_eq!(seqs(&taken), vec![1]);
    let t = &taken[0];
    assert!(finish(s, t, t.token, attempt_lost(t, now_ms()), None).await);
    match kinds(s, "wf").await.last() {
        Some(EventKind::ActivityFailed {
            activity_seq: 1,
            error,
        }) => assert_eq!(error.cause().error_type(), "WorkerLost", "{error:?}"),
        other => panic!("the activity failed with its last attempt: {other:?}"),
    }
    assert!(
        s.claim_activity_tasks("w2", &[Q.to_string()], &[AT.to_string()], 10)
            .await
            .unwrap()
            .is_empty(),
        "no attempt after the last"
    );
}
