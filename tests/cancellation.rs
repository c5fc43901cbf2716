//! Heartbeats and cancellation end to end, on every store: throttled heartbeats that extend the lease,
//! heartbeat timeouts with details, cancel delivery in process and across processes, the three
//! cancellation types, local activities, workflow end and workflow cancellation, activity info.

mod support;

use duraflow::prelude::*;
use duraflow::{
    ActivityInfo, Client, Error, EventKind, Store, TimeoutKind, Worker, WorkerOptions,
    WorkflowStatus,
};
use support::{count, eventually, note, noted, stop, wid, within, TestDb};

const LIMIT: Duration = Duration::from_secs(20);

fn worker(store: &Store) -> Worker {
    let mut o = WorkerOptions::default();
    o.poll_interval = Duration::from_millis(200);
    o.shutdown_grace = Duration::from_secs(2);
    Worker::new(store).options(o)
}

// ---------------------------------------------------------------------------------------------
// Heartbeats: throttled, lease-extending, flushed at the end of an attempt.

/// Attempt 1 heartbeats 1, 2, 3, .. every 40 ms for 5 s (longer than its 2 s heartbeat timeout),
/// then fails; attempt 2 returns the details it inherited.
#[activity(
    heartbeat_timeout = "2s",
    retry(initial_interval = "10ms", maximum_attempts = 2)
)]
async fn counting(ctx: ActivityContext) -> Result<(u32, Option<u64>), ActivityError> {
    if ctx.info().attempt == 2 {
        return Ok((2, ctx.heartbeat_details::<u64>()));
    }
    for i in 1..=125u64 {
        ctx.heartbeat(&i)?;
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    Err(ActivityError::application("Done", "attempt 1 ends here"))
}

#[workflow]
async fn counting_wf(ctx: WorkflowContext) -> Result<(u32, Option<u64>), WorkflowError> {
    Ok(ctx.activity(counting, ()).await?)
}

async fn heartbeats_are_throttled_extend_the_lease_and_are_flushed(db: &TestDb) {
    let w = worker(&db.store)
        .register(counting)
        .register(counting_wf)
        .start();
    let client = Client::new(&db.store);
    let id = wid(db, "counting");
    client.start(counting_wf, id.clone(), ()).await.unwrap();
    // The first heartbeat is stored at once ...
    eventually(LIMIT, "first heartbeat stored", || async {
        let d = client.describe(&id).await.unwrap();
        d.pending_activities
            .first()
            .and_then(|a| a.heartbeat_details.clone())
            .is_some()
    })
    .await;
    let first = client.describe(&id).await.unwrap().pending_activities[0]
        .heartbeat_details
        .clone();
    assert_eq!(
        first,
        Some(serde_json::json!(1)),
        "the first heartbeat is stored at once"
    );
    // ... later ones at most every 1.6 s: over the 5 s of attempt 1 (125 heartbeats), the store
    // holds at most four values (at 0, 1.6, 3.2 and 4.8 s) and the final flush. Watching it the
    // whole time, the test sees no more than those five, however slow the machine; a worker that
    // stored heartbeats one by one shows dozens.
    let mut seen = std::collections::BTreeSet::new();
    loop {
        let d = client.describe(&id).await.unwrap();
        match d.pending_activities.first() {
            Some(a) if a.attempt == 1 => {
                if let Some(v) = a.heartbeat_details.as_ref().and_then(|v| v.as_u64()) {
                    seen.insert(v);
                }
            }
            _ => break,
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        seen.len() <= 5,
        "heartbeats are throttled, not stored one by one: the store held {seen:?}"
    );
    // It ran 5 s with a 2 s heartbeat timeout: heartbeats extended its lease, so attempt 1 was not
    // timed out; attempt 2 sees the final details, flushed when attempt 1 ended.
    let (attempt, details) = within(
        LIMIT,
        "result",
        client.handle::<(u32, Option<u64>)>(&id).result(),
    )
    .await
    .unwrap();
    assert_eq!(attempt, 2);
    assert_eq!(
        details,
        Some(125),
        "the latest details win and are flushed at the end"
    );
    let h = client.history(&id).await.unwrap();
    assert_eq!(
        count(&h, |k| matches!(k, EventKind::ActivityTimedOut { .. })),
        0
    );
    stop(w).await;
}

/// Heartbeats `progress-<attempt>` once, then hangs.
#[activity(
    heartbeat_timeout = "1s",
    retry(initial_interval = "10ms", maximum_attempts = 2)
)]
async fn stalls(ctx: ActivityContext) -> Result<(), ActivityError> {
    let before: Option<String> = ctx.heartbeat_details();
    note(
        &ctx,
        &format!("attempt {} saw {:?}", ctx.info().attempt, before),
    );
    ctx.heartbeat(&format!("progress-{}", ctx.info().attempt))?;
    tokio::time::sleep(Duration::from_secs(60)).await;
    Ok(())
}

