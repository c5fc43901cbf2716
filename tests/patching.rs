//! Changing workflow code under running workflows: `ctx.patched`, `ctx.deprecate_patch` and
//! `ctx.side_effect`, on every store. The patch story: v1 runs halfway and stops, v2 (with the
//! patch) finishes the old run on the old branch and runs a new one on the new branch, v3 (the
//! patch deprecated) finishes v2's runs and starts its own.

mod support;

use duraflow::prelude::*;
use duraflow::{EventKind, HistoryEvent, WorkerOptions, WorkflowStatus};
use std::sync::atomic::{AtomicU64, Ordering};
use support::{eventually, stop, wid, within, TestDb};

const LIMIT: Duration = Duration::from_secs(20);

fn worker(store: &Store) -> Worker {
    let mut o = WorkerOptions::default();
    o.poll_interval = Duration::from_millis(100);
    o.held_retry_interval = Duration::from_millis(100);
    o.shutdown_grace = Duration::from_secs(2);
    Worker::new(store).options(o)
}

#[activity]
async fn old_step(x: i64) -> Result<String, ActivityError> {
    Ok(format!("old:{x}"))
}

#[activity]
async fn new_step(x: i64) -> Result<String, ActivityError> {
    Ok(format!("new:{x}"))
}

/// v1: one step, then a wait of `wait_ms` (where a run is stopped halfway).
#[workflow(name = "priced")]
async fn priced_v1(ctx: WorkflowContext, wait_ms: u64) -> Result<String, WorkflowError> {
    let step = ctx.activity(old_step, 1).await?;
    ctx.sleep(Duration::from_millis(wait_ms)).await?;
    Ok(step)
}

/// v2: the step changed, behind a patch.
#[workflow(name = "priced")]
async fn priced_v2(ctx: WorkflowContext, wait_ms: u64) -> Result<String, WorkflowError> {
    let step = if ctx.patched("new-step") {
        ctx.activity(new_step, 1).await?
    } else {
        ctx.activity(old_step, 1).await?
    };
    ctx.sleep(Duration::from_millis(wait_ms)).await?;
    Ok(step)
}

/// v3: no run from before the patch is left; only the new branch remains.
#[workflow(name = "priced")]
async fn priced_v3(ctx: WorkflowContext, wait_ms: u64) -> Result<String, WorkflowError> {
    ctx.deprecate_patch("new-step");
    let step = ctx.activity(new_step, 1).await?;
    ctx.sleep(Duration::from_millis(wait_ms)).await?;
    Ok(step)
}

async fn timer_started(client: &Client, id: &str) {
    eventually(LIMIT, "the run waits on its timer", || async {
        client
            .history(id)
            .await
            .map(|h| {
                h.iter()
                    .any(|e| matches!(e.kind, EventKind::TimerStarted { .. }))
            })
            .unwrap_or(false)
    })
    .await;
}

fn patch_markers(h: &[HistoryEvent]) -> Vec<(String, bool)> {
    h.iter()
        .filter_map(|e| match &e.kind {
            EventKind::PatchMarker {
                patch_id,
                deprecated,
            } => Some((patch_id.clone(), *deprecated)),
            _ => None,
        })
        .collect()
}

async fn result(client: &Client, id: &str) -> String {
    within(LIMIT, id, client.handle::<String>(id).result())
        .await
        .unwrap_or_else(|e| panic!("{id}: {e}"))
}

