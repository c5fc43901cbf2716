//! A worker's shutdown, on the SQLite file and Postgres, after the behaviours of Temporal's
//! cross-SDK feature suite (`activity/shutdown`, `local_activity/complete_after_shutdown`,
//! `local_activity/shutdown_sends_cancellation`), in our words:
//!
//! - running activities are told the worker is shutting down (`ctx.cancelled()` resolves, the
//!   reason says shutdown, a heartbeat returns `WorkerShutdown`), so they can stop early; an attempt
//!   that stops because of it is handed to another worker at once, not failed;
//! - a cancel sent during the grace still reaches them, and wins;
//! - what still runs at the end of the grace is stopped (its future dropped) and handed over;
//! - a local activity that completes during the grace is recorded before `shutdown()` returns;
//! - a local activity the shutdown interrupts (even between two retries) is never left behind: its
//!   workflow task is given up at once, and the next worker starts it again from attempt 1;
//! - dropping a `WorkerHandle` stops its worker;
//! - eagerly claimed attempts respect `max_concurrent_activities`.

mod support;

use duraflow::prelude::*;
use duraflow::{Client, Error, EventKind, Store, Worker, WorkerOptions, WorkflowStatus};
use std::sync::atomic::{AtomicUsize, Ordering};
use support::{count, eventually, note, note_for, noted, stop, wid, within, TestDb};

const LIMIT: Duration = Duration::from_secs(20);

/// A worker whose grace is far longer than any test's limit: a test that ends within its limit
/// shows the worker did not need the whole grace.
fn worker(store: &Store, grace: Duration) -> Worker {
    let mut o = WorkerOptions::default();
    o.poll_interval = Duration::from_millis(100);
    o.workflow_task_lease = Duration::from_secs(2);
    o.shutdown_grace = grace;
    Worker::new(store).options(o)
}

const LONG_GRACE: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------------
// Activities hear the shutdown.

/// Attempt 1 waits to be told to stop and reports how; later attempts return their number.
#[activity]
async fn waits_for_notice(ctx: ActivityContext) -> Result<u32, ActivityError> {
    let attempt = ctx.info().attempt;
    note(&ctx, &format!("attempt {attempt} started"));
    if attempt > 1 {
        return Ok(attempt);
    }
    ctx.cancelled().await;
    note(&ctx, &format!("told: {:?}", ctx.cancel_reason()));
    let e = ctx.heartbeat(&"stopping").unwrap_err();
    note(&ctx, &format!("heartbeat: {}", e.error_type()));
    Err(e)
}

#[workflow]
async fn notice_wf(ctx: WorkflowContext) -> Result<u32, WorkflowError> {
    Ok(ctx.activity(waits_for_notice, ()).await?)
}

async fn running_activities_hear_the_shutdown_and_hand_over(db: &TestDb) {
    let w1 = worker(&db.store, LONG_GRACE)
        .register(waits_for_notice)
        .register(notice_wf)
        .start();
    let client = Client::new(&db.store);
    let id = wid(db, "notice");
    let h = client.start(notice_wf, id.clone(), ()).await.unwrap();
    eventually(LIMIT, "attempt 1 runs", || async {
        noted(&id).contains(&"attempt 1 started".to_string())
    })
    .await;
    stop(w1).await;
    assert_eq!(
        noted(&id),
        vec![
            "attempt 1 started".to_string(),
            "told: Some(WorkerShutdown)".to_string(),
            "heartbeat: WorkerShutdown".to_string(),
        ]
    );
    let d = client.describe(&id).await.unwrap();
    assert_eq!(d.status, WorkflowStatus::Running);
    // Not a failure: the activity waits for the next worker, due now.
    let hist = client.history(&id).await.unwrap();
    assert_eq!(
        count(&hist, |k| matches!(
            k,
            EventKind::ActivityFailed { .. } | EventKind::ActivityCancelled { .. }
        )),
        0
    );
    let w2 = worker(&db.store, LONG_GRACE)
        .register(waits_for_notice)
        .register(notice_wf)
        .start();
    assert_eq!(within(LIMIT, "result", h.result()).await.unwrap(), 2);
    stop(w2).await;
}

