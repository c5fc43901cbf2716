//! Reset end to end, on memory, a SQLite file and Postgres: a workflow held because its code
//! changed (v2 makes another decision where v1's history has one) is reset to the task that made
//! that decision; the new run, on the v2 code, replays what came before (the first activity is
//! not run again), makes the decision again, and completes. The old run is kept, ended
//! `Terminated` with the reason.

mod support;

use duraflow::prelude::*;
use duraflow::{Error, EventKind, Worker, WorkerOptions, WorkflowStatus};
use support::{count, note, noted, stop, wid, within, TestDb};

const LIMIT: Duration = Duration::from_secs(30);

#[signal]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Go;

#[activity]
async fn reserve(ctx: ActivityContext, n: u64) -> Result<u64, ActivityError> {
    note(&ctx, "reserve");
    Ok(n)
}

#[activity]
async fn notify_v1(ctx: ActivityContext, _n: u64) -> Result<String, ActivityError> {
    note(&ctx, "notify v1");
    Ok("v1".into())
}

#[activity]
async fn notify_v2(ctx: ActivityContext, _n: u64) -> Result<String, ActivityError> {
    note(&ctx, "notify v2");
    Ok("v2".into())
}

#[workflow(name = "shipment", signals(Go))]
async fn shipment_v1(ctx: WorkflowContext, n: u64) -> Result<String, WorkflowError> {
    let r = ctx.activity(reserve, n).await?;
    let s = ctx.activity(notify_v1, r).await?;
    ctx.signal_channel::<Go>().recv().await?;
    Ok(s)
}

/// The same workflow after a change that does not replay v1's histories.
#[workflow(name = "shipment", signals(Go))]
async fn shipment_v2(ctx: WorkflowContext, n: u64) -> Result<String, WorkflowError> {
    let r = ctx.activity(reserve, n).await?;
    let s = ctx.activity(notify_v2, r).await?;
    ctx.signal_channel::<Go>().recv().await?;
    Ok(s)
}

fn options() -> WorkerOptions {
    let mut o = WorkerOptions::default();
    o.poll_interval = Duration::from_millis(100);
    o.held_retry_interval = Duration::from_secs(600);
    o
}

async fn a_held_workflow_reset_completes_on_the_new_code(db: &TestDb) {
    let id = wid(db, "shipment");
    let client = Client::new(&db.store);
    let v1 = Worker::new(&db.store)
        .options(options())
        .register(shipment_v1)
        .register(reserve)
        .register(notify_v1)
        .start();
    client.start(shipment_v1, &id, 7).await.unwrap();
    support::eventually(LIMIT, "v1 waits for Go", || async {
        let h = client.history(&id).await.unwrap();
        count(&h, |k| matches!(k, EventKind::ActivityCompleted { .. })) == 2
            && count(&h, |k| matches!(k, EventKind::WorkflowTaskCompleted { .. })) == 3
    })
    .await;
    stop(v1).await;

    // v2 is deployed: the next task does not replay, the workflow is held.
    let v2 = Worker::new(&db.store)
        .options(options())
        .register(shipment_v2)
        .register(reserve)
        .register(notify_v2)
        .start();
    client.signal(shipment_v2, &id, Go).await.unwrap();
    let h = client.handle::<String>(&id);
    support::eventually(LIMIT, "the workflow is held", || async {
        matches!(h.result().await, Err(Error::WorkflowHeld { .. }))
    })
    .await;
    let old_run = client.describe(&id).await.unwrap().run_id;

    // Task 2 scheduled `notify_v1`: v2 makes that decision again.
    let e = client.reset(&id, 9, "x").await.unwrap_err();
    assert!(e.to_string().contains("1..=3"), "{e}");
    let new_run = client.reset(&id, 2, "notify moved to v2").await.unwrap();
    let d = client.describe(&id).await.unwrap();
    assert_eq!(d.run_id, new_run);
    assert_eq!(d.held_reason, None);
    client.signal(shipment_v2, &id, Go).await.unwrap();
    let out = within(LIMIT, "the reset run", h.result()).await.unwrap();
    assert_eq!(out, "v2");
    assert_eq!(
        noted(&id),
        vec!["reserve", "notify v1", "notify v2"],
        "the reservation is not run again"
    );

    let runs = client.runs(&id).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].run_id, old_run);
    assert_eq!(runs[0].status, WorkflowStatus::Failed);
    let why = runs[0].error.as_ref().unwrap().to_string();
    assert!(
        why.contains("Terminated") && why.contains("notify moved to v2"),
        "{why}"
    );
    assert_eq!(runs[0].next_run_id.as_deref(), Some(new_run.as_str()));
    let h = client.run_history(&id, &new_run).await.unwrap();
    assert_eq!(
        count(&h, |k| matches!(
            k,
            EventKind::WorkflowReset {
                workflow_task: 2,
                ..
            }
        )),
        1
    );
    stop(v2).await;
}

store_tests!(memory: a_held_workflow_reset_completes_on_the_new_code);
