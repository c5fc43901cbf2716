//! Child workflows end to end, on memory, a SQLite file and Postgres: results and typed errors
//! reaching the parent (completed, failed, cancelled through the handle, an id that is taken),
//! the child's start and end in the parent's history and the child's own history, the parent
//! close policies (`RequestCancel`, `Terminate`, `Abandon`) when the parent completes, fails, is
//! cancelled by a client or terminated, a parent's cancel reaching its main-scope children, and
//! a parent replayed by a fresh worker (the cases of temporalio/features `child_workflow/*` that
//! apply: result, signal-free cancel, start failure, parent close policies).

mod support;

use duraflow::prelude::*;
use duraflow::{EventKind, Store, Worker, WorkerOptions, WorkflowStatus};
use support::{count, eventually, stop, wid, within, TestDb};

const LIMIT: Duration = Duration::from_secs(30);

#[activity]
async fn add_one(x: u64) -> Result<u64, ActivityError> {
    Ok(x + 1)
}

/// A child: one activity.
#[workflow]
async fn adder(ctx: WorkflowContext, x: u64) -> Result<u64, WorkflowError> {
    Ok(ctx.activity(add_one, x).await?)
}

/// A child that fails.
#[workflow]
async fn declines(_ctx: WorkflowContext, why: String) -> Result<u64, WorkflowError> {
    Err(WorkflowError::application("Declined", why))
}

/// A child that waits on a durable timer (a cancel ends it `Cancelled`).
#[workflow]
async fn sleeper(ctx: WorkflowContext, secs: u64) -> Result<(), WorkflowError> {
    ctx.sleep(Duration::from_secs(secs)).await?;
    Ok(())
}

/// Two children at once, joined.
#[workflow]
async fn sum_of_children(ctx: WorkflowContext, prefix: String) -> Result<u64, WorkflowError> {
    let a = ctx
        .child_workflow(adder, 1)
        .id(format!("{prefix}-a"))
        .start();
    let b = ctx.child_workflow(adder, 10).id(format!("{prefix}-b"));
    let (a, b) = join!(a, b);
    Ok(a? + b?)
}

/// Each way a child can end without a result, as the parent sees it.
#[workflow]
async fn outcomes(ctx: WorkflowContext, prefix: String) -> Result<Vec<String>, WorkflowError> {
    let mut seen = Vec::new();
    match ctx
        .child_workflow(declines, "no funds".into())
        .id(format!("{prefix}-declines"))
        .await
    {
        Err(ChildWorkflowError::Failed { workflow_id, error }) => {
            seen.push(format!("failed {workflow_id}: {error}"))
        }
        other => seen.push(format!("unexpected {other:?}")),
    }
    match ctx
        .child_workflow(adder, 1)
        .id(format!("{prefix}-taken"))
        .await
    {
        Err(ChildWorkflowError::AlreadyStarted { workflow_id }) => {
            seen.push(format!("taken {workflow_id}"))
        }
        other => seen.push(format!("unexpected {other:?}")),
    }
    let s = ctx
        .child_workflow(sleeper, 3600)
        .id(format!("{prefix}-sleeps"))
        .start();
    ctx.sleep(Duration::from_millis(20)).await?;
    s.cancel();
    match s.await {
        Err(e @ ChildWorkflowError::Cancelled { .. }) => seen.push(e.to_string()),
        other => seen.push(format!("unexpected {other:?}")),
    }
    match ctx
        .child_workflow(sleeper, 3600)
        .id(format!("{prefix}-late"))
        .execution_timeout(Duration::from_millis(200))
        .await
    {
        Err(ChildWorkflowError::Failed { error, .. }) => seen.push(format!("late: {error}")),
        other => seen.push(format!("unexpected {other:?}")),
    }
    Ok(seen)
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Policies {
    prefix: String,
    /// `complete`, `fail`, or `wait` (for a client's cancel or termination).
    then: String,
}

/// Three children in the detached scope (the parent's own cancel does not reach them: only the
/// policy does), one per policy; then the parent ends as `then` says.
#[workflow]
async fn with_policies(ctx: WorkflowContext, p: Policies) -> Result<(), WorkflowError> {
    let scope = ctx.detached();
    for (name, policy) in [
        ("cancel", ParentClosePolicy::RequestCancel),
        ("terminate", ParentClosePolicy::Terminate),
        ("abandon", ParentClosePolicy::Abandon),
    ] {
        let _child = scope
            .child_workflow(sleeper, 3600)
            .id(format!("{}-{name}", p.prefix))
            .parent_close_policy(policy)
            .start();
    }
    // Let the children run their first task before the parent ends.
    ctx.sleep(Duration::from_millis(50)).await?;
    match p.then.as_str() {
        "complete" => Ok(()),
        "fail" => Err(WorkflowError::application("Boom", "the parent fails")),
        _ => {
            ctx.sleep(Duration::from_secs(3600)).await?;
            Ok(())
        }
    }
}

/// Awaits a main-scope child: the parent's cancel reaches it.
#[workflow]
async fn awaits_child(ctx: WorkflowContext, prefix: String) -> Result<(), WorkflowError> {
    ctx.child_workflow(sleeper, 3600)
        .id(format!("{prefix}-child"))
        .await?;
    Ok(())
}

fn worker(store: &Store) -> Worker {
    let mut o = WorkerOptions::default();
    o.poll_interval = Duration::from_millis(100);
    o.shutdown_grace = Duration::from_secs(2);
    Worker::new(store)
        .options(o)
        .register(add_one)
        .register(adder)
        .register(declines)
        .register(sleeper)
        .register(sum_of_children)
        .register(outcomes)
        .register(with_policies)
        .register(awaits_child)
}

async fn status(client: &Client, id: &str) -> WorkflowStatus {
    client.describe(id).await.unwrap().status
}

async fn children_results_reach_the_parent(db: &TestDb) {
    let w = worker(&db.store).start();
    let client = Client::new(&db.store);
    let id = wid(db, "sum");
    let h = client
        .start(sum_of_children, &id, id.clone())
        .await
        .unwrap();
    assert_eq!(within(LIMIT, "parent", h.result()).await.unwrap(), 13);
    let hist = client.history(&id).await.unwrap();
    for kind in [
        "child_workflow_initiated",
        "child_workflow_started",
        "child_workflow_completed",
    ] {
        assert_eq!(count(&hist, |k| k.name() == kind), 2, "{kind}: {hist:#?}");
    }
    // The started events carry the children's run ids; each child has its own history.
    let runs: Vec<String> = hist
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ChildWorkflowStarted { run_id, .. } => Some(run_id.clone()),
            _ => None,
        })
        .collect();
    for (suffix, run) in ["a", "b"].iter().zip(&runs) {
        let child = format!("{id}-{suffix}");
        let d = client.describe(&child).await.unwrap();
        assert_eq!(d.status, WorkflowStatus::Completed);
        assert_eq!(&d.run_id, run);
        let ch = client.history(&child).await.unwrap();
        assert!(matches!(ch[0].kind, EventKind::WorkflowStarted { .. }));
        assert_eq!(count(&ch, |k| k.name() == "activity_completed"), 1);
    }
    stop(w).await;
}