/// Keeps heartbeating through the shutdown notice, until a real cancel arrives.
#[activity(heartbeat_timeout = "30s")]
async fn ignores_notice(ctx: ActivityContext) -> Result<(), ActivityError> {
    note(&ctx, "started");
    ctx.cancelled().await;
    note(&ctx, &format!("told: {:?}", ctx.cancel_reason()));
    loop {
        match ctx.heartbeat(&"still working") {
            Err(e) if e.is_cancelled() => {
                note(&ctx, &format!("then: {:?}", ctx.cancel_reason()));
                return Err(e);
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

#[workflow]
async fn cancelled_in_grace_wf(ctx: WorkflowContext) -> Result<(), WorkflowError> {
    let h = ctx
        .activity(ignores_notice, ())
        .cancellation_type(CancellationType::WaitCancellationCompleted)
        .start();
    let r = h.await;
    ctx.cancelled().await;
    match r {
        Err(e) if e.is_cancelled() => Err(WorkflowError::Cancelled),
        other => Err(WorkflowError::application(
            "Unexpected",
            format!("{other:?}"),
        )),
    }
}

async fn a_cancel_during_the_grace_still_reaches_the_activity(db: &TestDb) {
    // One worker runs the activity and shuts down; another runs the workflow, which cancels it.
    let acts = worker(&db.store, LONG_GRACE)
        .register(ignores_notice)
        .start();
    let wfs = worker(&db.store, LONG_GRACE)
        .register_alone(cancelled_in_grace_wf)
        .start();
    let client = Client::new(&db.store);
    let id = wid(db, "cancel-in-grace");
    let h = client
        .start(cancelled_in_grace_wf, id.clone(), ())
        .await
        .unwrap();
    eventually(LIMIT, "the activity runs", || async {
        noted(&id).contains(&"started".to_string())
    })
    .await;
    let shutting = tokio::spawn(acts.shutdown());
    eventually(LIMIT, "the activity is told of the shutdown", || async {
        noted(&id).len() == 2
    })
    .await;
    assert!(h.cancel().await.unwrap());
    match within(LIMIT, "cancelled", h.result()).await {
        Err(Error::WorkflowCancelled) => {}
        other => panic!("expected cancelled, got {other:?}"),
    }
    within(LIMIT, "shutdown", shutting).await.unwrap();
    assert_eq!(
        noted(&id),
        vec![
            "started".to_string(),
            "told: Some(WorkerShutdown)".to_string(),
            "then: Some(Cancelled)".to_string(),
        ]
    );
    let hist = client.history(&id).await.unwrap();
    assert_eq!(
        count(&hist, |k| matches!(k, EventKind::ActivityCancelled { .. })),
        1,
        "{:#?}",
        hist.iter().map(|e| e.kind.name()).collect::<Vec<_>>()
    );
    stop(wfs).await;
}

struct DropNote(String, &'static str);
impl Drop for DropNote {
    fn drop(&mut self) {
        note_for(&self.0, self.1);
    }
}

/// Attempt 1 ignores everything; a `Drop` guard reports when its future is dropped.
#[activity(start_to_close_timeout = "1h")]
async fn never_stops(ctx: ActivityContext) -> Result<u32, ActivityError> {
    let attempt = ctx.info().attempt;
    if attempt > 1 {
        return Ok(attempt);
    }
    let _guard = DropNote(ctx.info().workflow_id.clone(), "attempt 1 dropped");
    note(&ctx, "attempt 1 started");
    std::future::pending::<()>().await;
    Ok(attempt)
}

#[workflow]
async fn never_stops_wf(ctx: WorkflowContext) -> Result<u32, WorkflowError> {
    Ok(ctx.activity(never_stops, ()).await?)
}

async fn what_runs_past_the_grace_is_stopped_and_handed_over(db: &TestDb) {
    let w1 = worker(&db.store, Duration::from_millis(300))
        .register(never_stops)
        .register(never_stops_wf)
        .start();
    let client = Client::new(&db.store);
    let id = wid(db, "past-grace");
    let h = client.start(never_stops_wf, id.clone(), ()).await.unwrap();
    eventually(LIMIT, "attempt 1 runs", || async { !noted(&id).is_empty() }).await;
    stop(w1).await;
    // Its future was dropped before `shutdown()` returned.
    assert_eq!(
        noted(&id),
        vec![
            "attempt 1 started".to_string(),
            "attempt 1 dropped".to_string()
        ]
    );
    // Handed over at once: attempt 2 does not wait for the hour-long start-to-close timeout.
    let w2 = worker(&db.store, LONG_GRACE)
        .register(never_stops)
        .register(never_stops_wf)
        .start();
    assert_eq!(within(LIMIT, "result", h.result()).await.unwrap(), 2);
    stop(w2).await;
}

async fn dropping_the_handle_stops_the_worker(db: &TestDb) {
    let w1 = worker(&db.store, LONG_GRACE)
        .register(waits_for_notice)
        .register(notice_wf)
        .start();
    let client = Client::new(&db.store);
    let id = wid(db, "dropped");
    let h = client.start(notice_wf, id.clone(), ()).await.unwrap();
    eventually(LIMIT, "attempt 1 runs", || async {
        noted(&id).contains(&"attempt 1 started".to_string())
    })
    .await;
    drop(w1);
    eventually(LIMIT, "the activity is told of the shutdown", || async {
        noted(&id).len() == 3
    })
    .await;
    assert_eq!(noted(&id)[1], "told: Some(WorkerShutdown)");
    let w2 = worker(&db.store, LONG_GRACE)
        .register(waits_for_notice)
        .register(notice_wf)
        .start();
    assert_eq!(within(LIMIT, "result", h.result()).await.unwrap(), 2);
    stop(w2).await;
}

// ---------------------------------------------------------------------------------------------
// Local activities and the shutdown.

/// Hears the shutdown, then finishes its work anyway.
#[activity]
async fn finishes_after_notice(ctx: ActivityContext) -> Result<u32, ActivityError> {
    note(&ctx, "started");
    ctx.cancelled().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    note(&ctx, "finished");
    Ok(7)
}

#[workflow]
async fn local_after_shutdown_wf(ctx: WorkflowContext) -> Result<u32, WorkflowError> {
    Ok(ctx.local_activity(finishes_after_notice, ()).await?)
}

async fn a_local_activity_completes_during_the_grace(db: &TestDb) {
    let w1 = worker(&db.store, LONG_GRACE)
        .register(finishes_after_notice)
        .register(local_after_shutdown_wf)
        .start();
    let client = Client::new(&db.store);
    let id = wid(db, "local-grace");
    let h = client
        .start(local_after_shutdown_wf, id.clone(), ())
        .await
        .unwrap();
    eventually(LIMIT, "the local activity runs", || async {
        !noted(&id).is_empty()
    })
    .await;
    stop(w1).await;
    // `shutdown()` waited for it, and its outcome was recorded before it returned.
    assert_eq!(
        noted(&id),
        vec!["started".to_string(), "finished".to_string()]
    );
    let hist = client.history(&id).await.unwrap();
    assert_eq!(
        count(&hist, |k| matches!(
            k,
            EventKind::LocalActivityMarker { result: Ok(v), .. } if v == &serde_json::json!(7)
        )),
        1
    );
    // The next worker finishes the workflow without running it again.
    let w2 = worker(&db.store, LONG_GRACE)
        .register(finishes_after_notice)
        .register(local_after_shutdown_wf)
        .start();
    assert_eq!(within(LIMIT, "result", h.result()).await.unwrap(), 7);
    assert_eq!(noted(&id).len(), 2, "it ran once");
    stop(w2).await;
}

/// The first run of all fails, with an hour's backoff before attempt 2; later runs succeed.
#[activity(retry(initial_interval = "1h"))]
async fn fails_first(ctx: ActivityContext, key: String) -> Result<u32, ActivityError> {
    let attempt = ctx.info().attempt;
    note(&ctx, &format!("attempt {attempt}"));
    if note_first(&key) {
        return Err(ActivityError::application("Flaky", "the first run fails"));
    }
    Ok(attempt)
}

/// True the first time `key` is seen.
fn note_first(key: &str) -> bool {
    static SEEN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if seen.iter().any(|k| k == key) {
        false
    } else {
        seen.push(key.to_string());
        true
    }
}

#[workflow]
async fn interrupted_retry_wf(ctx: WorkflowContext, key: String) -> Result<u32, WorkflowError> {
    Ok(ctx.local_activity(fails_first, key).await?)
}

async fn a_local_activity_interrupted_between_retries_starts_again_from_attempt_1(db: &TestDb) {
    let w1 = worker(&db.store, LONG_GRACE)
        .register(fails_first)
        .register(interrupted_retry_wf)
        .start();
    let client = Client::new(&db.store);
    let id = wid(db, "local-mid-retry");
    let h = client
        .start(interrupted_retry_wf, id.clone(), id.clone())
        .await
        .unwrap();
    eventually(LIMIT, "attempt 1 failed", || async {
        !noted(&id).is_empty()
    })
    .await;
    // The worker waits out its hour-long backoff no more than its grace: it stops at once.
    stop(w1).await;
    let hist = client.history(&id).await.unwrap();
    assert_eq!(
        count(&hist, |k| matches!(
            k,
            EventKind::LocalActivityMarker { .. }
        )),
        0,
        "an interrupted local activity records nothing"
    );
    // The workflow is not left behind: the next worker replays it and starts the local activity
    // again from attempt 1 (Temporal's rule), which succeeds.
    let w2 = worker(&db.store, LONG_GRACE)
        .register(fails_first)
        .register(interrupted_retry_wf)
        .start();
    assert_eq!(within(LIMIT, "result", h.result()).await.unwrap(), 1);
    assert_eq!(
        noted(&id),
        vec!["attempt 1".to_string(), "attempt 1".to_string()]
    );
    stop(w2).await;
}

/// Acknowledges the shutdown notice by returning the cancellation (as `?` on a heartbeat of an
/// older activity would): the shutdown, not the workflow, caused it, so it is not recorded.
#[activity]
async fn acknowledges_notice(ctx: ActivityContext) -> Result<String, ActivityError> {
    note(
        &ctx,
        &format!("run {}", noted(&ctx.info().workflow_id).len() + 1),
    );
    if noted(&ctx.info().workflow_id).len() > 1 {
        return Ok("done".into());
    }
    ctx.cancelled().await;
    Err(ActivityError::cancelled())
}

#[workflow]
async fn acknowledges_wf(ctx: WorkflowContext) -> Result<String, WorkflowError> {
    Ok(ctx.local_activity(acknowledges_notice, ()).await?)
}

async fn a_local_activity_stopped_by_the_shutdown_stays_unresolved(db: &TestDb) {
    let w1 = worker(&db.store, LONG_GRACE)
        .register(acknowledges_notice)
        .register(acknowledges_wf)
        .start();
    let client = Client::new(&db.store);
    let id = wid(db, "local-ack");
    let h = client.start(acknowledges_wf, id.clone(), ()).await.unwrap();
    eventually(LIMIT, "the local activity runs", || async {
        !noted(&id).is_empty()
    })
    .await;
    stop(w1).await;
    let hist = client.history(&id).await.unwrap();
    assert_eq!(
        count(&hist, |k| matches!(
            k,
            EventKind::LocalActivityMarker { .. } | EventKind::ActivityCancelled { .. }
        )),
        0,
        "the cancellation the shutdown caused is not the workflow's"
    );
    let w2 = worker(&db.store, LONG_GRACE)
        .register(acknowledges_notice)
        .register(acknowledges_wf)
        .start();
    assert_eq!(within(LIMIT, "result", h.result()).await.unwrap(), "done");
    assert_eq!(noted(&id), vec!["run 1".to_string(), "run 2".to_string()]);
    stop(w2).await;
}

// ---------------------------------------------------------------------------------------------
// Slots.

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static MOST_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

#[activity]
async fn counts_in_flight() -> Result<(), ActivityError> {
    let now = IN_FLIGHT.fetch_add(1, Ordering::SeqCst) + 1;
    MOST_IN_FLIGHT.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(20)).await;
    IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    Ok(())
}

#[workflow]
async fn counts_wf(ctx: WorkflowContext) -> Result<(), WorkflowError> {
    for _ in 0..3 {
        ctx.activity(counts_in_flight, ()).await?;
    }
    Ok(())
}

async fn eager_claims_respect_max_concurrent_activities(db: &TestDb) {
    let mut o = WorkerOptions::default();
    o.poll_interval = Duration::from_millis(100);
    o.max_concurrent_activities = 1;
    let w = Worker::new(&db.store)
        .register(counts_in_flight)
        .register(counts_wf)
        .options(o)
        .start();
    let client = Client::new(&db.store);
    let mut handles = Vec::new();
    for i in 0..16 {
        let id = wid(db, &format!("slots-{i}"));
        handles.push(client.start(counts_wf, id, ()).await.unwrap());
    }
    for h in handles {
        within(Duration::from_secs(60), "result", h.result())
            .await
            .unwrap();
    }
    stop(w).await;
    assert_eq!(
        MOST_IN_FLIGHT.swap(0, Ordering::SeqCst),
        1,
        "max_concurrent_activities = 1, eager claims included ({})",
        db.store.kind()
    );
}

mod slots {
    use super::*;

    // The in-flight counters are shared by the whole test binary: the stores take turns here.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn eager_claims_respect_max_concurrent_activities() {
        let db = TestDb::sqlite();
        super::eager_claims_respect_max_concurrent_activities(&db).await;
        if let Some(db) = TestDb::postgres("eager_claims_respect_max").await {
            super::eager_claims_respect_max_concurrent_activities(&db).await;
            db.cleanup().await;
        }
    }
}

store_tests!(
    running_activities_hear_the_shutdown_and_hand_over,
    a_cancel_during_the_grace_still_reaches_the_activity,
    what_runs_past_the_grace_is_stopped_and_handed_over,
    dropping_the_handle_stops_the_worker,
    a_local_activity_completes_during_the_grace,
    a_local_activity_interrupted_between_retries_starts_again_from_attempt_1,
    a_local_activity_stopped_by_the_shutdown_stays_unresolved,
);
