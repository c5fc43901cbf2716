//! Workflow messages end to end, on memory, a SQLite file and Postgres: signals (order, buffering,
//! exactly once per request id, signal-with-start races, unread signals at the end), queries (on a
//! workflow a worker runs, one no worker holds, one that ended; a handler that tries to start
//! work), updates (validation that records nothing, answers, idempotency), replay of a history
//! with signals and updates, and the errors of messages by name.

mod support;

use duraflow::prelude::*;
use duraflow::{Error, EventKind, Store, Worker, WorkerOptions};
use serde_json::json;
use std::sync::{Arc, Mutex};
use support::{count, stop, wid, within, TestDb};

const LIMIT: Duration = Duration::from_secs(20);

fn worker(store: &Store) -> Worker {
    let mut o = WorkerOptions::default();
    o.poll_interval = Duration::from_millis(200);
    o.held_retry_interval = Duration::from_millis(200);
    o.shutdown_grace = Duration::from_secs(2);
    Worker::new(store).options(o).register(order)
}

// ---------------------------------------------------------------------------------------------
// Definitions

#[signal]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Approve {
    pub by: String,
}

#[signal(name = "note")]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Note(pub String);

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub notes: Vec<String>,
    pub limit: u32,
    pub approved_by: Option<String>,
}

#[query(output = Status)]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GetStatus;

/// A query whose handler tries to start a timer: refused.
#[query(output = ())]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sneaky;

#[update(output = u32)]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetLimit {
    pub limit: u32,
}

/// Reads `notes` notes, then waits for an approval; answers `GetStatus`, takes `SetLimit`.
#[workflow(signals(Approve, Note), queries(GetStatus, Sneaky), updates(SetLimit))]
async fn order(ctx: WorkflowContext, notes: u32) -> Result<Status, WorkflowError> {
    let state = Arc::new(Mutex::new(Status {
        limit: 10,
        ..Status::default()
    }));
    let s = state.clone();
    ctx.on_query(move |_: GetStatus| s.lock().unwrap().clone());
    let c = ctx.clone();
    ctx.on_query(move |_: Sneaky| {
        drop(c.sleep(Duration::from_secs(1)));
    });
    let s = state.clone();
    ctx.on_update(
        |u: &SetLimit| {
            if u.limit == 0 {
                Err("the limit must be positive".into())
            } else {
                Ok(())
            }
        },
        move |u: SetLimit| std::mem::replace(&mut s.lock().unwrap().limit, u.limit),
    );
    let mut note_channel = ctx.signal_channel::<Note>();
    for _ in 0..notes {
        let n = note_channel.recv().await?;
        state.lock().unwrap().notes.push(n.0);
    }
    let mut approvals = ctx.signal_channel::<Approve>();
    let a = approvals.recv().await?;
    state.lock().unwrap().approved_by = Some(a.by);
    let done = state.lock().unwrap().clone();
    Ok(done)
}

/// Another handle on the database, as another process opens it (memory: the same handle, since
/// it cannot be opened twice).
async fn other(db: &TestDb) -> Store {
    if db.store.kind() == "memory" {
        db.store.clone()
    } else {
        db.reopen().await
    }
}

fn note(s: &str) -> Note {
    Note(s.into())
}

fn signals(h: &[duraflow::HistoryEvent]) -> usize {
    count(h, |k| matches!(k, EventKind::SignalReceived { .. }))
}

// ---------------------------------------------------------------------------------------------
// Signals

/// Signals sent before any worker runs are buffered, delivered in order, each once.
async fn signals_are_buffered_and_delivered_in_order(db: &TestDb) {
    let client = Client::new(&db.store);
    let id = wid(db, "sig-order");
    let h = client
        .start(order, &id, 3)
        .await
        .unwrap()
        .with_definition(order);
    for n in ["a", "b", "c"] {
        h.signal(note(n)).await.unwrap();
    }
    client
        .signal(order, &id, Approve { by: "ann".into() })
        .await
        .unwrap();
    assert_eq!(signals(&h.history().await.unwrap()), 4, "durable on return");
    let w = worker(&db.store).start();
    let out = within(LIMIT, "result", h.result()).await.unwrap();
    assert_eq!(out.notes, vec!["a", "b", "c"]);
    assert_eq!(out.approved_by.as_deref(), Some("ann"));
    stop(w).await;
}

/// A signal wakes a waiting workflow; a retry with the same request id is recorded once.
async fn a_retried_signal_is_recorded_once(db: &TestDb) {
    let w = worker(&db.store).start();
    let client = Client::new(&db.store);
    let id = wid(db, "sig-once");
    let h = client
        .start(order, &id, 2)
        .await
        .unwrap()
        .with_definition(order);
    assert!(client
        .signal_with_request_id(order, &id, "req-1", note("x"))
        .await
        .unwrap());
    assert!(!client
        .signal_with_request_id(order, &id, "req-1", note("x"))
        .await
        .unwrap());
    client
        .signal_with_request_id(order, &id, "req-2", note("y"))
        .await
        .unwrap();
    h.signal(Approve { by: "bob".into() }).await.unwrap();
    let out = within(LIMIT, "result", h.result()).await.unwrap();
    assert_eq!(out.notes, vec!["x", "y"]);
    assert_eq!(signals(&h.history().await.unwrap()), 3);
    // A retry after the end still says "already recorded", not "closed".
    assert!(!client
        .signal_with_request_id(order, &id, "req-1", note("x"))
        .await
        .unwrap());
    stop(w).await;
}