async fn patch_story(db: &TestDb) {
    let client = Client::new(&db.store);
    let (old_run, new_run, v2_run, v3_run) = (
        wid(db, "priced-old"),
        wid(db, "priced-new"),
        wid(db, "priced-v2"),
        wid(db, "priced-v3"),
    );

    // v1 runs halfway: its step is recorded, it waits on its timer. Then it stops.
    let w1 = worker(&db.store)
        .register(old_step)
        .register(priced_v1)
        .start();
    client.start(priced_v1, &old_run, 1_500).await.unwrap();
    timer_started(&client, &old_run).await;
    stop(w1).await;

    // v2, with the patch: the old run replays on the old branch and completes there; a new
    // run takes the new branch and records the marker.
    let w2 = worker(&db.store)
        .register(old_step)
        .register(new_step)
        .register(priced_v2)
        .start();
    client.start(priced_v2, &new_run, 10).await.unwrap();
    assert_eq!(result(&client, &new_run).await, "new:1");
    assert_eq!(result(&client, &old_run).await, "old:1");
    let old_h = client.history(&old_run).await.unwrap();
    assert!(
        patch_markers(&old_h).is_empty(),
        "the old run took no patch"
    );
    assert_eq!(
        client.describe(&old_run).await.unwrap().held_reason,
        None,
        "never held"
    );
    let new_h = client.history(&new_run).await.unwrap();
    assert_eq!(patch_markers(&new_h), vec![("new-step".to_string(), false)]);
    // The marker comes first and takes no command number: the activity is still #1.
    let kinds: Vec<&EventKind> = new_h.iter().map(|e| &e.kind).collect();
    assert!(matches!(kinds[1], EventKind::PatchMarker { .. }));
    assert!(matches!(
        kinds[2],
        EventKind::ActivityScheduled { activity_seq: 1, activity_type, .. } if activity_type == "new_step"
    ));

    // A v2 run stops halfway, past the patch.
    client.start(priced_v2, &v2_run, 1_500).await.unwrap();
    timer_started(&client, &v2_run).await;
    stop(w2).await;

    // v3, the patch deprecated: the v2 run (which recorded the marker) completes, and new runs
    // record a deprecated marker.
    let w3 = worker(&db.store)
        .register(new_step)
        .register(priced_v3)
        .start();
    client.start(priced_v3, &v3_run, 10).await.unwrap();
    assert_eq!(result(&client, &v3_run).await, "new:1");
    assert_eq!(result(&client, &v2_run).await, "new:1");
    assert_eq!(
        patch_markers(&client.history(&v3_run).await.unwrap()),
        vec![("new-step".to_string(), true)]
    );
    for id in [&v2_run, &v3_run] {
        let d = client.describe(id).await.unwrap();
        assert_eq!((d.status, d.held_reason), (WorkflowStatus::Completed, None));
    }
    stop(w3).await;
}

static TOKENS: AtomicU64 = AtomicU64::new(1);

/// Draws a token once (a side effect), waits, and returns it.
#[workflow(name = "tokened")]
async fn tokened(ctx: WorkflowContext, wait_ms: u64) -> Result<u64, WorkflowError> {
    let token: u64 = ctx.side_effect(|| TOKENS.fetch_add(1, Ordering::SeqCst));
    ctx.sleep(Duration::from_millis(wait_ms)).await?;
    Ok(token)
}

/// The same workflow, with the side effect's type changed.
#[workflow(name = "tokened")]
async fn tokened_as_text(ctx: WorkflowContext, wait_ms: u64) -> Result<u64, WorkflowError> {
    let token: String = ctx.side_effect(|| "text".to_string());
    ctx.sleep(Duration::from_millis(wait_ms)).await?;
    Ok(token.len() as u64)
}

