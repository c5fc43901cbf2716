//! Workflow cancellation as Temporal has it, on every store: once a workflow has seen its cancel
//! request, an activity or a timer started in its main scope resolves `Cancelled` at once without
//! being scheduled, while work started through `ctx.detached()` is scheduled normally and is not
//! cancelled by the workflow's cancel. Histories written either way replay on a fresh worker.

mod support;

use duraflow::prelude::*;
use duraflow::{
    Client, Error, EventKind, HistoryEvent, Store, Worker, WorkerHandle, WorkerOptions,
    WorkflowStatus,
};
use support::{eventually, note, note_for, noted, wid, within, TestDb};

const LIMIT: Duration = Duration::from_secs(20);

fn worker(store: &Store) -> Worker {
    let mut o = WorkerOptions::default();
    o.poll_interval = Duration::from_millis(200);
    o.shutdown_grace = Duration::from_secs(2);
    Worker::new(store).options(o)
}

async fn stop(w: WorkerHandle) {
    within(Duration::from_secs(10), "worker shutdown", w.shutdown()).await;
}

fn count(h: &[HistoryEvent], pred: impl Fn(&EventKind) -> bool) -> usize {
    h.iter().filter(|e| pred(&e.kind)).count()
}

/// The events recorded after the workflow's cancel request.
fn after_cancel_request(h: &[HistoryEvent]) -> &[HistoryEvent] {
    let at = h
        .iter()
        .position(|e| matches!(e.kind, EventKind::WorkflowCancelRequested {}))
        .expect("a workflow_cancel_requested event");
    &h[at + 1..]
}

fn scheduled_types(h: &[HistoryEvent]) -> Vec<String> {
    h.iter()
        .filter_map(|e| match &e.kind {
            EventKind::ActivityScheduled { activity_type, .. } => Some(activity_type.clone()),
            _ => None,
        })
        .collect()
}

/// "ok", "cancelled", or the error.
fn outcome<T>(r: &Result<T, impl std::fmt::Debug + IsCancelled>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) if e.cancelled() => "cancelled".into(),
        Err(e) => format!("{e:?}"),
    }
}

trait IsCancelled {
    fn cancelled(&self) -> bool;
}
impl IsCancelled for ActivityError {
    fn cancelled(&self) -> bool {
        self.is_cancelled()
    }
}
impl IsCancelled for WorkflowError {
    fn cancelled(&self) -> bool {
        self.is_cancelled()
    }
}

// ---------------------------------------------------------------------------------------------
// The saga: reserve, charge, ship; compensations newest first, in the detached scope.

#[activity]
async fn reserve(ctx: ActivityContext) -> Result<(), ActivityError> {
    note(&ctx, "reserve");
    Ok(())
}

/// Charges the card: once begun it cannot be interrupted, so it hears a cancel and finishes anyway.
#[activity(heartbeat_timeout = "30s")]
async fn charge(ctx: ActivityContext) -> Result<(), ActivityError> {
    ctx.heartbeat(&"charging")?;
    note(&ctx, "charging");
    let _ = tokio::time::timeout(Duration::from_secs(30), ctx.cancelled()).await;
    note(&ctx, "charged");
    Ok(())
}

#[activity]
async fn ship(ctx: ActivityContext) -> Result<(), ActivityError> {
    note(&ctx, "ship");
    Ok(())
}

#[activity]
async fn refund(ctx: ActivityContext) -> Result<(), ActivityError> {
    note(&ctx, "refund");
    Ok(())
}

#[activity]
async fn release(ctx: ActivityContext) -> Result<(), ActivityError> {
    note(&ctx, "release");
    Ok(())
}

#[workflow]
async fn saga_wf(ctx: WorkflowContext) -> Result<(), WorkflowError> {
    let mut undo: Vec<&'static str> = Vec::new();
    let steps = async {
        ctx.activity(reserve, ()).await?;
        undo.push("release");
        ctx.activity(charge, ())
            .cancellation_type(CancellationType::WaitCancellationCompleted)
            .await?;
        undo.push("refund");
        ctx.activity(ship, ()).await?;
        Ok::<(), ActivityError>(())
    }
    .await;
    if let Err(e) = steps {
        let shielded = ctx.detached();
        for step in undo.iter().rev() {
            match *step {
                "refund" => shielded.activity(refund, ()).await?,
                _ => shielded.activity(release, ()).await?,
            }
        }
        return Err(e.into());
    }
    Ok(())
}