/// Unknown and ended workflows, and undeclared names, get clear errors; a payload of the wrong
/// shape fails that signal, not the workflow.
async fn signal_errors_and_bad_payloads(db: &TestDb) {
    let w = worker(&db.store).start();
    let client = Client::new(&db.store).with_registry(Registry::new().register(order));
    let id = wid(db, "sig-errors");
    let e = client
        .signal(order, &wid(db, "nobody"), note("x"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::WorkflowNotFound(_)), "{e}");
    let h = client
        .start(order, &id, 1)
        .await
        .unwrap()
        .with_definition(order);
    let e = client
        .signal_by_name(&id, "Reject", json!({}), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::UnknownMessage { name, .. } if name == "Reject"),
        "{e}"
    );
    assert!(e.to_string().contains("Approve, note"), "{e}");
    // Not a string: dropped by the workflow, which goes on.
    client
        .signal_by_name(&id, "note", json!({"not": "a note"}), None)
        .await
        .unwrap();
    client
        .signal_by_name(&id, "note", json!("good"), Some("r-1"))
        .await
        .unwrap();
    client
        .signal_by_name(&id, "Approve", json!({"by": "cy"}), None)
        .await
        .unwrap();
    let out = within(LIMIT, "result", h.result()).await.unwrap();
    assert_eq!(out.notes, vec!["good"]);
    let e = h.signal(note("late")).await.unwrap_err();
    assert!(
        matches!(&e, Error::WorkflowClosed { status, .. } if status == "completed"),
        "{e}"
    );
    stop(w).await;
}

/// Two clients signal-with-start one id at once: one run, both signals.
async fn signal_with_start_races_start_once(db: &TestDb) {
    let w = worker(&db.store).start();
    let id = wid(db, "sws");
    let c1 = Client::new(&db.store);
    let c2 = Client::new(&other(db).await);
    let (a, b) = tokio::join!(
        c1.signal_with_start(order, &id, 1, note("one")),
        c2.signal_with_start(order, &id, 1, note("two")),
    );
    let h = a.unwrap();
    b.unwrap();
    h.signal(Approve { by: "dee".into() }).await.unwrap();
    let out = within(LIMIT, "result", h.result()).await.unwrap();
    assert_eq!(out.notes.len(), 1, "reads one note: {out:?}");
    let history = h.history().await.unwrap();
    assert_eq!(
        count(&history, |k| matches!(k, EventKind::WorkflowStarted { .. })),
        1
    );
    assert_eq!(signals(&history), 3, "both racing signals and the approval");
    stop(w).await;
}

/// A workflow that returns with signals it did not read completes; they stay in its history.
async fn unread_signals_stay_in_the_history(db: &TestDb) {
    let client = Client::new(&db.store);
    let id = wid(db, "sig-unread");
    let h = client
        .start(order, &id, 0)
        .await
        .unwrap()
        .with_definition(order);
    h.signal(Approve { by: "eve".into() }).await.unwrap();
    h.signal(Approve { by: "fay".into() }).await.unwrap();
    let w = worker(&db.store).start();
    let out = within(LIMIT, "result", h.result()).await.unwrap();
    assert_eq!(out.approved_by.as_deref(), Some("eve"));
    assert_eq!(signals(&h.history().await.unwrap()), 2);
    stop(w).await;
}

// ---------------------------------------------------------------------------------------------
// Queries and updates