#[workflow]
async fn stalls_wf(
    ctx: WorkflowContext,
) -> Result<(Option<TimeoutKind>, Option<u32>, Option<String>), WorkflowError> {
    match ctx.activity(stalls, ()).await {
        Ok(()) => Err(WorkflowError::application("Unexpected", "no timeout")),
        Err(e) => Ok((e.timeout_kind(), e.attempts(), e.details::<String>())),
    }
}

async fn heartbeat_timeout_retries_with_details(db: &TestDb) {
    let w = worker(&db.store)
        .register(stalls)
        .register(stalls_wf)
        .start();
    let client = Client::new(&db.store);
    let id = wid(db, "stalls");
    let h = client.start(stalls_wf, id.clone(), ()).await.unwrap();
    let (kind, attempts, details) = within(LIMIT, "stalls", h.result()).await.unwrap();
    assert_eq!(kind, Some(TimeoutKind::Heartbeat));
    assert_eq!(attempts, Some(2));
    assert_eq!(
        details.as_deref(),
        Some("progress-2"),
        "the timeout carries the last details"
    );
    assert_eq!(
        noted(&id),
        vec![
            "attempt 1 saw None".to_string(),
            "attempt 2 saw Some(\"progress-1\")".to_string()
        ],
        "the next attempt resumes from the last heartbeat"
    );
    stop(w).await;
}

// ---------------------------------------------------------------------------------------------
// Cancel delivery.

/// Waits for a cancel and reports how it saw it: `ctx.cancelled()`, `is_cancelled()`, `heartbeat()`.
#[activity(heartbeat_timeout = "30s")]
async fn listens(ctx: ActivityContext) -> Result<(), ActivityError> {
    ctx.heartbeat(&"started")?;
    ctx.cancelled().await;
    note(&ctx, &format!("is_cancelled={}", ctx.is_cancelled()));
    match ctx.heartbeat(&"cleaning up") {
        Err(e) if e.is_cancelled() => {
            note(&ctx, "heartbeat returned Cancelled");
            Err(e)
        }
        other => Err(ActivityError::application(
            "Unexpected",
            format!("{other:?}"),
        )),
    }
}

#[workflow]
async fn cancel_after_wf(ctx: WorkflowContext, ms: u64) -> Result<String, WorkflowError> {
    let h = ctx
        .activity(listens, ())
        .cancellation_type(CancellationType::WaitCancellationCompleted)
        .start();
    ctx.sleep(Duration::from_millis(ms)).await?;
    h.cancel();
    match h.await {
        Err(e) if e.is_cancelled() => Ok("cancelled".into()),
        other => Ok(format!("{other:?}")),
    }
}

async fn in_process_cancel_arrives_at_once(db: &TestDb) {
    let w = worker(&db.store)
        .register(listens)
        .register(cancel_after_wf)
        .start();
    let client = Client::new(&db.store);
    let id = wid(db, "in-process");
    let h = client
        .start(cancel_after_wf, id.clone(), 200)
        .await
        .unwrap();
    // The heartbeat timeout is 30 s, so stored heartbeats are 24 s apart: only in-process delivery can
    // end this within the limit.
    assert_eq!(
        within(LIMIT, "cancel", h.result()).await.unwrap(),
        "cancelled"
    );
    assert_eq!(
        noted(&id),
        vec![
            "is_cancelled=true".to_string(),
            "heartbeat returned Cancelled".to_string()
        ]
    );
    let hist = client.history(&id).await.unwrap();
    assert_eq!(
        count(&hist, |k| matches!(
            k,
            EventKind::ActivityCancelRequested { .. }
        )),
        1
    );
    assert_eq!(
        count(&hist, |k| matches!(k, EventKind::ActivityCancelled { .. })),
        1
    );
    stop(w).await;
}

