//! Temporal's feature cases for signals, queries and updates (temporalio/features, folders
//! `features/signal/*`, `features/query/*`, `features/update/*`), as duraflow tests on memory, a
//! SQLite file and Postgres. Each test is named after its feature folder; the README's behaviour
//! is paraphrased in one line above it. Cases that do not apply, or where duraflow chooses otherwise,
//! are listed at the end of this file with the reason.

mod support;

use duraflow::prelude::*;
use duraflow::{Error, EventKind, Store, Worker, WorkerOptions};
use serde_json::json;
use std::sync::{Arc, Mutex};
use support::{stop, wid, within, TestDb};

const LIMIT: Duration = Duration::from_secs(20);

fn worker(store: &Store) -> Worker {
    let mut o = WorkerOptions::default();
    o.poll_interval = Duration::from_millis(200);
    o.shutdown_grace = Duration::from_secs(2);
    Worker::new(store)
        .options(o)
        .register(receiver)
        .register(fan_out)
        .register(counter)
        .register(double)
}

// ---------------------------------------------------------------------------------------------
// Definitions

#[signal]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Value(pub String);

#[signal]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Finish;

#[query(output = String)]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Current;

/// Waits for `Value` signals until `Finish`; answers `Current` with the last value; returns them.
#[workflow(signals(Value, Finish), queries(Current))]
async fn receiver(ctx: WorkflowContext, _: ()) -> Result<Vec<String>, WorkflowError> {
    let last = Arc::new(Mutex::new(String::from("none")));
    let l = last.clone();
    ctx.on_query(move |_: Current| l.lock().unwrap().clone());
    let mut values = ctx.signal_channel::<Value>();
    let mut finish = ctx.signal_channel::<Finish>();
    let mut got = Vec::new();
    loop {
        select! {
            v = values.recv() => {
                let v = v?.0;
                *last.lock().unwrap() = v.clone();
                got.push(v);
            }
            f = finish.recv() => {
                f?;
                // Values sent before Finish in the same batch are taken too.
                while let Some(v) = values.try_recv() {
                    got.push(v.0);
                }
                return Ok(got);
            }
        }
    }
}

#[activity]
async fn double(x: i64) -> Result<i64, ActivityError> {
    Ok(2 * x)
}

#[signal]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Go(pub i64);

/// On each `Go(n)` runs `n` activities at once and waits for them; returns the sum after `k`.
#[workflow(signals(Go))]
async fn fan_out(ctx: WorkflowContext, k: u32) -> Result<i64, WorkflowError> {
    let mut ch = ctx.signal_channel::<Go>();
    let mut sum = 0;
    for _ in 0..k {
        let n = ch.recv().await?.0;
        let calls: Vec<_> = (1..=n).map(|i| ctx.activity(double, i).start()).collect();
        for c in calls {
            sum += c.await?;
        }
    }
    Ok(sum)
}

#[update(output = u32)]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Increment;

/// Panics in its validator when asked to.
#[update(output = u32)]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Risky {
    pub panic_in_validator: bool,
    pub panic_in_handler: bool,
}

#[query(output = u32)]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Count;

/// A count that `Increment` raises by one (answering the new count), `Risky` may panic in; ends
/// on `Finish` with the count.
#[workflow(signals(Finish), queries(Count), updates(Increment, Risky))]
async fn counter(ctx: WorkflowContext, _: ()) -> Result<u32, WorkflowError> {
    let n = Arc::new(Mutex::new(0u32));
    let q = n.clone();
    ctx.on_query(move |_: Count| *q.lock().unwrap());
    let u = n.clone();
    ctx.on_update(
        |_: &Increment| Ok(()),
        move |_: Increment| {
            let mut n = u.lock().unwrap();
            *n += 1;
            *n
        },
    );
    let r = n.clone();
    ctx.on_update(
        |x: &Risky| {
            if x.panic_in_validator {
                panic!("validator exploded");
            }
            Ok(())
        },
        move |x: Risky| {
            if x.panic_in_handler {
                panic!("handler exploded");
            }
            *r.lock().unwrap()
        },
    );
    ctx.signal_channel::<Finish>().recv().await?;
    let out = *n.lock().unwrap();
    Ok(out)
}