fn saga_worker(store: &Store) -> WorkerHandle {
    worker(store)
        .register(reserve)
        .register(charge)
        .register(ship)
        .register(refund)
        .register(release)
        .register(saga_wf)
        .start()
}

/// (1) Cancelled before any worker picked it up: no activity is scheduled, none runs, and the
/// workflow ends `Cancelled`.
async fn cancelled_before_it_ran_runs_no_activity(db: &TestDb) {
    let client = Client::new(&db.store);
    let id = wid(db, "early-cancel");
    let h = client.start(saga_wf, id.clone(), ()).await.unwrap();
    assert!(h.cancel().await.unwrap());
    let w = saga_worker(&db.store);
    match within(LIMIT, "cancelled", h.result()).await {
        Err(Error::WorkflowCancelled) => {}
        other => panic!("expected cancelled, got {other:?}"),
    }
    assert_eq!(noted(&id), Vec::<String>::new(), "no side effect ran");
    let hist = client.history(&id).await.unwrap();
    assert_eq!(
        scheduled_types(&hist),
        Vec::<String>::new(),
        "nothing was scheduled"
    );
    let names: Vec<&str> = hist.iter().map(|e| e.kind.name()).collect();
    assert_eq!(
        names,
        vec![
            "workflow_started",
            "workflow_cancel_requested",
            "workflow_cancelled",
            "workflow_task_completed"
        ]
    );
    assert_eq!(
        client.describe(&id).await.unwrap().status,
        WorkflowStatus::Cancelled
    );
    stop(w).await;
}

/// (3) Cancelled while `charge` runs: the charge hears the cancel and completes anyway, `ship` (in
/// the main scope) resolves `Cancelled` without being scheduled, and the compensations of what was
/// done run in the detached scope, newest first, and are recorded.
async fn saga_compensates_in_the_detached_scope(db: &TestDb) {
    let w = saga_worker(&db.store);
    let client = Client::new(&db.store);
    let id = wid(db, "saga");
    let h = client.start(saga_wf, id.clone(), ()).await.unwrap();
    eventually(LIMIT, "charge running", || async {
        noted(&id).contains(&"charging".to_string())
    })
    .await;
    assert!(h.cancel().await.unwrap());
    match within(LIMIT, "cancelled", h.result()).await {
        Err(Error::WorkflowCancelled) => {}
        other => panic!("expected cancelled, got {other:?}"),
    }
    assert_eq!(
        noted(&id),
        vec!["reserve", "charging", "charged", "refund", "release"],
        "ship never ran; the compensations did, newest first"
    );
    let hist = client.history(&id).await.unwrap();
    let after = after_cancel_request(&hist);
    assert_eq!(
        scheduled_types(after),
        vec!["refund", "release"],
        "after the request, only the compensations were scheduled"
    );
    assert_eq!(
        count(after, |k| matches!(k, EventKind::ActivityCompleted { .. })),
        3,
        "charge, refund and release completed after the request"
    );
    assert_eq!(
        count(&hist, |k| matches!(
            k,
            EventKind::ActivityCancelRequested { activity_seq: 2 }
        )),
        1,
        "the pending charge was asked to cancel, by its cancellation type"
    );
    assert_eq!(
        hist.last().map(|e| e.kind.name()),
        Some("workflow_task_completed")
    );
    assert_eq!(
        count(&hist, |k| matches!(k, EventKind::WorkflowCancelled {})),
        1
    );
    stop(w).await;
}

// ---------------------------------------------------------------------------------------------
// (2) A pending activity and the work started after the cancel.

/// Waits for the cancel (30 s at most) and returns it.
#[activity(heartbeat_timeout = "30s")]
async fn listens(ctx: ActivityContext) -> Result<(), ActivityError> {
    ctx.heartbeat(&"listening")?;
    note(&ctx, "listening");
    let _ = tokio::time::timeout(Duration::from_secs(30), ctx.cancelled()).await;
    note(&ctx, "heard the cancel");
    Err(ActivityError::cancelled())
}