async fn child_errors_are_typed(db: &TestDb) {
    let client = Client::new(&db.store);
    let id = wid(db, "outcomes");
    // The id the second child asks for is taken.
    client
        .start(sleeper, format!("{id}-taken"), 3600)
        .await
        .unwrap();
    let w = worker(&db.store).start();
    let h = client.start(outcomes, &id, id.clone()).await.unwrap();
    let seen = within(LIMIT, "parent", h.result()).await.unwrap();
    assert_eq!(
        seen,
        vec![
            format!("failed {id}-declines: Declined: no funds"),
            format!("taken {id}-taken"),
            format!("child workflow `{id}-sleeps` was cancelled"),
            "late: ExecutionTimeout: the workflow ran past its execution_timeout".to_string(),
        ]
    );
    let hist = client.history(&id).await.unwrap();
    assert_eq!(
        count(&hist, |k| k.name() == "child_workflow_failed"),
        2,
        "declined, and past its timeout"
    );
    for kind in [
        "child_workflow_start_failed",
        "child_workflow_cancel_requested",
        "child_workflow_cancelled",
    ] {
        assert_eq!(count(&hist, |k| k.name() == kind), 1, "{kind}: {hist:#?}");
    }
    // The workflow that had the id is untouched.
    assert_eq!(
        status(&client, &format!("{id}-taken")).await,
        WorkflowStatus::Running
    );
    client
        .terminate(&format!("{id}-taken"), "test over")
        .await
        .unwrap();
    stop(w).await;
}

/// Checks the three children of `with_policies` once the parent has ended.
async fn policies_applied(client: &Client, prefix: &str) {
    let cancel = format!("{prefix}-cancel");
    let terminate = format!("{prefix}-terminate");
    let abandon = format!("{prefix}-abandon");
    eventually(LIMIT, "the RequestCancel child ends cancelled", || async {
        status(client, &cancel).await == WorkflowStatus::Cancelled
    })
    .await;
    let d = client.describe(&terminate).await.unwrap();
    assert_eq!(
        d.status,
        WorkflowStatus::Failed,
        "terminated in the parent's close"
    );
    let reason = d.error.unwrap().to_string();
    assert!(
        reason.contains("parent close policy: terminate"),
        "{reason}"
    );
    let ch = client.history(&cancel).await.unwrap();
    assert_eq!(count(&ch, |k| k.name() == "workflow_cancel_requested"), 1);
    assert_eq!(status(client, &abandon).await, WorkflowStatus::Running);
    client.terminate(&abandon, "test over").await.unwrap();
}