async fn side_effects_are_recorded_once_and_replayed(db: &TestDb) {
    let client = Client::new(&db.store);
    let id = wid(db, "tokened");
    let w1 = worker(&db.store).register(tokened).start();
    client.start(tokened, &id, 1_000).await.unwrap();
    timer_started(&client, &id).await;
    stop(w1).await;
    let recorded = client
        .history(&id)
        .await
        .unwrap()
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::SideEffectMarker {
                side_effect_seq: 1,
                value,
            } => value.as_u64(),
            _ => None,
        })
        .expect("the side effect is recorded as command #1");
    // A new worker replays the run: the recorded value comes back, the closure does not run.
    let w2 = worker(&db.store).register(tokened).start();
    let token = within(LIMIT, "tokened", client.handle::<u64>(&id).result())
        .await
        .unwrap();
    assert_eq!(token, recorded);
    let h = client.history(&id).await.unwrap();
    let markers = h
        .iter()
        .filter(|e| matches!(e.kind, EventKind::SideEffectMarker { .. }))
        .count();
    assert_eq!(markers, 1, "recorded once");
    stop(w2).await;

    // Code that reads the side effect as another type: held, with a message naming it.
    let id = wid(db, "tokened-retyped");
    let w1 = worker(&db.store).register(tokened).start();
    client.start(tokened, &id, 60_000).await.unwrap();
    timer_started(&client, &id).await;
    stop(w1).await;
    let w2 = worker(&db.store).register(tokened_as_text).start();
    // Something for the workflow to replay for: a cancel request.
    assert!(client.cancel(&id).await.unwrap());
    eventually(LIMIT, "held for the retyped side effect", || async {
        client.describe(&id).await.unwrap().held_reason.is_some()
    })
    .await;
    let reason = client.describe(&id).await.unwrap().held_reason.unwrap();
    assert!(reason.contains("side effect #1"), "{reason}");
    assert!(reason.contains("String"), "names the type: {reason}");
    assert!(
        reason.contains("history event #2"),
        "names the event: {reason}"
    );
    stop(w2).await;
}

/// v3 meets a run from before the patch (the story's mistake: deprecating too early): the run is
/// held, the client says so, and `terminate` ends it, recorded.
async fn a_held_run_says_so_and_terminate_ends_it(db: &TestDb) {
    let client = Client::new(&db.store);
    let id = wid(db, "priced-too-early");
    let w1 = worker(&db.store)
        .register(old_step)
        .register(priced_v1)
        .start();
    client.start(priced_v1, &id, 300).await.unwrap();
    timer_started(&client, &id).await;
    stop(w1).await;
    let w3 = worker(&db.store)
        .register(new_step)
        .register(priced_v3)
        .start();
    eventually(LIMIT, "held", || async {
        client.describe(&id).await.unwrap().held_reason.is_some()
    })
    .await;
    let reason = client.describe(&id).await.unwrap().held_reason.unwrap();
    assert!(
        reason.contains("`old_step`") && reason.contains("`new_step`"),
        "{reason}"
    );
    assert!(reason.contains("ctx.patched("), "names the fix: {reason}");
    match client.handle::<String>(&id).result().await {
        Err(duraflow::Error::WorkflowHeld { reason: r, .. }) => assert_eq!(r, reason),
        other => panic!("expected WorkflowHeld, got {other:?}"),
    }
    let e = client.cancel(&id).await.unwrap_err();
    assert!(e.to_string().contains("terminate"), "says the way out: {e}");
    let before = client.history(&id).await.unwrap().len();

    assert!(client
        .terminate(&id, "deprecated the patch too early")
        .await
        .unwrap());
    match within(LIMIT, "terminated", client.handle::<String>(&id).result()).await {
        Err(duraflow::Error::WorkflowFailed(WorkflowError::Application {
            error_type,
            message,
        })) => {
            assert_eq!(error_type, "Terminated");
            assert!(
                message.contains("deprecated the patch too early"),
                "{message}"
            );
        }
        other => panic!("expected a terminated failure, got {other:?}"),
    }
    let h = client.history(&id).await.unwrap();
    assert_eq!(h.len(), before + 1, "one event records the termination");
    assert!(matches!(
        h.last().unwrap().kind,
        EventKind::WorkflowFailed { .. }
    ));
    let d = client.describe(&id).await.unwrap();
    assert_eq!((d.status, d.held_reason), (WorkflowStatus::Failed, None));
    assert!(
        !client.terminate(&id, "again").await.unwrap(),
        "already ended"
    );
    assert!(!client.cancel(&id).await.unwrap(), "already ended");
    stop(w3).await;
}

store_tests!(
    memory: patch_story,
    side_effects_are_recorded_once_and_replayed,
    a_held_run_says_so_and_terminate_ends_it
);
