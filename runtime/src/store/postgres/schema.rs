//! The Postgres schema: its version, its migrations, and the check that a schema is ours.

use super::{col, db, pg_message, query, quote_ident};
use crate::error::{Error, Result};
use std::collections::HashMap;

/// The schema this build writes. Older schemas are migrated; newer ones are refused.
pub(crate) const SCHEMA_VERSION: i64 = 7;
const FORMAT_MARKER: &str = "duraflow";
/// Our tables: a schema holding any of them without our marker is refused.
const OUR_TABLES: &[&str] = &[
    "duraflow_meta",
    "workflows",
    "history",
    "workflow_tasks",
    "activity_tasks",
    "timers",
    "pollers",
    "workers",
    "schedules",
    "runs",
    "run_history",
    "child_workflows",
];

/// Migrations, index `i` takes a schema from version `i` to `i + 1`. Unqualified names: they land in
/// the first schema of the connection's `search_path` (the store's schema).
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE duraflow_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE workflows (
    workflow_id      TEXT PRIMARY KEY,
    run_id           TEXT NOT NULL,
    workflow_type    TEXT NOT NULL,
    task_queue       TEXT NOT NULL,
    status           TEXT NOT NULL,
    input            TEXT NOT NULL,
    result           TEXT,
    next_event_seq   BIGINT NOT NULL,
    wft_token        BIGINT NOT NULL DEFAULT 0,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    held_reason      TEXT,
    created_ms       BIGINT NOT NULL,
    closed_ms        BIGINT
);
CREATE INDEX workflows_by_status ON workflows(status, workflow_type, created_ms);
CREATE INDEX workflows_by_created ON workflows(created_ms);
CREATE TABLE history (
    workflow_id TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    time_ms     BIGINT NOT NULL,
    event_type  TEXT NOT NULL,
    ref_seq     BIGINT,
    payload     TEXT NOT NULL,
    PRIMARY KEY (workflow_id, seq)
);
CREATE TABLE workflow_tasks (
    workflow_id   TEXT PRIMARY KEY,
    task_queue    TEXT NOT NULL,
    workflow_type TEXT NOT NULL,
    state         TEXT NOT NULL,
    visible_at    BIGINT NOT NULL,
    lease_owner   TEXT,
    lease_expires BIGINT
);
CREATE INDEX workflow_tasks_due ON workflow_tasks(state, visible_at);
CREATE TABLE activity_tasks (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workflow_id       TEXT NOT NULL,
    run_id            TEXT NOT NULL,
    activity_seq      BIGINT NOT NULL,
    activity_type     TEXT NOT NULL,
    task_queue        TEXT NOT NULL,
    input             TEXT NOT NULL,
    options           TEXT NOT NULL,
    state             TEXT NOT NULL,
    attempt           BIGINT NOT NULL DEFAULT 0,
    token             BIGINT NOT NULL DEFAULT 0,
    visible_at        BIGINT NOT NULL,
    scheduled_ms      BIGINT NOT NULL,
    started_ms        BIGINT,
    deadline_ms       BIGINT,
    deadline_kind     TEXT,
    lease_owner       TEXT,
    heartbeat_details TEXT,
    cancel_requested  BOOLEAN NOT NULL DEFAULT FALSE,
    UNIQUE (workflow_id, activity_seq)
);
CREATE INDEX activity_tasks_due ON activity_tasks(state, visible_at);
CREATE INDEX activity_tasks_deadline ON activity_tasks(deadline_ms);
CREATE TABLE timers (
    workflow_id TEXT NOT NULL,
    timer_seq   BIGINT NOT NULL,
    fire_at     BIGINT NOT NULL,
    PRIMARY KEY (workflow_id, timer_seq)
);
CREATE INDEX timers_due ON timers(fire_at);
"#,
    // 2: what `describe` says about waiting work: a pending activity's last failure, and the workers'
    // poller heartbeats (who served which task queue and type, when).
    r#"
ALTER TABLE activity_tasks ADD COLUMN last_failure TEXT;
CREATE TABLE pollers (
    task_queue   TEXT NOT NULL,
    kind         TEXT NOT NULL,
    type_name    TEXT NOT NULL,
    worker_id    TEXT NOT NULL,
    last_poll_ms BIGINT NOT NULL,
    PRIMARY KEY (task_queue, kind, type_name)
);
"#,
    // 3: the workers' liveness leases (`engine::liveness`).
    r#"
CREATE TABLE workers (
    worker_id     TEXT PRIMARY KEY,
    lease_expires BIGINT NOT NULL,
    process       TEXT
);
"#,
    // 4: a signal's request id is found by its index, not by reading the workflow's history.
    r#"
CREATE INDEX history_signals ON history(workflow_id, ref_seq) WHERE event_type = 'signal_received';
"#,
    // 5: schedules (`engine::schedule`): the schedule as JSON (`body`), when a worker must look
    // at it next (`due_ms`, NULL while paused), and its revision, which every write checks and bumps.
    r#"
CREATE TABLE schedules (
    schedule_id TEXT PRIMARY KEY,
    revision    BIGINT NOT NULL,
    due_ms      BIGINT,
    body        TEXT NOT NULL
);
CREATE INDEX schedules_due ON schedules(due_ms);
"#,
    // 6: the earlier runs of a workflow id (continue-as-new, a reused id, a reset): the current
    // run stays in `workflows`/`history`; an ended run that another run replaced is moved here,
    // in the transaction that starts the next one (`engine::plan::Effect::ArchiveRun`).
    r#"