#[workflow]
async fn after_cancel_wf(ctx: WorkflowContext) -> Result<String, WorkflowError> {
    let first = ctx
        .activity(listens, ())
        .cancellation_type(CancellationType::WaitCancellationCompleted)
        .await;
    let second = ctx.activity(reserve, ()).await;
    let local = ctx.local_activity(reserve, ()).await;
    Ok(format!(
        "first={} second={} local={}",
        outcome(&first),
        outcome(&second),
        outcome(&local)
    ))
}

async fn work_started_after_the_cancel_resolves_cancelled_at_once(db: &TestDb) {
    let w = worker(&db.store)
        .register(listens)
        .register(reserve)
        .register(after_cancel_wf)
        .start();
    let client = Client::new(&db.store);
    let id = wid(db, "after-cancel");
    let h = client.start(after_cancel_wf, id.clone(), ()).await.unwrap();
    eventually(LIMIT, "the first activity running", || async {
        noted(&id).contains(&"listening".to_string())
    })
    .await;
    assert!(h.cancel().await.unwrap());
    assert_eq!(
        within(LIMIT, "result", h.result()).await.unwrap(),
        "first=cancelled second=cancelled local=cancelled"
    );
    assert_eq!(
        noted(&id),
        vec!["listening", "heard the cancel"],
        "nothing ran after the cancel"
    );
    let hist = client.history(&id).await.unwrap();
    let after = after_cancel_request(&hist);
    // The attempt hears the cancel in process before the request's commit is durable, so its
    // cancellation may be recorded before or after the request: the order of those two is free.
    let mut names: Vec<&str> = after.iter().map(|e| e.kind.name()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        vec![
            "activity_cancel_requested",
            "activity_cancelled",
            "workflow_completed",
            "workflow_task_completed",
            "workflow_task_completed"
        ],
        "the pending activity was cancelled by its type; nothing was scheduled after the request"
    );
    assert_eq!(
        after.last().map(|e| e.kind.name()),
        Some("workflow_task_completed")
    );
    stop(w).await;
}

// ---------------------------------------------------------------------------------------------
// (4) Timers, and a detached activity started before the cancel.

#[workflow]
async fn timers_wf(ctx: WorkflowContext) -> Result<String, WorkflowError> {
    let shielded = ctx.detached().sleep(Duration::from_millis(1500));
    let parked = ctx.sleep(Duration::from_secs(3600)).await;
    let main_after = ctx.sleep(Duration::from_millis(10)).await;
    let detached_after = ctx.detached().sleep(Duration::from_millis(10)).await;
    let shielded = shielded.await;
    Ok(format!(
        "parked={} main_after={} detached_after={} shielded={}",
        outcome(&parked),
        outcome(&main_after),
        outcome(&detached_after),
        outcome(&shielded)
    ))
}

async fn main_scope_timers_end_at_once_detached_ones_fire(db: &TestDb) {
    let w = worker(&db.store).register(timers_wf).start();
    let client = Client::new(&db.store);
    let id = wid(db, "timers");
    let h = client.start(timers_wf, id.clone(), ()).await.unwrap();
    eventually(LIMIT, "both timers started", || async {
        count(&client.history(&id).await.unwrap(), |k| {
            matches!(k, EventKind::TimerStarted { .. })
        }) == 2
    })
    .await;
    assert!(h.cancel().await.unwrap());
    assert_eq!(
        within(LIMIT, "result", h.result()).await.unwrap(),
        "parked=cancelled main_after=cancelled detached_after=ok shielded=ok"
    );
    let hist = client.history(&id).await.unwrap();
    let started: Vec<u64> = hist
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::TimerStarted { timer_seq, .. } => Some(timer_seq),
            _ => None,
        })
        .collect();
    assert_eq!(
        started,
        vec![1, 2, 4],
        "the main-scope timer 3 never started"
    );
    let cancelled: Vec<u64> = hist
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::TimerCancelled { timer_seq } => Some(timer_seq),
            _ => None,
        })
        .collect();
    assert_eq!(
        cancelled,
        vec![2],
        "only the main-scope timer was cancelled"
    );
    let mut fired: Vec<u64> = hist
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::TimerFired { timer_seq } => Some(timer_seq),
            _ => None,
        })
        .collect();
    fired.sort_unstable();
    assert_eq!(fired, vec![1, 4], "both detached timers fired");
    stop(w).await;
}

