//! Hostile names reach SQL only as bind parameters or quoted identifiers: workflow ids, workflow
//! and activity type names and task queues made of quotes, semicolons, SQL comments and
//! statements, on SQLite and on Postgres, are stored and read back byte for byte, run, and leave
//! every table intact; a hostile Postgres schema name is refused before any SQL runs.

mod support;

use duraflow::prelude::*;
use duraflow::{Client, Error, ListFilter, StartOptions, Store, Worker};
use serde_json::json;
use support::TestDb;

const HOSTILE: &[&str] = &[
    "'; DROP TABLE workflows; --",
    "\"); DELETE FROM history; --",
    "x' OR '1'='1",
    "a\\b\\'c",
    "$1::TEXT",
    "ünïcødé ✓ 工作流",
    "/* comment */ SELECT pg_sleep(10)",
    "%_*?[]",
];

#[activity]
async fn hostile_echo(s: String) -> Result<String, ActivityError> {
    Ok(s)
}

#[workflow]
async fn hostile_flow(ctx: WorkflowContext, s: String) -> Result<String, WorkflowError> {
    Ok(ctx.activity(hostile_echo, s).await?)
}

async fn check(db: &TestDb) {
    let store = &db.store;
    let client = Client::new(store);
    let w = Worker::new(store)
        .register(hostile_echo)
        .register(hostile_flow)
        .start();
    // Hostile ids and payloads, run to completion.
    for (i, name) in HOSTILE.iter().enumerate() {
        let id = format!("{name}#{i}");
        let h = client
            .start(hostile_flow, id.clone(), name.to_string())
            .await
            .unwrap();
        assert_eq!(h.result().await.unwrap(), *name, "{id}");
        let d = client.describe(&id).await.unwrap();
        assert_eq!(d.workflow_id, id);
        assert!(client.history(&id).await.unwrap().len() >= 4);
    }
    // Hostile type names and task queues, stored as given (no worker runs them).
    for (i, name) in HOSTILE.iter().enumerate() {
        let id = format!("typed-{i}");
        let mut opts = StartOptions::default();
        opts.task_queue = Some(name.to_string());
        client
            .start_by_name_with(name, &id, json!(name), opts)
            .await
            .unwrap();
        let d = client.describe(&id).await.unwrap();
        assert_eq!(
            (d.workflow_type.as_str(), d.task_queue.as_str()),
            (*name, *name)
        );
        let listed = client
            .list(ListFilter::all().workflow_type(*name))
            .await
            .unwrap();
        assert_eq!(listed.len(), 1, "list by the type `{name}`");
    }
    // Every table is intact: everything is still there.
    let all = client.list(ListFilter::all().limit(1000)).await.unwrap();
    assert_eq!(all.len(), HOSTILE.len() * 2);
    w.shutdown().await;
}

#[tokio::test]
async fn hostile_names_on_sqlite() {
    check(&TestDb::sqlite()).await;
}

#[tokio::test]
async fn hostile_names_on_postgres() {
    let Some(db) = TestDb::postgres("hostile_names").await else {
        return;
    };
    check(&db).await;
    db.cleanup().await;
}

#[tokio::test]
async fn a_hostile_schema_name_is_refused_before_any_sql() {
    let Some(url) = support::pg_url().await else {
        return;
    };
    for schema in [
        "x\"; DROP SCHEMA public CASCADE; --",
        "a b",
        "Robert'); DROP TABLE students;--",
        "",
        "1starts_with_a_digit",
    ] {
        match Store::postgres_in_schema(&url, schema).await {
            Err(Error::InvalidOption(m)) => assert!(m.contains("ASCII letters"), "{m}"),
            Err(e) => panic!("`{schema}`: {e}"),
            Ok(_) => panic!("`{schema}` was accepted"),
        }
    }
}