CREATE TABLE runs (
    workflow_id    TEXT NOT NULL,
    run_id         TEXT NOT NULL,
    workflow_type  TEXT NOT NULL,
    task_queue     TEXT NOT NULL,
    status         TEXT NOT NULL,
    input          TEXT NOT NULL,
    result         TEXT,
    created_ms     BIGINT NOT NULL,
    closed_ms      BIGINT,
    history_length BIGINT NOT NULL,
    next_run_id    TEXT,
    PRIMARY KEY (workflow_id, run_id)
);
CREATE TABLE run_history (
    workflow_id TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    time_ms     BIGINT NOT NULL,
    event_type  TEXT NOT NULL,
    ref_seq     BIGINT,
    payload     TEXT NOT NULL,
    PRIMARY KEY (workflow_id, run_id, seq)
);
"#,
    // 7: child workflows (`engine::child`): each child run's link to its parent, kept after both
    // end; the parent's children by its id.
    r#"
CREATE TABLE child_workflows (
    child_run_id        TEXT PRIMARY KEY,
    child_id            TEXT NOT NULL,
    parent_id           TEXT NOT NULL,
    parent_run_id       TEXT NOT NULL,
    child_seq           BIGINT NOT NULL,
    parent_close_policy TEXT NOT NULL
);
CREATE INDEX child_workflows_by_parent ON child_workflows(parent_id, parent_run_id);
"#,
];

/// Creates the schema if asked and missing, refuses one that is not ours or is newer than this
/// build, and migrates it to [`SCHEMA_VERSION`], in one transaction (one migrator at a time).
pub(super) async fn migrate(
    client: &mut deadpool_postgres::Object,
    schema: Option<&str>,
) -> Result<()> {
    let ctx = "schema migration";
    let tx = client.transaction().await.map_err(db(ctx))?;
    // One migrator at a time per schema, across processes.
    let lock_key = format!("duraflow-migrate:{}", schema.unwrap_or(""));
    query(
        &tx,
        "SELECT pg_advisory_xact_lock(hashtext($1::TEXT))",
        &[&lock_key],
        ctx,
    )
    .await?;
    if let Some(s) = schema {
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(s)))
            .await
            .map_err(db("creating the schema"))?;
    }
    let target: Option<String> = match schema {
        Some(s) => Some(s.to_string()),
        None => col(
            &query(&tx, "SELECT current_schema()::TEXT", &[], ctx).await?[0],
            0,
        )?,
    };
    let Some(target) = target else {
        return Err(Error::Store(
            "Postgres: no schema to create the tables in (the search_path names no existing schema); pass a schema name".into(),
        ));
    };
    let tables: Vec<String> = query(
        &tx,
        "SELECT c.relname::TEXT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1::TEXT AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          ORDER BY 1",
        &[&target],
        ctx,
    )
    .await?
    .iter()
    .map(|r| col(r, 0))
    .collect::<Result<_>>()?;
    let current: i64 = if tables.iter().any(|t| t == "duraflow_meta") {
        let rows = query(
            &tx,
            "SELECT key, value FROM duraflow_meta WHERE key IN ('format', 'schema_version')",
            &[],
            ctx,
        )
        .await
        .map_err(|e| {
            Error::Store(format!(
                "Postgres schema `{target}` has a duraflow_meta table duraflow cannot read ({e}); it was left untouched"
            ))
        })?;
        let mut meta = HashMap::new();
        for r in &rows {
            meta.insert(col::<String>(r, 0)?, col::<String>(r, 1)?);
        }
        if meta.get("format").map(String::as_str) != Some(FORMAT_MARKER) {
            return Err(Error::Store(format!(
                "Postgres schema `{target}` has a duraflow_meta table but no duraflow format marker; it was not written by duraflow and was left untouched. Use another schema"
            )));
        }
        let version: i64 = meta
            .get("schema_version")
            .ok_or_else(|| {
                Error::Store(format!("Postgres schema `{target}`: no schema version in duraflow_meta; it was left untouched"))
            })?
            .parse()
            .map_err(|_| {
                Error::Store(format!("Postgres schema `{target}`: the schema version is not a number; it was left untouched"))
            })?;
        if version > SCHEMA_VERSION {
            return Err(Error::Store(format!(
                "Postgres schema `{target}` has duraflow schema version {version}, newer than this build understands ({SCHEMA_VERSION}); upgrade duraflow. The schema was left untouched"
            )));
        }
        version
    } else {
        // Not ours: refuse if it holds anything we would collide with (for a schema named for
        // duraflow, anything at all, as the SQLite store refuses another program's file).
        let clash: Vec<&String> = match schema {
            Some(_) => tables.iter().collect(),
            None => tables
                .iter()
                .filter(|t| OUR_TABLES.contains(&t.as_str()))
                .collect(),
        };
        if !clash.is_empty() {
            return Err(Error::Store(format!(
                "Postgres schema `{target}` holds tables of another program ({}); duraflow will not touch it. Use a new schema for duraflow",
                clash.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
        0
    };
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
        let to = i as i64 + 1;
        tx.batch_execute(sql).await.map_err(|e| {
            Error::Store(format!(
                "Postgres: migration of schema `{target}` to version {to} failed: {}",
                pg_message(&e)
            ))
        })?;
        query(
            &tx,
            "INSERT INTO duraflow_meta(key, value) VALUES ('format', $1::TEXT), ('schema_version', $2::TEXT)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&FORMAT_MARKER, &to.to_string()],
            ctx,
        )
        .await?;
    }
    tx.commit().await.map_err(db(ctx))
}