/// Heartbeats until the test says go; reports whether it heard a cancel.
#[activity(heartbeat_timeout = "30s")]
async fn audit(ctx: ActivityContext) -> Result<bool, ActivityError> {
    let id = ctx.info().workflow_id.clone();
    note(&ctx, "auditing");
    for _ in 0..1500 {
        if ctx.heartbeat(&"auditing").is_err() || noted(&id).contains(&"go".to_string()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(ctx.is_cancelled())
}

#[workflow]
async fn audit_wf(ctx: WorkflowContext) -> Result<String, WorkflowError> {
    let auditing = ctx.detached().activity(audit, ()).start();
    let parked = ctx.sleep(Duration::from_secs(3600)).await;
    let heard = auditing.await?;
    Ok(format!(
        "parked={} audit_heard_cancel={heard}",
        outcome(&parked)
    ))
}

async fn detached_activity_outlives_the_cancel(db: &TestDb) {
    let w = worker(&db.store).register(audit).register(audit_wf).start();
    let client = Client::new(&db.store);
    let id = wid(db, "audit");
    let h = client.start(audit_wf, id.clone(), ()).await.unwrap();
    eventually(LIMIT, "audit running and timer started", || async {
        noted(&id).contains(&"auditing".to_string())
            && count(&client.history(&id).await.unwrap(), |k| {
                matches!(k, EventKind::TimerStarted { .. })
            }) == 1
    })
    .await;
    assert!(h.cancel().await.unwrap());
    // The workflow saw the cancel once its main-scope timer was cancelled.
    eventually(LIMIT, "the cancel seen", || async {
        count(&client.history(&id).await.unwrap(), |k| {
            matches!(k, EventKind::TimerCancelled { .. })
        }) == 1
    })
    .await;
    note_for(&id, "go");
    assert_eq!(
        within(LIMIT, "result", h.result()).await.unwrap(),
        "parked=cancelled audit_heard_cancel=false"
    );
    let hist = client.history(&id).await.unwrap();
    assert_eq!(
        count(&hist, |k| matches!(
            k,
            EventKind::ActivityCancelRequested { .. }
        )),
        0,
        "the detached activity was not asked to cancel"
    );
    assert_eq!(
        count(after_cancel_request(&hist), |k| matches!(
            k,
            EventKind::ActivityCompleted { .. }
        )),
        1
    );
    stop(w).await;
}

// ---------------------------------------------------------------------------------------------
// (5) Replay on a fresh worker.

#[activity]
async fn cleanup(ctx: ActivityContext) -> Result<(), ActivityError> {
    note(&ctx, "cleanup");
    Ok(())
}

/// Registered only on the second worker, so the workflow waits for it across the restart.
#[activity]
async fn finish(ctx: ActivityContext) -> Result<(), ActivityError> {
    note(&ctx, "finish");
    Ok(())
}

/// After the cancel: a main-scope activity and sleep (no commands), then detached work.
#[workflow]
async fn replay_wf(ctx: WorkflowContext) -> Result<String, WorkflowError> {
    let parked = ctx.sleep(Duration::from_secs(3600)).await;
    let main_activity = ctx.activity(reserve, ()).await;
    let main_sleep = ctx.sleep(Duration::from_millis(10)).await;
    let cleanup_scope = ctx.detached();
    cleanup_scope.activity(cleanup, ()).await?;
    cleanup_scope.sleep(Duration::from_millis(10)).await?;
    cleanup_scope.activity(finish, ()).await?;
    Ok(format!(
        "parked={} main_activity={} main_sleep={}",
        outcome(&parked),
        outcome(&main_activity),
        outcome(&main_sleep)
    ))
}

/// Waits for the workflow to end or be held; fails, with the reason, if it was held.
async fn ends_without_being_held(client: &Client, id: &str) {
    eventually(LIMIT, "the workflow ends or is held", || async {
        let d = client.describe(id).await.unwrap();
        d.status != WorkflowStatus::Running || d.held_reason.is_some()
    })
    .await;
    let d = client.describe(id).await.unwrap();
    assert_eq!(d.held_reason, None, "the history no longer replays");
}

/// Waits for `finish` to be scheduled: the first worker can go no further.
async fn wait_for_finish_scheduled(client: &Client, id: &str) {
    eventually(LIMIT, "finish scheduled", || async {
        scheduled_types(&client.history(id).await.unwrap()).contains(&"finish".to_string())
    })
    .await;
}

async fn cancelled_history_replays_on_a_fresh_worker(db: &TestDb) {
    let client = Client::new(&db.store);
    let id = wid(db, "replay");
    let first = worker(&db.store)
        .register(reserve)
        .register(cleanup)
        .register(replay_wf)
        .start();
    let h = client.start(replay_wf, id.clone(), ()).await.unwrap();
    eventually(LIMIT, "timer started", || async {
        count(&client.history(&id).await.unwrap(), |k| {
            matches!(k, EventKind::TimerStarted { .. })
        }) == 1
    })
    .await;
    assert!(h.cancel().await.unwrap());
    wait_for_finish_scheduled(&client, &id).await;
    stop(first).await;

    // A fresh worker (empty cache) runs `finish`, then replays the whole history to go on.
    let second = worker(&db.store)
        .register(reserve)
        .register(cleanup)
        .register(finish)
        .register(replay_wf)
        .start();
    ends_without_being_held(&client, &id).await;
    assert_eq!(
        within(LIMIT, "result", h.result()).await.unwrap(),
        "parked=cancelled main_activity=cancelled main_sleep=cancelled"
    );
    let d = client.describe(&id).await.unwrap();
    assert_eq!(d.held_reason, None);
    assert_eq!(d.status, WorkflowStatus::Completed);
    assert_eq!(noted(&id), vec!["cleanup", "finish"]);
    let hist = client.history(&id).await.unwrap();
    assert_eq!(
        scheduled_types(after_cancel_request(&hist)),
        vec!["cleanup", "finish"]
    );
    stop(second).await;
}

/// Writes what a build before `detached()` wrote for [`legacy_old`]: its history is the same.
#[workflow(name = "legacy_wf")]
async fn legacy_new(ctx: WorkflowContext) -> Result<(), WorkflowError> {
    let parked = ctx.sleep(Duration::from_secs(3600)).await;
    let cleanup_scope = ctx.detached();
    cleanup_scope.activity(cleanup, ()).await?;
    cleanup_scope.activity(finish, ()).await?;
    parked
}

/// Code written for a build before `detached()`: cleanup activities in the main scope after the
/// cancel. Its histories (scheduled after the request) keep replaying.
#[workflow(name = "legacy_wf")]
async fn legacy_old(ctx: WorkflowContext) -> Result<(), WorkflowError> {
    let parked = ctx.sleep(Duration::from_secs(3600)).await;
    ctx.activity(cleanup, ()).await?;
    ctx.activity(finish, ()).await?;
    parked
}

async fn history_with_main_scope_work_after_the_cancel_replays(db: &TestDb) {
    let client = Client::new(&db.store);
    let id = wid(db, "legacy");
    let first = worker(&db.store)
        .register(cleanup)
        .register(legacy_new)
        .start();
    let h = client.start(legacy_new, id.clone(), ()).await.unwrap();
    eventually(LIMIT, "timer started", || async {
        count(&client.history(&id).await.unwrap(), |k| {
            matches!(k, EventKind::TimerStarted { .. })
        }) == 1
    })
    .await;
    assert!(h.cancel().await.unwrap());
    wait_for_finish_scheduled(&client, &id).await;
    stop(first).await;

    // The old code, on a fresh worker, replays the history its build would have written.
    let second = worker(&db.store)
        .register(cleanup)
        .register(finish)
        .register(legacy_old)
        .start();
    ends_without_being_held(&client, &id).await;
    match within(LIMIT, "cancelled", h.result()).await {
        Err(Error::WorkflowCancelled) => {}
        other => panic!("expected cancelled, got {other:?}"),
    }
    let d = client.describe(&id).await.unwrap();
    assert_eq!(d.held_reason, None);
    assert_eq!(d.status, WorkflowStatus::Cancelled);
    assert_eq!(noted(&id), vec!["cleanup", "finish"]);
    stop(second).await;
}

store_tests!(
    cancelled_before_it_ran_runs_no_activity,
    work_started_after_the_cancel_resolves_cancelled_at_once,
    saga_compensates_in_the_detached_scope,
    main_scope_timers_end_at_once_detached_ones_fire,
    detached_activity_outlives_the_cancel,
    cancelled_history_replays_on_a_fresh_worker,
    history_with_main_scope_work_after_the_cancel_replays,
);