/// Heartbeats every 50 ms until the heartbeat says it is cancelled.
#[activity(heartbeat_timeout = "1s")]
async fn beats(ctx: ActivityContext) -> Result<String, ActivityError> {
    let mut i = 0u32;
    loop {
        i += 1;
        if let Err(e) = ctx.heartbeat(&i) {
            note(&ctx, "heard the cancel through a heartbeat");
            return Err(e);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[workflow]
async fn cancel_beats_wf(ctx: WorkflowContext) -> Result<String, WorkflowError> {
    let h = ctx
        .activity(beats, ())
        .cancellation_type(CancellationType::WaitCancellationCompleted)
        .start();
    ctx.sleep(Duration::from_millis(300)).await?;
    h.cancel();
    match h.await {
        Err(e) if e.is_cancelled() => Ok("cancelled".into()),
        other => Ok(format!("{other:?}")),
    }
}

async fn cross_process_cancel_arrives_through_the_store(db: &TestDb) {
    // Two handles on one database, as two processes have: workflows run on one, activities on the
    // other, so the cancel can only travel through the store, at a heartbeat.
    let other = db.reopen().await;
    let wf_worker = worker(&db.store).register(cancel_beats_wf).start();
    let act_worker = worker(&other).register(beats).start();
    let client = Client::new(&db.store);
    let id = wid(db, "cross-process");
    let h = client.start(cancel_beats_wf, id.clone(), ()).await.unwrap();
    assert_eq!(
        within(LIMIT, "cancel", h.result()).await.unwrap(),
        "cancelled"
    );
    assert_eq!(
        noted(&id),
        vec!["heard the cancel through a heartbeat".to_string()]
    );
    stop(wf_worker).await;
    stop(act_worker).await;
}

// ---------------------------------------------------------------------------------------------
// Appearing cancelled, and the cancellation types.

/// Hears the cancel and ignores it: returns a result.
#[activity(heartbeat_timeout = "30s")]
async fn swallows(ctx: ActivityContext) -> Result<String, ActivityError> {
    ctx.heartbeat(&"waiting")?;
    ctx.cancelled().await;
    Ok("finished anyway".into())
}

#[workflow]
async fn swallow_wf(ctx: WorkflowContext) -> Result<String, WorkflowError> {
    let h = ctx
        .activity(swallows, ())
        .cancellation_type(CancellationType::WaitCancellationCompleted)
        .start();
    ctx.sleep(Duration::from_millis(100)).await?;
    h.cancel();
    Ok(h.await?)
}

async fn swallowed_cancel_completes(db: &TestDb) {
    let w = worker(&db.store)
        .register(swallows)
        .register(swallow_wf)
        .start();
    let client = Client::new(&db.store);
    let id = wid(db, "swallow");
    let h = client.start(swallow_wf, id.clone(), ()).await.unwrap();
    assert_eq!(
        within(LIMIT, "swallow", h.result()).await.unwrap(),
        "finished anyway"
    );
    let hist = client.history(&id).await.unwrap();
    assert_eq!(
        count(&hist, |k| matches!(k, EventKind::ActivityCompleted { .. })),
        1
    );
    assert_eq!(
        count(&hist, |k| matches!(k, EventKind::ActivityCancelled { .. })),
        0
    );
    stop(w).await;
}

/// Hears the cancel, takes 600 ms to clean up, then ends cancelled.
#[activity(heartbeat_timeout = "30s")]
async fn slow_cleanup(ctx: ActivityContext) -> Result<(), ActivityError> {
    ctx.heartbeat(&"waiting")?;
    ctx.cancelled().await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    note(&ctx, "cleanup done");
    Err(ActivityError::cancelled())
}

/// Ignores cancels (it would never hear one under `Abandon`): runs 300 ms and returns.
#[activity(heartbeat_timeout = "30s")]
async fn runs_on(ctx: ActivityContext) -> Result<String, ActivityError> {
    ctx.heartbeat(&"started")?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    note(
        &ctx,
        &format!("runs_on finished, cancelled={}", ctx.is_cancelled()),
    );
    Ok("done".into())
}

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Mode {
    Try,
    Abandon,
    BeforeStart,
}

#[workflow]
async fn types_wf(ctx: WorkflowContext, mode: Mode) -> Result<String, WorkflowError> {
    match mode {
        Mode::Try => {
            let h = ctx.activity(slow_cleanup, ()).start();
            ctx.sleep(Duration::from_millis(100)).await?;
            h.cancel();
            // TryCancel: the handle resolves at once, without waiting for the cleanup.
            let r = h.await;
            Ok(format!("{}", r.unwrap_err().is_cancelled()))
        }
        Mode::Abandon => {
            let h = ctx
                .activity(runs_on, ())
                .cancellation_type(CancellationType::Abandon)
                .start();
            h.cancel();
            let r = h.await;
            // Stay alive long enough for the abandoned activity to finish.
            ctx.sleep(Duration::from_millis(800)).await?;
            Ok(format!("{}", r.unwrap_err().is_cancelled()))
        }
        Mode::BeforeStart => {
            let h = ctx
                .activity(runs_on, ())
                .task_queue("nobody-polls-this")
                .cancellation_type(CancellationType::WaitCancellationCompleted)
                .start();
            ctx.sleep(Duration::from_millis(50)).await?;
            h.cancel();
            Ok(format!("{}", h.await.unwrap_err().is_cancelled()))
        }
    }
}

async fn cancellation_types(db: &TestDb) {
    let w = worker(&db.store)
        .register(slow_cleanup)
        .register(runs_on)
        .register(types_wf)
        .start();
    let client = Client::new(&db.store);

    let id = wid(db, "try-cancel");
    let h = client.start(types_wf, id.clone(), Mode::Try).await.unwrap();
    assert_eq!(within(LIMIT, "try", h.result()).await.unwrap(), "true");
    assert!(
        noted(&id).is_empty(),
        "the workflow ended before the activity's cleanup finished"
    );
    let hist = client.history(&id).await.unwrap();
    assert_eq!(
        count(&hist, |k| matches!(
            k,
            EventKind::ActivityCancelRequested { .. }
        )),
        1
    );
    eventually(LIMIT, "cleanup ran", || async { !noted(&id).is_empty() }).await;

    let id = wid(db, "abandon");
    let h = client
        .start(types_wf, id.clone(), Mode::Abandon)
        .await
        .unwrap();
    assert_eq!(within(LIMIT, "abandon", h.result()).await.unwrap(), "true");
    let hist = client.history(&id).await.unwrap();
    assert_eq!(
        count(&hist, |k| matches!(
            k,
            EventKind::ActivityCancelRequested { .. }
        )),
        0,
        "Abandon sends no request"
    );
    assert_eq!(
        count(&hist, |k| matches!(k, EventKind::ActivityCompleted { .. })),
        1
    );
    assert_eq!(
        noted(&id),
        vec!["runs_on finished, cancelled=false".to_string()]
    );

    let id = wid(db, "before-start");
    let h = client
        .start(types_wf, id.clone(), Mode::BeforeStart)
        .await
        .unwrap();
    assert_eq!(
        within(LIMIT, "before start", h.result()).await.unwrap(),
        "true"
    );
    let hist = client.history(&id).await.unwrap();
    assert_eq!(
        count(&hist, |k| matches!(k, EventKind::ActivityStarted { .. })),
        0
    );
    assert_eq!(
        count(&hist, |k| matches!(k, EventKind::ActivityCancelled { .. })),
        1
    );
    assert!(noted(&id).is_empty(), "a withdrawn task never runs");
    stop(w).await;
}

// ---------------------------------------------------------------------------------------------
// Local activities.

struct Guard(String);
impl Drop for Guard {
    fn drop(&mut self) {
        support::note_for(&self.0, "drop guard ran");
    }
}

/// Fails its first attempt; reports whether it runs as a local activity.
#[activity(retry(initial_interval = "10ms"))]
async fn local_flaky(ctx: ActivityContext, x: i64) -> Result<(i64, u32, bool), ActivityError> {
    if ctx.info().attempt == 1 {
        return Err(ActivityError::application("Flaky", "first attempt fails"));
    }
    Ok((x * 2, ctx.info().attempt, ctx.info().is_local))
}

/// Loops with no heartbeats; a `Drop` guard reports when its future is dropped.
#[activity]
async fn local_loop(ctx: ActivityContext) -> Result<(), ActivityError> {
    let _guard = Guard(ctx.info().workflow_id.clone());
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[workflow]
async fn local_wf(ctx: WorkflowContext) -> Result<((i64, u32, bool), bool), WorkflowError> {
    let first = ctx.local_activity(local_flaky, 21).await?;
    // `local_loop` declares no heartbeat timeout, yet a local call can always be cancelled.
    let h = ctx
        .local_activity(local_loop, ())
        .cancellation_type(CancellationType::WaitCancellationCompleted)
        .start();
    ctx.sleep(Duration::from_millis(150)).await?;
    h.cancel();
    let cancelled = h.await.unwrap_err().is_cancelled();
    Ok((first, cancelled))
}

async fn local_activities_retry_record_and_cancel(db: &TestDb) {
    let w = worker(&db.store)
        .register(local_flaky)
        .register(local_loop)
        .register(local_wf)
        .start();
    let client = Client::new(&db.store);
    let id = wid(db, "local");
    let h = client.start(local_wf, id.clone(), ()).await.unwrap();
    let ((v, attempt, is_local), cancelled) = within(LIMIT, "local", h.result()).await.unwrap();
    assert_eq!((v, attempt, is_local), (42, 2, true));
    assert!(cancelled);
    assert_eq!(noted(&id), vec!["drop guard ran".to_string()]);
    let hist = client.history(&id).await.unwrap();
    assert!(hist.iter().any(|e| matches!(
        &e.kind,
        EventKind::LocalActivityMarker { activity_seq: 1, result: Ok(v) } if v == &serde_json::json!([42, 2, true])
    )));
    assert_eq!(
        count(&hist, |k| matches!(k, EventKind::ActivityCancelled { .. })),
        1
    );
    assert_eq!(
        count(&hist, |k| matches!(k, EventKind::ActivityStarted { .. })),
        0,
        "local activities take no task from the store"
    );
    stop(w).await;
}

// ---------------------------------------------------------------------------------------------
// Workflow end and workflow cancellation.

#[workflow]
async fn leaves_early_wf(ctx: WorkflowContext) -> Result<(), WorkflowError> {
    let _h = ctx.activity(beats, ()).start();
    ctx.sleep(Duration::from_millis(150)).await?;
    Ok(())
}

async fn workflow_end_cancels_outstanding_activities(db: &TestDb) {
    let w = worker(&db.store)
        .register(beats)
        .register(leaves_early_wf)
        .start();
    let client = Client::new(&db.store);
    let id = wid(db, "leaves-early");
    let h = client.start(leaves_early_wf, id.clone(), ()).await.unwrap();
    within(LIMIT, "ends", h.result()).await.unwrap();
    eventually(LIMIT, "the activity heard the cancel", || async {
        noted(&id) == vec!["heard the cancel through a heartbeat".to_string()]
    })
    .await;
    stop(w).await;
}

#[activity]
async fn cleanup(ctx: ActivityContext) -> Result<(), ActivityError> {
    note(&ctx, "cleanup activity ran");
    Ok(())
}

#[workflow]
async fn cancellable_wf(ctx: WorkflowContext) -> Result<(), WorkflowError> {
    let h = ctx
        .activity(listens, ())
        .cancellation_type(CancellationType::WaitCancellationCompleted)
        .start();
    let slept = ctx.sleep(Duration::from_secs(3600)).await;
    if let Err(e) = slept {
        // Cancelled: the sleep ended at once, and the activity was asked to cancel. Cleanup runs
        // in the detached scope: the main scope no longer schedules anything.
        let r = h.await;
        let _ = ctx.cancelled().await;
        assert!(ctx.is_cancelled());
        ctx.detached().activity(cleanup, ()).await?;
        if r.map_err(|e| e.is_cancelled()) == Err(true) {
            return Err(e);
        }
        return Err(WorkflowError::application(
            "Unexpected",
            "activity not cancelled",
        ));
    }
    Ok(())
}

async fn client_cancel_of_a_workflow(db: &TestDb) {
    let w = worker(&db.store)
        .register(listens)
        .register(cleanup)
        .register(cancellable_wf)
        .start();
    let client = Client::new(&db.store);
    let id = wid(db, "wf-cancel");
    let h = client.start(cancellable_wf, id.clone(), ()).await.unwrap();
    eventually(LIMIT, "timer started", || async {
        client
            .history(&id)
            .await
            .unwrap()
            .iter()
            .any(|e| matches!(e.kind, EventKind::TimerStarted { .. }))
    })
    .await;
    assert!(h.cancel().await.unwrap());
    match within(LIMIT, "cancelled", h.result()).await {
        Err(Error::WorkflowCancelled) => {}
        other => panic!("expected cancelled, got {other:?}"),
    }
    assert_eq!(
        noted(&id),
        vec![
            "is_cancelled=true".to_string(),
            "heartbeat returned Cancelled".to_string(),
            "cleanup activity ran".to_string()
        ]
    );
    let hist = client.history(&id).await.unwrap();
    for (what, n) in [
        ("workflow_cancel_requested", 1),
        ("timer_cancelled", 1),
        ("activity_cancel_requested", 1),
        ("activity_cancelled", 1),
        ("activity_completed", 1),
        ("workflow_cancelled", 1),
    ] {
        assert_eq!(count(&hist, |k| k.name() == what), n, "{what}");
    }
    assert_eq!(
        client.describe(&id).await.unwrap().status,
        WorkflowStatus::Cancelled
    );
    stop(w).await;
}

// ---------------------------------------------------------------------------------------------
// Activity info.

/// Attempt 1 heartbeats its idempotency key and fails; attempt 2 returns its info and that key.
#[activity(heartbeat_timeout = "2s", retry(initial_interval = "10ms"))]
async fn info_probe(ctx: ActivityContext) -> Result<(ActivityInfo, Option<String>), ActivityError> {
    if ctx.info().attempt == 1 {
        ctx.heartbeat(&ctx.info().idempotency_key)?;
        return Err(ActivityError::application("Retry", "once more"));
    }
    Ok((ctx.info().clone(), ctx.heartbeat_details()))
}

#[workflow]
async fn info_wf(
    ctx: WorkflowContext,
) -> Result<(ActivityInfo, Option<String>, ActivityInfo), WorkflowError> {
    let (remote, key) = ctx.activity(info_probe, ()).await?;
    let (local, _) = ctx.local_activity(info_probe, ()).await?;
    Ok((remote, key, local))
}

async fn activity_info(db: &TestDb) {
    let w = worker(&db.store)
        .register(info_probe)
        .register(info_wf)
        .start();
    let client = Client::new(&db.store);
    let id = wid(db, "info");
    let h = client.start(info_wf, id.clone(), ()).await.unwrap();
    let (info, key, local) = within(LIMIT, "info", h.result()).await.unwrap();
    let d = client.describe(&id).await.unwrap();
    assert_eq!(info.attempt, 2);
    assert_eq!(info.activity_type, "info_probe");
    assert_eq!(info.activity_id, "1");
    assert_eq!(info.workflow_id, id);
    assert_eq!(info.run_id, d.run_id);
    assert_eq!(info.task_queue, "default");
    assert_eq!(info.heartbeat_timeout, Some(Duration::from_secs(2)));
    assert!(!info.is_local);
    assert!(info.deadline.unwrap() > info.started_time);
    assert!(info.started_time >= info.scheduled_time);
    assert_eq!(
        key.as_deref(),
        Some(info.idempotency_key.as_str()),
        "stable across attempts"
    );
    assert!(local.is_local);
    assert_eq!(local.attempt, 2);
    assert_ne!(local.idempotency_key, info.idempotency_key);
    stop(w).await;
}

store_tests!(memory:
    heartbeats_are_throttled_extend_the_lease_and_are_flushed,
    heartbeat_timeout_retries_with_details,
    in_process_cancel_arrives_at_once,
    swallowed_cancel_completes,
    cancellation_types,
    local_activities_retry_record_and_cancel,
    workflow_end_cancels_outstanding_activities,
    client_cancel_of_a_workflow,
    activity_info,
);

mod reopened {
    use super::*;
    store_tests!(cross_process_cancel_arrives_through_the_store);
}
