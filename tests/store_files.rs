//! The embedded store refuses files it must not touch, with an error that says what to do, and
//! leaves them byte for byte as they were.

use duraflow::prelude::*;
use duraflow::{Client, Error, Store, Worker};

fn bytes(p: &std::path::Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

fn store_error(p: &std::path::Path) -> String {
    match Store::sqlite(p) {
        Err(Error::Store(m)) => m,
        Err(other) => panic!("expected a store error, got {other}"),
        Ok(_) => panic!("opened a file it should refuse"),
    }
}

#[test]
fn a_file_that_is_not_a_database_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("notes.db");
    std::fs::write(
        &p,
        b"these are my notes, not a database; please do not touch them\n".repeat(100),
    )
    .unwrap();
    let before = bytes(&p);
    let m = store_error(&p);
    assert!(m.contains("not a readable SQLite database"), "{m}");
    assert!(m.contains("left untouched"), "{m}");
    assert_eq!(bytes(&p), before);
}

#[test]
fn another_programs_database_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("app.db");
    {
        let c = rusqlite::Connection::open(&p).unwrap();
        c.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users(name) VALUES ('ada');")
            .unwrap();
    }
    let before = bytes(&p);
    let m = store_error(&p);
    assert!(m.contains("another program") && m.contains("users"), "{m}");
    assert_eq!(bytes(&p), before);
    assert!(
        !dir.path().join("app.db-wal").exists(),
        "no WAL file was created"
    );
}

#[tokio::test]
async fn a_newer_schema_is_refused_and_a_current_one_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("duraflow.db");
    {
        let store = Store::sqlite(&p).unwrap();
        let _ = Client::new(&store)
            .list(duraflow::ListFilter::all())
            .await
            .unwrap();
    }
    // Reopening the current version works.
    drop(Store::sqlite(&p).unwrap());
    {
        let c = rusqlite::Connection::open(&p).unwrap();
        c.execute(
            "UPDATE duraflow_meta SET value = '999' WHERE key = 'schema_version'",
            [],
        )
        .unwrap();
    }
    let before = bytes(&p);
    let m = store_error(&p);
    assert!(
        m.contains("schema version 999") && m.contains("upgrade duraflow"),
        "{m}"
    );
    assert_eq!(bytes(&p), before);
}

#[activity]
async fn double(x: i64) -> Result<i64, ActivityError> {
    Ok(x * 2)
}

#[workflow]
async fn doubling(ctx: WorkflowContext, x: i64) -> Result<i64, WorkflowError> {
    Ok(ctx.activity(double, x).await?)
}

#[tokio::test]
async fn a_damaged_history_row_is_an_error_not_a_panic_and_other_workflows_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("duraflow.db");
    let store = Store::sqlite(&p).unwrap();
    let client = Client::new(&store);
    client.start(doubling, "victim", 1).await.unwrap();
    drop(client);
    drop(store);
    {
        let c = rusqlite::Connection::open(&p).unwrap();
        c.execute(
            "UPDATE history SET payload = '{not json' WHERE workflow_id = 'victim' AND seq = 1",
            [],
        )
        .unwrap();
    }
    let store = Store::sqlite(&p).unwrap();
    let client = Client::new(&store);
    match client.history("victim").await {
        Err(Error::Store(m)) => assert!(m.contains("history event #1 of workflow `victim`"), "{m}"),
        other => panic!("expected a store error, got {other:?}"),
    }
    // A worker meets the damaged workflow, logs it, and keeps serving the others.
    let w = Worker::new(&store)
        .register(double)
        .register(doubling)
        .start();
    let h = client.start(doubling, "healthy", 21).await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(20), h.result())
        .await
        .unwrap();
    assert_eq!(r.unwrap(), 42);
    let mut held = None;
    for _ in 0..500 {
        let d = client.describe("victim").await.unwrap();
        assert_eq!(
            d.status,
            duraflow::WorkflowStatus::Running,
            "held, not failed"
        );
        if d.held_reason.is_some() {
            held = d.held_reason;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let held = held.expect("describe says why the workflow is held");
    assert!(held.contains("history event #1"), "{held}");
    w.shutdown().await;
}