/// Waits until the workflow's first task ran (its handlers are registered).
async fn first_task(client: &Client, id: &str) {
    within(LIMIT, "first workflow task", async {
        loop {
            let h = client.history(id).await.unwrap();
            if h.iter()
                .any(|e| matches!(e.kind, EventKind::WorkflowTaskCompleted { .. }))
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// signal/*

/// signal/basic: "A signal can be sent to a workflow and the workflow receives it."
async fn signal_basic(db: &TestDb) {
    let w = worker(&db.store).start();
    let client = Client::new(&db.store);
    let id = wid(db, "f-signal-basic");
    let h = client.start(receiver, &id, ()).await.unwrap();
    client
        .signal(receiver, &id, Value("arg".into()))
        .await
        .unwrap();
    client.signal(receiver, &id, Finish).await.unwrap();
    assert_eq!(
        within(LIMIT, "result", h.result()).await.unwrap(),
        vec!["arg"]
    );
    stop(w).await;
}

/// signal/activities: "Workflows can run activities from within a Signal handler" (here: the code
/// that received the signal starts activities and waits for them all).
async fn signal_activities(db: &TestDb) {
    let w = worker(&db.store).start();
    let client = Client::new(&db.store);
    let id = wid(db, "f-signal-activities");
    let h = client.start(fan_out, &id, 2).await.unwrap();
    client.signal(fan_out, &id, Go(5)).await.unwrap();
    client.signal(fan_out, &id, Go(3)).await.unwrap();
    // 2 * (1+..+5) + 2 * (1+2+3)
    assert_eq!(within(LIMIT, "result", h.result()).await.unwrap(), 42);
    stop(w).await;
}

/// signal/signal_with_start: "signal-with-start starts the workflow and delivers the signal;
/// a second one delivers to the running workflow."
async fn signal_signal_with_start(db: &TestDb) {
    let w = worker(&db.store).start();
    let client = Client::new(&db.store);
    let id = wid(db, "f-signal-with-start");
    let h = client
        .signal_with_start(receiver, &id, (), Value("one".into()))
        .await
        .unwrap();
    client
        .signal_with_start(receiver, &id, (), Value("two".into()))
        .await
        .unwrap();
    client.signal(receiver, &id, Finish).await.unwrap();
    assert_eq!(
        within(LIMIT, "result", h.result()).await.unwrap(),
        vec!["one", "two"]
    );
    let starts = client
        .history(&id)
        .await
        .unwrap()
        .iter()
        .filter(|e| matches!(e.kind, EventKind::WorkflowStarted { .. }))
        .count();
    assert_eq!(starts, 1, "one run");
    stop(w).await;
}

/// signal/prevent_close: "A signal that arrives while the workflow's last task decides to end it
/// keeps the workflow running until the signal is delivered and processed." Here the workflow
/// ends on `Finish`; a `Value` sent in the same burst (most arrive while the task that read
/// `Finish` runs) is still delivered: the close computed without it is dropped and the task runs
/// again, and the workflow's drain (`try_recv`) takes it.
async fn signal_prevent_close(db: &TestDb) {
    let w = worker(&db.store).start();
    let client = Client::new(&db.store);
    for round in 0..5 {
        let id = wid(db, &format!("f-signal-prevent-close-{round}"));
        let h = client.start(receiver, &id, ()).await.unwrap();
        first_task(&client, &id).await;
        // Both at once: the value often lands while the task that saw `Finish` runs.
        let (finish, late) = tokio::join!(
            client.signal(receiver, &id, Finish),
            client.signal(receiver, &id, Value("late".into()))
        );
        finish.unwrap();
        let out = within(LIMIT, "result", h.result()).await.unwrap();
        match late {
            Ok(()) => assert_eq!(out, vec!["late"], "a recorded signal is delivered"),
            // Recorded after the workflow ended: refused, and not expected in the result.
            Err(Error::WorkflowClosed { .. }) => assert!(out.is_empty()),
            Err(e) => panic!("{e}"),
        }
    }
    stop(w).await;
}

// ---------------------------------------------------------------------------------------------
// query/*

/// query/successful_query: "A query returns the workflow's current state, and a later query sees
/// a later state."
async fn query_successful_query(db: &TestDb) {
    let w = worker(&db.store).start();
    let client = Client::new(&db.store);
    let id = wid(db, "f-query-ok");
    let h = client.start(receiver, &id, ()).await.unwrap();
    first_task(&client, &id).await;
    assert_eq!(client.query(receiver, &id, Current).await.unwrap(), "none");
    client
        .signal(receiver, &id, Value("a".into()))
        .await
        .unwrap();
    within(LIMIT, "the query sees the signal", async {
        while client.query(receiver, &id, Current).await.unwrap() != "a" {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    client.signal(receiver, &id, Finish).await.unwrap();
    within(LIMIT, "result", h.result()).await.unwrap();
    stop(w).await;
}

/// query/unexpected_arguments: "A query issued with arguments that do not match the handler's
/// type is rejected." (By name with JSON; typed queries do not compile with a wrong type.)
async fn query_unexpected_arguments(db: &TestDb) {
    let w = worker(&db.store).start();
    let client = Client::new(&db.store).with_registry(Registry::new().register(counter));
    let id = wid(db, "f-query-args");
    client.start(counter, &id, ()).await.unwrap();
    first_task(&client, &id).await;
    for bad in [json!("text"), json!([1, 2]), json!({"x": 1})] {
        let e = client
            .query_by_name(&id, "Count", bad.clone())
            .await
            .unwrap_err();
        assert!(
            matches!(&e, Error::QueryFailed { query, .. } if query == "Count"),
            "{bad}: {e}"
        );
    }
    // The right argument (a unit struct is JSON null) is answered.
    assert_eq!(
        client
            .query_by_name(&id, "Count", json!(null))
            .await
            .unwrap(),
        json!(0)
    );
    client.signal(counter, &id, Finish).await.unwrap();
    stop(w).await;
}

/// query/unexpected_query_type_name: "A query naming a handler that does not exist is rejected."
async fn query_unexpected_query_type_name(db: &TestDb) {
    let w = worker(&db.store).start();
    let client = Client::new(&db.store).with_registry(Registry::new().register(counter));
    let id = wid(db, "f-query-name");
    client.start(counter, &id, ()).await.unwrap();
    first_task(&client, &id).await;
    let e = client
        .query_by_name(&id, "NoSuchQuery", json!(null))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::UnknownMessage { name, .. } if name == "NoSuchQuery"),
        "{e}"
    );
    client.signal(counter, &id, Finish).await.unwrap();
    stop(w).await;
}

/// query/timeout_due_to_no_active_workers: Temporal times a query out when no worker runs.
/// duraflow chooses otherwise: the client replays the history read-only and answers.
async fn query_timeout_due_to_no_active_workers(db: &TestDb) {
    let w = worker(&db.store).start();
    let client = Client::new(&db.store);
    let id = wid(db, "f-query-no-workers");
    client.start(receiver, &id, ()).await.unwrap();
    client
        .signal(receiver, &id, Value("v".into()))
        .await
        .unwrap();
    within(LIMIT, "the signal is seen", async {
        while client.query(receiver, &id, Current).await.ok().as_deref() != Some("v") {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    stop(w).await;
    assert_eq!(
        within(LIMIT, "query", client.query(receiver, &id, Current))
            .await
            .unwrap(),
        "v",
        "answered with no worker running"
    );
}

// ---------------------------------------------------------------------------------------------
// update/*

/// update/basic: "An update is applied by the workflow and its answer returned to the caller."
async fn update_basic(db: &TestDb) {
    let w = worker(&db.store).start();
    let client = Client::new(&db.store);
    let id = wid(db, "f-update-basic");
    let h = client.start(counter, &id, ()).await.unwrap();
    first_task(&client, &id).await;
    assert_eq!(
        within(LIMIT, "update", client.update(counter, &id, Increment))
            .await
            .unwrap(),
        1
    );
    client.signal(counter, &id, Finish).await.unwrap();
    assert_eq!(within(LIMIT, "result", h.result()).await.unwrap(), 1);
    stop(w).await;
}

/// update/deduplication: "Updates with the same update id are performed once": the count is one.
async fn update_deduplication(db: &TestDb) {
    let w = worker(&db.store).start();
    let client = Client::new(&db.store);
    let id = wid(db, "f-update-dedup");
    let h = client.start(counter, &id, ()).await.unwrap();
    first_task(&client, &id).await;
    for _ in 0..3 {
        let n = within(
            LIMIT,
            "update",
            client.update_with_id(counter, &id, "same-id", Increment),
        )
        .await
        .unwrap();
        assert_eq!(n, 1, "the first answer, every time");
    }
    assert_eq!(client.query(counter, &id, Count).await.unwrap(), 1);
    client.signal(counter, &id, Finish).await.unwrap();
    assert_eq!(within(LIMIT, "result", h.result()).await.unwrap(), 1);
    stop(w).await;
}

/// update/non_durable_reject: "A rejected update leaves nothing in the history."
async fn update_non_durable_reject(db: &TestDb) {
    let w = worker(&db.store).start();
    let client = Client::new(&db.store);
    let id = wid(db, "f-update-reject");
    let h = client.start(counter, &id, ()).await.unwrap();
    first_task(&client, &id).await;
    let before = client.history(&id).await.unwrap().len();
    for _ in 0..3 {
        let e = client
            .update(
                counter,
                &id,
                Risky {
                    panic_in_validator: true,
                    panic_in_handler: false,
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(e, Error::UpdateRejected { .. }), "{e}");
    }
    assert_eq!(
        client.history(&id).await.unwrap().len(),
        before,
        "no event for a rejected update"
    );
    client.signal(counter, &id, Finish).await.unwrap();
    assert_eq!(within(LIMIT, "result", h.result()).await.unwrap(), 0);
    stop(w).await;
}

/// update/user_panics: "A panic in a validator or a handler reaches the caller as an error with
/// the panic's message"; a validator's panic is a rejection (nothing recorded).
async fn update_user_panics(db: &TestDb) {
    let w = worker(&db.store).start();
    let client = Client::new(&db.store);
    let id = wid(db, "f-update-panics");
    let h = client.start(counter, &id, ()).await.unwrap();
    first_task(&client, &id).await;
    let e = client
        .update(
            counter,
            &id,
            Risky {
                panic_in_validator: true,
                panic_in_handler: false,
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::UpdateRejected { reason, .. } if reason.contains("validator exploded")),
        "{e}"
    );
    let e = within(
        LIMIT,
        "update",
        client.update(
            counter,
            &id,
            Risky {
                panic_in_validator: false,
                panic_in_handler: true,
            },
        ),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("handler exploded"), "{e}");
    // The workflow goes on.
    assert_eq!(
        within(LIMIT, "update", client.update(counter, &id, Increment))
            .await
            .unwrap(),
        1
    );
    client.signal(counter, &id, Finish).await.unwrap();
    assert_eq!(within(LIMIT, "result", h.result()).await.unwrap(), 1);
    stop(w).await;
}

store_tests!(memory:
    signal_basic,
    signal_activities,
    signal_signal_with_start,
    signal_prevent_close,
    query_successful_query,
    query_unexpected_arguments,
    query_unexpected_query_type_name,
    query_timeout_due_to_no_active_workers,
    update_basic,
    update_deduplication,
    update_non_durable_reject,
    update_user_panics,
);

// Not ported, and why:
// - signal/external, signal/child_workflow, signal/workflow_to_workflow, update/self: a workflow
//   signalling or updating another workflow needs child workflows and workflow-side clients
//   (issue 12).
// - query/unexpected_return_type: a typed query's answer type is checked at compile time.
// - query/timeout_due_to_long_processing, query/oversized_result_external_storage: no query
//   timeout and no external payload storage in duraflow.
// - update/async_accepted, update/basic_async, update/activities, update/worker_restart: update
//   handlers are synchronous (they cannot start activities or wait).
// - update/validation_replay: Temporal skips the validator on replay; duraflow runs it again when
//   the workflow applies the update (a candidate change: a stricter validator in new code could
//   then reject, on replay, an update the old code accepted).
// - update/client_interceptor, update/intercept, update/external_inline, update/external_poll,
//   update/task_failure, update/update: interceptors and server-side polling do not exist here.