async fn policies_when_the_parent_completes_or_fails(db: &TestDb) {
    let w = worker(&db.store).start();
    let client = Client::new(&db.store);
    for then in ["complete", "fail"] {
        let id = wid(db, &format!("pol-{then}"));
        let h = client
            .start(
                with_policies,
                &id,
                Policies {
                    prefix: id.clone(),
                    then: then.into(),
                },
            )
            .await
            .unwrap();
        let r = within(LIMIT, "parent", h.result()).await;
        assert_eq!(r.is_ok(), then == "complete", "{r:?}");
        policies_applied(&client, &id).await;
        // The parent ended first: its history has no child ends.
        let hist = client.history(&id).await.unwrap();
        assert_eq!(count(&hist, |k| k.name() == "child_workflow_started"), 3);
        assert_eq!(count(&hist, |k| k.name() == "child_workflow_cancelled"), 0);
    }
    stop(w).await;
}

async fn policies_when_a_client_cancels_or_terminates_the_parent(db: &TestDb) {
    let w = worker(&db.store).start();
    let client = Client::new(&db.store);
    for how in ["cancel", "terminate"] {
        let id = wid(db, &format!("pol-by-{how}"));
        client
            .start(
                with_policies,
                &id,
                Policies {
                    prefix: id.clone(),
                    then: "wait".into(),
                },
            )
            .await
            .unwrap();
        let abandon = format!("{id}-abandon");
        eventually(LIMIT, "the children started", || async {
            client.describe(&abandon).await.is_ok()
        })
        .await;
        if how == "cancel" {
            assert!(client.cancel(&id).await.unwrap());
            eventually(LIMIT, "the parent ends cancelled", || async {
                status(&client, &id).await == WorkflowStatus::Cancelled
            })
            .await;
        } else {
            assert!(client.terminate(&id, "by the test").await.unwrap());
        }
        policies_applied(&client, &id).await;
    }
    stop(w).await;
}

async fn a_parents_cancel_reaches_its_children(db: &TestDb) {
    let w = worker(&db.store).start();
    let client = Client::new(&db.store);
    let id = wid(db, "awaits");
    let h = client.start(awaits_child, &id, id.clone()).await.unwrap();
    let child = format!("{id}-child");
    eventually(LIMIT, "the child runs", || async {
        client
            .history(&child)
            .await
            .is_ok_and(|h| count(&h, |k| k.name() == "timer_started") == 1)
    })
    .await;
    h.cancel().await.unwrap();
    let r = within(LIMIT, "parent", h.result()).await;
    assert!(
        matches!(r, Err(duraflow::Error::WorkflowCancelled)),
        "{r:?}"
    );
    assert_eq!(status(&client, &child).await, WorkflowStatus::Cancelled);
    let hist = client.history(&id).await.unwrap();
    assert_eq!(
        count(&hist, |k| k.name() == "child_workflow_cancel_requested"),
        1
    );
    assert_eq!(count(&hist, |k| k.name() == "child_workflow_cancelled"), 1);
    stop(w).await;
}

async fn a_fresh_worker_replays_the_parent(db: &TestDb) {
    let client = Client::new(&db.store);
    let id = wid(db, "replayed");
    // The parent waits on a child that waits on a timer; a worker runs it up to there and stops.
    let w = worker(&db.store).start();
    let h = client.start(awaits_child, &id, id.clone()).await.unwrap();
    let child = format!("{id}-child");
    eventually(LIMIT, "the child runs", || async {
        client
            .history(&child)
            .await
            .is_ok_and(|h| count(&h, |k| k.name() == "timer_started") == 1)
    })
    .await;
    stop(w).await;
    // A new worker (its cache empty) replays the parent from its history when the child's end
    // arrives.
    let w = worker(&db.store).start();
    client.cancel(&child).await.unwrap();
    let r = within(LIMIT, "parent", h.result()).await;
    // The child's cancellation, passed on with `?`, is a cancellation; the parent was not asked
    // to cancel, so it ends failed with it.
    assert!(
        matches!(
            r,
            Err(duraflow::Error::WorkflowFailed(WorkflowError::Cancelled))
        ),
        "{r:?}"
    );
    let hist = client.history(&id).await.unwrap();
    assert_eq!(count(&hist, |k| k.name() == "child_workflow_cancelled"), 1);
    assert_eq!(
        client.describe(&id).await.unwrap().held_reason,
        None,
        "the replay matched"
    );
    stop(w).await;
}

store_tests!(memory:
    children_results_reach_the_parent,
    child_errors_are_typed,
    policies_when_the_parent_completes_or_fails,
    policies_when_a_client_cancels_or_terminates_the_parent,
    a_parents_cancel_reaches_its_children,
    a_fresh_worker_replays_the_parent,
);