/// Queries answer from the current state: while a worker runs the workflow, when no worker holds
/// it (a client in "another process", on its own store handle), and after it ended. None writes.
async fn queries_on_running_unheld_and_ended_workflows(db: &TestDb) {
    let w = worker(&db.store).start();
    let client = Client::new(&db.store);
    let id = wid(db, "query");
    let h = client
        .start(order, &id, 2)
        .await
        .unwrap()
        .with_definition(order);
    h.signal(note("a")).await.unwrap();
    let status = within(LIMIT, "first note seen", async {
        loop {
            let s = client.query(order, &id, GetStatus).await.unwrap();
            if !s.notes.is_empty() {
                break s;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(status.notes, vec!["a"]);
    let len = h.history().await.unwrap().len();
    stop(w).await;
    // No worker now: the client replays the history with the workflow's code.
    let other = Client::new(&other(db).await);
    let s = other.query(order, &id, GetStatus).await.unwrap();
    assert_eq!((s.notes.len(), s.limit), (1, 10));
    assert_eq!(
        h.history().await.unwrap().len(),
        len,
        "queries write nothing"
    );
    let e = other.query(order, &id, Sneaky).await.unwrap_err();
    assert!(
        matches!(&e, Error::QueryFailed { reason, .. } if reason.contains("cannot start")),
        "{e}"
    );
    assert_eq!(h.history().await.unwrap().len(), len);
    let w = worker(&db.store).start();
    h.signal(note("b")).await.unwrap();
    h.signal(Approve { by: "gus".into() }).await.unwrap();
    within(LIMIT, "result", h.result()).await.unwrap();
    stop(w).await;
    let s = other.query(order, &id, GetStatus).await.unwrap();
    assert_eq!(
        s.approved_by.as_deref(),
        Some("gus"),
        "a completed workflow answers"
    );
    let v = Client::new(&db.store)
        .with_registry(Registry::new().register(order))
        .query_by_name(&id, "GetStatus", json!(null))
        .await
        .unwrap();
    assert_eq!(v["notes"], json!(["a", "b"]));
}

/// A rejected update records nothing; an accepted one is applied and answered durably; a repeat
/// with the same id returns the same answer without applying it again.
async fn updates_validate_apply_and_are_idempotent(db: &TestDb) {
    let w = worker(&db.store).start();
    let client = Client::new(&db.store);
    let id = wid(db, "update");
    let h = client
        .start(order, &id, 1)
        .await
        .unwrap()
        .with_definition(order);
    let e = within(
        LIMIT,
        "rejection",
        client.update(order, &id, SetLimit { limit: 0 }),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, Error::UpdateRejected { reason, .. } if reason.contains("positive")),
        "{e}"
    );
    let updates = |h: &[duraflow::HistoryEvent]| {
        count(h, |k| {
            matches!(
                k,
                EventKind::UpdateAccepted { .. } | EventKind::UpdateCompleted { .. }
            )
        })
    };
    assert_eq!(
        updates(&h.history().await.unwrap()),
        0,
        "a rejection records nothing"
    );
    let old = within(
        LIMIT,
        "update",
        client.update_with_id(order, &id, "u-1", SetLimit { limit: 5 }),
    )
    .await
    .unwrap();
    assert_eq!(old, 10);
    let again = within(
        LIMIT,
        "repeat",
        client.update_with_id(order, &id, "u-1", SetLimit { limit: 7 }),
    )
    .await
    .unwrap();
    assert_eq!(again, 10, "the same answer, not applied again");
    let handle = client
        .start_update(order, &id, "u-2", SetLimit { limit: 6 })
        .await
        .unwrap();
    assert_eq!(within(LIMIT, "u-2", handle.result()).await.unwrap(), 5);
    assert_eq!(updates(&h.history().await.unwrap()), 4);
    let e = client
        .update_by_name(&id, "SetLimit", None, json!({"limit": "many"}))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::UpdateRejected { .. }), "{e}");
    assert_eq!(h.query(GetStatus).await.unwrap().limit, 6);
    h.signal(note("n")).await.unwrap();
    h.signal(Approve { by: "hal".into() }).await.unwrap();
    let out = within(LIMIT, "result", h.result()).await.unwrap();
    assert_eq!(out.limit, 6);
    let e = h.update(SetLimit { limit: 3 }).await.unwrap_err();
    assert!(matches!(e, Error::WorkflowClosed { .. }), "{e}");
    stop(w).await;
}

/// A history with signals and updates replays on a new worker (no cache) and goes on.
async fn a_history_with_messages_replays(db: &TestDb) {
    let w = worker(&db.store).start();
    let client = Client::new(&db.store);
    let id = wid(db, "replay");
    let h = client
        .start(order, &id, 2)
        .await
        .unwrap()
        .with_definition(order);
    h.signal(note("a")).await.unwrap();
    assert_eq!(
        within(LIMIT, "update", h.update(SetLimit { limit: 3 }))
            .await
            .unwrap(),
        10
    );
    stop(w).await;
    // A fresh worker replays signal, update and answer, then takes the rest.
    let w = worker(&other(db).await).start();
    h.signal(note("b")).await.unwrap();
    assert_eq!(
        within(LIMIT, "update 2", h.update(SetLimit { limit: 4 }))
            .await
            .unwrap(),
        3
    );
    h.signal(Approve { by: "ida".into() }).await.unwrap();
    let out = within(LIMIT, "result", h.result()).await.unwrap();
    assert_eq!(out.notes, vec!["a", "b"]);
    assert_eq!(out.limit, 4);
    assert_eq!(h.describe().await.unwrap().held_reason, None);
    stop(w).await;
}

store_tests!(memory:
    signals_are_buffered_and_delivered_in_order,
    a_retried_signal_is_recorded_once,
    signal_errors_and_bad_payloads,
    signal_with_start_races_start_once,
    unread_signals_stay_in_the_history,
    queries_on_running_unheld_and_ended_workflows,
    updates_validate_apply_and_are_idempotent,
    a_history_with_messages_replays,
);

#[test]
fn the_registry_names_the_messages() {
    let json = Registry::new().register(order).to_json();
    let messages = &json["workflows"][0]["messages"];
    let names: Vec<(&str, &str)> = messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["kind"].as_str().unwrap(), m["name"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("signal", "Approve"),
            ("signal", "note"),
            ("query", "GetStatus"),
            ("query", "Sneaky"),
            ("update", "SetLimit"),
        ]
    );
}
