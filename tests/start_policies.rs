//! Start policies through the client, on memory, a SQLite file and Postgres: an idempotent start
//! (`UseExisting`) returns the running workflow's handle and records nothing; an id whose run
//! ended starts again as the reuse policy says, the ended run kept as an earlier run; refusals say
//! what to pass instead.

mod support;

use duraflow::prelude::*;
use duraflow::{
    Error, StartOptions, Store, Worker, WorkflowIdConflictPolicy, WorkflowIdReusePolicy,
    WorkflowStatus,
};
use support::{eventually, stop, wid, within, TestDb};

const LIMIT: Duration = Duration::from_secs(30);

#[signal]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Release;

/// Waits for `Release`, then doubles its input; fails on an odd input.
#[workflow(signals(Release))]
async fn gate(ctx: WorkflowContext, n: u64) -> Result<u64, WorkflowError> {
    ctx.signal_channel::<Release>().recv().await?;
    if n % 2 == 1 {
        return Err(WorkflowError::application("Odd", "odd input"));
    }
    Ok(n * 2)
}

fn worker(store: &Store) -> Worker {
    let mut o = duraflow::WorkerOptions::default();
    o.poll_interval = Duration::from_millis(100);
    Worker::new(store).options(o).register(gate)
}

fn opts(reuse: WorkflowIdReusePolicy, conflict: WorkflowIdConflictPolicy) -> StartOptions {
    StartOptions::default()
        .id_reuse_policy(reuse)
        .id_conflict_policy(conflict)
}

async fn start_policies_through_the_client(db: &TestDb) {
    use WorkflowIdConflictPolicy::{Fail, UseExisting};
    use WorkflowIdReusePolicy::{AllowDuplicate, AllowDuplicateFailedOnly, RejectDuplicate};
    let id = wid(db, "gate");
    let w = worker(&db.store).start();
    let client = Client::new(&db.store);

    // Idempotent: the second start is the same workflow, its input ignored, nothing recorded.
    let first = client
        .start_with(gate, &id, 1, opts(RejectDuplicate, UseExisting))
        .await
        .unwrap();
    let run1 = client.describe(&id).await.unwrap().run_id;
    // Its first task done (it then waits for `Release`), the history stands still.
    eventually(LIMIT, "the first workflow task", || async {
        client
            .history(&id)
            .await
            .unwrap()
            .iter()
            .any(|e| matches!(e.kind, duraflow::EventKind::WorkflowTaskCompleted { .. }))
    })
    .await;
    let before = client.history(&id).await.unwrap().len();
    let again = client
        .start_with(gate, &id, 8, opts(RejectDuplicate, UseExisting))
        .await
        .unwrap();
    assert_eq!(client.describe(&id).await.unwrap().run_id, run1);
    assert_eq!(
        client.history(&id).await.unwrap().len(),
        before,
        "an idempotent start records nothing"
    );
    // The default refuses, and says what to pass.
    let Err(e) = client.start(gate, &id, 2).await else {
        panic!("a second start of a running id is refused")
    };
    assert!(matches!(e, Error::DuplicateWorkflowId(_)), "{e}");
    assert!(e.to_string().contains("UseExisting"), "{e}");
    client.signal(gate, &id, Release).await.unwrap();
    assert!(matches!(
        within(LIMIT, "run 1", again.result()).await,
        Err(Error::WorkflowFailed(_))
    ));
    assert!(first.result().await.is_err());

    // Failed: AllowDuplicateFailedOnly starts a new run; it completes.
    let h = client
        .start_with(gate, &id, 4, opts(AllowDuplicateFailedOnly, Fail))
        .await
        .unwrap();
    client.signal(gate, &id, Release).await.unwrap();
    assert_eq!(within(LIMIT, "run 2", h.result()).await.unwrap(), 8);

    // Completed: AllowDuplicateFailedOnly refuses, saying why; AllowDuplicate starts run 3.
    let Err(e) = client
        .start_with(gate, &id, 6, opts(AllowDuplicateFailedOnly, Fail))
        .await
    else {
        panic!("a completed id is not reused under AllowDuplicateFailedOnly")
    };
    assert!(matches!(e, Error::WorkflowIdReuseRefused { .. }), "{e}");
    assert!(e.to_string().contains("ended completed"), "{e}");
    let h = client
        .start_with(gate, &id, 6, opts(AllowDuplicate, Fail))
        .await
        .unwrap();
    client.signal(gate, &id, Release).await.unwrap();
    assert_eq!(within(LIMIT, "run 3", h.result()).await.unwrap(), 12);

    let runs = client.runs(&id).await.unwrap();
    assert_eq!(
        runs.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![
            WorkflowStatus::Failed,
            WorkflowStatus::Completed,
            WorkflowStatus::Completed
        ]
    );
    assert_eq!(runs[0].run_id, run1);
    assert_eq!(runs[1].result, Some(serde_json::json!(8)));
    stop(w).await;
}

store_tests!(memory: start_policies_through_the_client);
