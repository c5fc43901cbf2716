//! The Postgres store: workers in many processes (and on many machines) share one database.
//!
//! Same tables and the same semantics as the SQLite store (see `sqlite.rs`), with what many writers
//! need on top:
//!
//! - **Locking order.** Every transaction that touches a workflow's rows locks the `workflows` row
//!   first (`SELECT .. FOR UPDATE`, or the `UPDATE` that allocates event numbers), then that
//!   workflow's task, activity and timer rows. The claim queries never wait: they lock the task row
//!   *and* its workflow row with `FOR UPDATE .. SKIP LOCKED`, so a task whose workflow is busy is
//!   simply left for the next poll. With this order no two store calls can deadlock.
//! - **Fencing.** A workflow task's token is `workflows.wft_token`, bumped at each claim and checked
//!   under the row lock at commit; an activity task's token is bumped at claim and by
//!   `claim_expired_activities`, and checked under the task's row lock at finish. A stale token
//!   writes nothing.
//! - **Event numbers** come from `workflows.next_event_seq`, allocated while holding the workflow
//!   row lock, so concurrent appends from many processes never collide.
//! - **Wake-ups.** A transaction that creates or makes due work ends with `pg_notify` on a channel
//!   of its schema (delivered at commit). One dedicated connection per store `LISTEN`s on it and
//!   forwards each notification from *another* store handle to a broadcast channel
//!   ([`StoreBackend::external_wakeups`]); notifications a handle sent itself are skipped, since its
//!   own workers are woken in-process. The listener reconnects when its connection drops and then
//!   ticks once, as notifications may have been missed meanwhile.
//! - **Round trips.** Statements are prepared once per pooled connection (`prepare_cached`); the
//!   claim, heartbeat and creation paths are single statements; the statements of a transaction
//!   that do not depend on each other's results are pipelined.
//!
//! Durability is the server's: `synchronous_commit` is left at its default (`on`). Timestamps are
//! milliseconds since the epoch computed in Rust, as in SQLite.

use super::{corrupt, from_json, kind_parse, kind_str, to_json};
use super::{
    now_ms, ActivityResolution, ClaimedActivity, ClaimedWorkflowTask, CommitOutcome, Continuation,
    ExpiredActivity, FinishOutcome, ListFilter, NewWorkflow, PendingActivity, StoreBackend,
    WorkflowDescription, WorkflowStatus, WorkflowSummary, WorkflowTaskCommit,
};
use crate::engine::activity::{attempt_deadline, pending_deadline};
use crate::error::{ActivityError, Error, Result, TimeoutKind, WorkflowError};
use crate::history::format::ref_seq;
use crate::history::{EventKind, HistoryEvent};
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::{AsyncMessage, NoTls, Row, Statement};

/// The schema this build writes. Older schemas are migrated; newer ones are refused.
pub(crate) const SCHEMA_VERSION: i64 = 1;
const FORMAT_MARKER: &str = "duraflow";
/// Connections in the pool of one store handle.
const POOL_SIZE: usize = 12;
/// Our tables: a schema holding any of them without our marker is refused.
const OUR_TABLES: &[&str] = &[
    "duraflow_meta",
    "workflows",
    "history",
    "workflow_tasks",
    "activity_tasks",
    "timers",
];

/// Migrations, index `i` takes a schema from version `i` to `i + 1`. Unqualified names: they land in
/// the first schema of the connection's `search_path` (the store's schema).
const MIGRATIONS: &[&str] = &[r#"
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
"#];

// ---------------------------------------------------------------------------------------------
// SQL. Parameters in select lists are cast explicitly so Postgres infers the intended types.

const SQL_NOTIFY: &str = "SELECT pg_notify($1::TEXT, $2::TEXT)";

const SQL_CREATE: &str = "
WITH w AS (
    INSERT INTO workflows(workflow_id, run_id, workflow_type, task_queue, status, input,
                          next_event_seq, created_ms)
    VALUES ($1::TEXT, $2::TEXT, $3::TEXT, $4::TEXT, 'running', $5::TEXT, 2, $6::BIGINT)
    ON CONFLICT (workflow_id) DO NOTHING
    RETURNING workflow_id),
h AS (
    INSERT INTO history(workflow_id, seq, time_ms, event_type, ref_seq, payload)
    SELECT workflow_id, 1, $6::BIGINT, 'workflow_started', NULL, $7::TEXT FROM w),
tm AS (
    INSERT INTO timers(workflow_id, timer_seq, fire_at)
    SELECT workflow_id, 0, $8::BIGINT FROM w WHERE $8::BIGINT IS NOT NULL),
t AS (
    INSERT INTO workflow_tasks(workflow_id, task_queue, workflow_type, state, visible_at)
    SELECT workflow_id, $4::TEXT, $3::TEXT, 'pending', $6::BIGINT FROM w)
SELECT pg_notify($9::TEXT, $10::TEXT)::TEXT FROM w";

const SQL_CLAIM_WFT: &str = "
WITH c AS (
    SELECT t.workflow_id, t.visible_at
      FROM workflow_tasks t JOIN workflows w ON w.workflow_id = t.workflow_id
     WHERE ((t.state = 'pending' AND t.visible_at <= $1::BIGINT)
            OR (t.state = 'running' AND t.lease_expires <= $1::BIGINT))
       AND t.task_queue = ANY($2::TEXT[]) AND t.workflow_type = ANY($3::TEXT[])
     ORDER BY t.visible_at
     LIMIT $4::BIGINT
       FOR UPDATE OF t, w SKIP LOCKED),
u AS (
    UPDATE workflow_tasks t SET state = 'running', lease_owner = $5::TEXT, lease_expires = $6::BIGINT
      FROM c WHERE t.workflow_id = c.workflow_id),
k AS (
    UPDATE workflows w SET wft_token = w.wft_token + 1
      FROM c WHERE w.workflow_id = c.workflow_id
    RETURNING w.workflow_id, w.run_id, w.workflow_type, w.task_queue, w.wft_token, c.visible_at)
SELECT workflow_id, run_id, workflow_type, task_queue, wft_token FROM k
 ORDER BY visible_at, workflow_id";

const SQL_READ_HISTORY: &str = "SELECT seq, time_ms, payload FROM history
 WHERE workflow_id = $1::TEXT AND seq >= $2::BIGINT ORDER BY seq";

/// Locks the workflow row (first, always), then reads what the commit checks.
const SQL_COMMIT_LOCK: &str = "
SELECT w.wft_token, w.next_event_seq, w.run_id,
       (SELECT t.state FROM workflow_tasks t WHERE t.workflow_id = w.workflow_id)
  FROM workflows w WHERE w.workflow_id = $1::TEXT AND w.status = 'running'
   FOR UPDATE OF w";

/// With `$3` (the finished attempt's task, in `finish_activity_and_continue`), only if that task
/// belongs to workflow `$1`, whose row the same pipeline locked first.
const SQL_CANCEL_TARGETS: &str = "
SELECT activity_seq, state, heartbeat_details FROM activity_tasks
 WHERE workflow_id = $1::TEXT AND activity_seq = ANY($2::BIGINT[])
   AND ($3::BIGINT IS NULL
        OR workflow_id = (SELECT workflow_id FROM activity_tasks WHERE id = $3::BIGINT))
   FOR UPDATE";

/// Appends events with numbers allocated by the caller, who holds the workflow row lock.
const SQL_INSERT_EVENTS: &str = "
INSERT INTO history(workflow_id, seq, time_ms, event_type, ref_seq, payload)
SELECT $1::TEXT, e.s, $2::BIGINT, e.t, e.r, e.p
  FROM unnest($3::BIGINT[], $4::TEXT[], $5::BIGINT[], $6::TEXT[]) AS e(s, t, r, p)";

/// After a commit's appends; `$4` bumps the workflow task token (a continuation fences out any
/// claim still in flight), in the same row update.
const SQL_SET_NEXT_SEQ: &str = "UPDATE workflows SET next_event_seq = $2::BIGINT,
     held_reason = CASE WHEN $3::BOOLEAN THEN NULL ELSE held_reason END,
     wft_token = wft_token + CASE WHEN $4::BOOLEAN THEN 1 ELSE 0 END
 WHERE workflow_id = $1::TEXT";

const SQL_INSERT_ACTIVITY: &str = "
INSERT INTO activity_tasks(workflow_id, run_id, activity_seq, activity_type, task_queue, input,
                           options, state, visible_at, scheduled_ms, deadline_ms, deadline_kind)
VALUES ($1::TEXT, $2::TEXT, $3::BIGINT, $4::TEXT, $5::TEXT, $6::TEXT, $7::TEXT, 'pending',
        $8::BIGINT, $8::BIGINT, $9::BIGINT, $10::TEXT)";

/// An activity task claimed by the commit that schedules it (eager claim): inserted running, its
/// first attempt started.
const SQL_INSERT_ACTIVITY_STARTED: &str = "
INSERT INTO activity_tasks(workflow_id, run_id, activity_seq, activity_type, task_queue, input,
                           options, state, attempt, token, visible_at, scheduled_ms, started_ms,
                           deadline_ms, deadline_kind, lease_owner)
VALUES ($1::TEXT, $2::TEXT, $3::BIGINT, $4::TEXT, $5::TEXT, $6::TEXT, $7::TEXT, 'running', 1, 1,
        $8::BIGINT, $8::BIGINT, $8::BIGINT, $9::BIGINT, $10::TEXT, $11::TEXT)
RETURNING id";

const SQL_UPSERT_TIMER: &str = "
INSERT INTO timers(workflow_id, timer_seq, fire_at) VALUES ($1::TEXT, $2::BIGINT, $3::BIGINT)
ON CONFLICT (workflow_id, timer_seq) DO UPDATE SET fire_at = excluded.fire_at";

const SQL_DELETE_TIMER: &str =
    "DELETE FROM timers WHERE workflow_id = $1::TEXT AND timer_seq = $2::BIGINT";

const SQL_DELETE_ACTIVITY_BY_SEQ: &str =
    "DELETE FROM activity_tasks WHERE workflow_id = $1::TEXT AND activity_seq = $2::BIGINT";

const SQL_CANCEL_ACTIVITY_BY_SEQ: &str = "UPDATE activity_tasks SET cancel_requested = TRUE
 WHERE workflow_id = $1::TEXT AND activity_seq = $2::BIGINT";

/// Ends a workflow: status and result, every task of it withdrawn; running attempts are told to
/// cancel at their next heartbeat. (Sub-statements share one snapshot: the pending activity tasks
/// are deleted and the others flagged, never the same row twice.)
const SQL_CLOSE: &str = "
WITH a AS (
    UPDATE workflows SET status = $2::TEXT, result = $3::TEXT, closed_ms = $4::BIGINT,
                         held_reason = NULL
     WHERE workflow_id = $1::TEXT),
b AS (DELETE FROM workflow_tasks WHERE workflow_id = $1::TEXT),
c AS (DELETE FROM timers WHERE workflow_id = $1::TEXT),
d AS (DELETE FROM activity_tasks WHERE workflow_id = $1::TEXT AND state = 'pending'),
e AS (UPDATE activity_tasks SET cancel_requested = TRUE
       WHERE workflow_id = $1::TEXT AND state <> 'pending')
SELECT 1";

/// Puts the workflow task back as pending; creates it when there is none (a continuation commits
/// without a task row).
const SQL_WFT_RERUN: &str = "
INSERT INTO workflow_tasks(workflow_id, task_queue, workflow_type, state, visible_at)
SELECT workflow_id, task_queue, workflow_type, 'pending', $2::BIGINT FROM workflows
 WHERE workflow_id = $1::TEXT
ON CONFLICT (workflow_id) DO UPDATE SET state = 'pending', visible_at = excluded.visible_at,
       lease_owner = NULL, lease_expires = NULL";

const SQL_WFT_DELETE: &str = "DELETE FROM workflow_tasks WHERE workflow_id = $1::TEXT";

/// Appends one event, its number allocated under the workflow row lock (the `UPDATE` takes it),
/// and with `$6` makes a workflow task pending if the workflow runs and has none.
const SQL_APPEND: &str = "
WITH s AS (
    UPDATE workflows SET next_event_seq = next_event_seq + 1 WHERE workflow_id = $1::TEXT
    RETURNING next_event_seq - 1 AS seq, task_queue, workflow_type, status),
h AS (
    INSERT INTO history(workflow_id, seq, time_ms, event_type, ref_seq, payload)
    SELECT $1::TEXT, seq, $2::BIGINT, $3::TEXT, $4::BIGINT, $5::TEXT FROM s
    RETURNING seq),
q AS (
    INSERT INTO workflow_tasks(workflow_id, task_queue, workflow_type, state, visible_at)
    SELECT $1::TEXT, task_queue, workflow_type, 'pending', $2::BIGINT FROM s
     WHERE status = 'running' AND $6::BOOLEAN
    ON CONFLICT (workflow_id) DO NOTHING)
SELECT seq FROM h";

const ACTIVITY_COLS: &str = "a.id, a.workflow_id, a.run_id, a.activity_seq, a.activity_type,
    a.task_queue, a.input, a.options, a.attempt, a.token, a.scheduled_ms, a.started_ms,
    a.deadline_ms, a.heartbeat_details, a.cancel_requested, a.deadline_kind";

fn sql_claim_activities() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "
WITH c AS (
    SELECT a.id FROM activity_tasks a JOIN workflows w ON w.workflow_id = a.workflow_id
     WHERE a.state = 'pending' AND a.visible_at <= $1::BIGINT
       AND a.task_queue = ANY($2::TEXT[]) AND a.activity_type = ANY($3::TEXT[])
     ORDER BY a.visible_at, a.id
     LIMIT $4::BIGINT
       FOR UPDATE OF a, w SKIP LOCKED)
UPDATE activity_tasks a SET state = 'running', attempt = a.attempt + 1, token = a.token + 1,
       started_ms = $1::BIGINT, lease_owner = $5::TEXT
  FROM c WHERE a.id = c.id
RETURNING {ACTIVITY_COLS}, a.visible_at"
        )
    })
}

/// Sets a claimed attempt's deadline and appends its `ActivityStarted` (number allocated under the
/// workflow row lock, which the claim already holds).
const SQL_START_ACTIVITY: &str = "
WITH d AS (
    UPDATE activity_tasks SET deadline_ms = $2::BIGINT, deadline_kind = $3::TEXT
     WHERE id = $1::BIGINT),
s AS (
    UPDATE workflows SET next_event_seq = next_event_seq + 1 WHERE workflow_id = $4::TEXT
    RETURNING next_event_seq - 1 AS seq)
INSERT INTO history(workflow_id, seq, time_ms, event_type, ref_seq, payload)
SELECT $4::TEXT, seq, $5::BIGINT, 'activity_started', $6::BIGINT, $7::TEXT FROM s";

const SQL_HOLD_LOCK: &str =
    "SELECT wft_token FROM workflows WHERE workflow_id = $1::TEXT FOR UPDATE";

const SQL_HOLD_TASK: &str = "UPDATE workflow_tasks SET state = 'pending', visible_at = $2::BIGINT,
     lease_owner = NULL, lease_expires = NULL WHERE workflow_id = $1::TEXT";

const SQL_HOLD_REASON: &str =
    "UPDATE workflows SET held_reason = $2::TEXT WHERE workflow_id = $1::TEXT";

const SQL_RELEASE_HELD: &str = "
UPDATE workflow_tasks SET visible_at = $1::BIGINT
 WHERE state = 'pending'
   AND workflow_id IN (SELECT workflow_id FROM workflows WHERE held_reason IS NOT NULL)";

fn sql_claim_expired() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "
WITH c AS (
    SELECT id, deadline_ms AS old_deadline FROM activity_tasks
     WHERE deadline_ms <= $1::BIGINT
     ORDER BY deadline_ms
     LIMIT $2::BIGINT
       FOR UPDATE SKIP LOCKED)
UPDATE activity_tasks a SET token = a.token + 1, deadline_ms = $3::BIGINT
  FROM c WHERE a.id = c.id
RETURNING {ACTIVITY_COLS}, c.old_deadline"
        )
    })
}

const SQL_HEARTBEAT: &str = "
UPDATE activity_tasks SET heartbeat_details = COALESCE($3::TEXT, heartbeat_details),
       deadline_ms = $4::BIGINT, deadline_kind = $5::TEXT
 WHERE id = $1::BIGINT AND token = $2::BIGINT AND state = 'running'
RETURNING cancel_requested";

/// Locks the workflow row of an activity task (the task row is locked after it).
const SQL_FINISH_LOCK_WF: &str = "
SELECT status, next_event_seq, run_id FROM workflows
 WHERE workflow_id = (SELECT workflow_id FROM activity_tasks WHERE id = $1::BIGINT)
   FOR UPDATE";

/// Whether the workflow has a workflow task row (run after the workflow row is locked, so it sees
/// every committed change).
const SQL_CONTINUE_QUEUED: &str =
    "SELECT EXISTS (SELECT 1 FROM workflow_tasks WHERE workflow_id = $1::TEXT)";

/// The events after those a worker's instance saw (other than attempt starts), to check that it
/// saw every other one.
const SQL_CONTINUE_UNSEEN: &str = "
SELECT seq, event_type FROM history
 WHERE workflow_id = $1::TEXT AND seq > $2::BIGINT AND event_type <> 'activity_started'
 ORDER BY seq";

fn sql_finish_lock_task() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!("SELECT {ACTIVITY_COLS} FROM activity_tasks a WHERE a.id = $1::BIGINT FOR UPDATE")
    })
}

const SQL_ACTIVITY_RETRY: &str = "
UPDATE activity_tasks SET state = 'pending', visible_at = $2::BIGINT, lease_owner = NULL,
       heartbeat_details = $3::TEXT, deadline_ms = $4::BIGINT, deadline_kind = $5::TEXT
 WHERE id = $1::BIGINT";

const SQL_DELETE_ACTIVITY: &str = "DELETE FROM activity_tasks WHERE id = $1::BIGINT";

const SQL_LOCK_STATUS: &str = "SELECT status, cancel_requested FROM workflows
 WHERE workflow_id = $1::TEXT FOR UPDATE";

const SQL_LOCAL_DONE: &str = "
SELECT 1 FROM history WHERE workflow_id = $1::TEXT AND ref_seq = $2::BIGINT
   AND event_type IN ('local_activity_marker', 'activity_cancelled') LIMIT 1";

/// Whether any timer is due: an idle poll costs one statement, no transaction.
const SQL_ANY_DUE_TIMER: &str = "SELECT EXISTS (SELECT 1 FROM timers WHERE fire_at <= $1::BIGINT)";

/// Whether any activity task of these queues and types is due (as above).
const SQL_ANY_DUE_ACTIVITY: &str = "
SELECT EXISTS (SELECT 1 FROM activity_tasks
                WHERE state = 'pending' AND visible_at <= $1::BIGINT
                  AND task_queue = ANY($2::TEXT[]) AND activity_type = ANY($3::TEXT[]))";

const SQL_DUE_TIMERS: &str = "
SELECT t.workflow_id, t.timer_seq, w.status
  FROM timers t JOIN workflows w ON w.workflow_id = t.workflow_id
 WHERE t.fire_at <= $1::BIGINT
 ORDER BY t.fire_at
 LIMIT $2::BIGINT
   FOR UPDATE OF t, w SKIP LOCKED";

const SQL_NEXT_DUE: &str = "
SELECT LEAST(
    (SELECT MIN(CASE WHEN state = 'pending' THEN visible_at ELSE lease_expires END)
       FROM workflow_tasks
      WHERE task_queue = ANY($1::TEXT[]) AND workflow_type = ANY($2::TEXT[])),
    (SELECT MIN(visible_at) FROM activity_tasks
      WHERE state = 'pending' AND task_queue = ANY($1::TEXT[])
        AND activity_type = ANY($3::TEXT[])),
    (SELECT MIN(deadline_ms) FROM activity_tasks),
    (SELECT MIN(fire_at) FROM timers))";

const SQL_SET_CANCEL_REQUESTED: &str =
    "UPDATE workflows SET cancel_requested = TRUE WHERE workflow_id = $1::TEXT";

const SQL_DESCRIBE: &str = "
SELECT run_id, workflow_type, task_queue, status, result, created_ms, closed_ms, next_event_seq,
       held_reason, cancel_requested
  FROM workflows WHERE workflow_id = $1::TEXT";

const SQL_DESCRIBE_ACTIVITIES: &str = "
SELECT activity_seq, activity_type, state, attempt, cancel_requested, heartbeat_details
  FROM activity_tasks WHERE workflow_id = $1::TEXT ORDER BY activity_seq";

const SQL_LIST: &str = "
SELECT workflow_id, run_id, workflow_type, status, created_ms, closed_ms FROM workflows
 WHERE ($1::TEXT IS NULL OR status = $1::TEXT) AND ($2::TEXT IS NULL OR workflow_type = $2::TEXT)
 ORDER BY created_ms DESC, workflow_id
 LIMIT $3::BIGINT";

// ---------------------------------------------------------------------------------------------
// Errors and conversions.

fn pg_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                s.push_str(&format!("; {d}"));
            }
            s
        }
        None => e.to_string(),
    }
}

fn db(context: &str) -> impl Fn(tokio_postgres::Error) -> Error + '_ {
    move |e| Error::Database(format!("Postgres store, {context}: {}", pg_message(&e)))
}

/// A column, with a type mismatch reported as an error (never a panic).
fn col<'a, T: FromSql<'a>>(row: &'a Row, i: usize) -> Result<T> {
    row.try_get(i)
        .map_err(|e| corrupt(format!("column {i} of a row: {e}")))
}

/// Reads `ACTIVITY_COLS` (as the SQLite store does: an input or options that do not parse become
/// `null` / the defaults, so one damaged row cannot block every claim behind it).
fn read_activity(r: &Row) -> Result<(ClaimedActivity, Option<String>)> {
    let input: String = col(r, 6)?;
    let options: String = col(r, 7)?;
    let details: Option<String> = col(r, 13)?;
    let task_id: i64 = col(r, 0)?;
    let input = serde_json::from_str(&input).unwrap_or_else(|e| {
        tracing::warn!(task_id, error = %e, "activity task input is not valid JSON; using null");
        Value::Null
    });
    let options = serde_json::from_str(&options).unwrap_or_else(|e| {
        tracing::warn!(task_id, error = %e, "activity task options do not parse; using defaults");
        Default::default()
    });
    Ok((
        ClaimedActivity {
            task_id,
            workflow_id: col(r, 1)?,
            run_id: col(r, 2)?,
            activity_seq: col::<i64>(r, 3)? as u64,
            activity_type: col(r, 4)?,
            task_queue: col(r, 5)?,
            input,
            options,
            attempt: col::<i64>(r, 8)? as u32,
            token: col(r, 9)?,
            scheduled_ms: col(r, 10)?,
            started_ms: col::<Option<i64>>(r, 11)?.unwrap_or(0),
            deadline_ms: col(r, 12)?,
            heartbeat_details: details.and_then(|d| serde_json::from_str(&d).ok()),
            cancel_requested: col(r, 14)?,
        },
        col(r, 15)?,
    ))
}

// ---------------------------------------------------------------------------------------------
// Statement batches: prepared first, then sent together (pipelined) and run in order.

type Param = Box<dyn ToSql + Sync + Send>;

#[derive(Default)]
struct Batch {
    items: Vec<(&'static str, Vec<Param>)>,
}

impl Batch {
    fn push(&mut self, sql: &'static str, params: Vec<Param>) -> usize {
        self.items.push((sql, params));
        self.items.len() - 1
    }

    /// Runs every statement in order in one round trip (after the first use of each statement on
    /// this connection, which prepares it); returns each statement's rows.
    async fn run<C: GenericClient>(self, c: &C, context: &str) -> Result<Vec<Vec<Row>>> {
        if self.items.is_empty() {
            return Ok(Vec::new());
        }
        let stmts: Vec<Statement> =
            futures::future::try_join_all(self.items.iter().map(|(sql, _)| c.prepare_cached(sql)))
                .await
                .map_err(db(context))?;
        let refs: Vec<Vec<&(dyn ToSql + Sync)>> = self
            .items
            .iter()
            .map(|(_, ps)| ps.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect())
            .collect();
        // `query` sends its request when first polled, and `try_join_all` polls in order: the
        // statements reach the server in order, and run in order.
        futures::future::try_join_all(stmts.iter().zip(refs.iter()).map(|(s, ps)| c.query(s, ps)))
            .await
            .map_err(db(context))
    }
}

fn p<T: ToSql + Sync + Send + 'static>(v: T) -> Param {
    Box::new(v)
}

async fn query<C: GenericClient>(
    c: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    context: &str,
) -> Result<Vec<Row>> {
    let st = c.prepare_cached(sql).await.map_err(db(context))?;
    c.query(&st, params).await.map_err(db(context))
}

/// A transaction on one pooled connection, without round trips of its own: `BEGIN` is sent with
/// the first statements and `COMMIT` with the last ones (pipelined). Dropped while open (an early
/// return, an error, a cancelled future), it is rolled back before the connection is reused.
struct Tx {
    client: Option<deadpool_postgres::Object>,
    begin: &'static str,
    open: bool,
    begun: bool,
}

impl Tx {
    fn new(client: deadpool_postgres::Object) -> Tx {
        Tx::with_begin(client, "BEGIN")
    }

    fn with_begin(client: deadpool_postgres::Object, begin: &'static str) -> Tx {
        Tx {
            client: Some(client),
            begin,
            open: false,
            begun: false,
        }
    }

    /// Runs `batch` in the transaction (beginning it on first use); with `commit`, commits after it
    /// in the same round trip.
    async fn run(
        &mut self,
        mut batch: Batch,
        commit: bool,
        context: &str,
    ) -> Result<Vec<Vec<Row>>> {
        let lead = !self.begun;
        if lead {
            batch.items.insert(0, (self.begin, Vec::new()));
            self.begun = true;
            self.open = true;
        }
        if commit {
            batch.push("COMMIT", Vec::new());
        }
        let client = self.client.as_ref().ok_or_else(|| {
            Error::Database("Postgres store: transaction without a connection".into())
        })?;
        let mut res = batch.run(client, context).await?;
        if commit {
            res.pop();
            self.open = false;
        }
        if lead && !res.is_empty() {
            res.remove(0);
        }
        Ok(res)
    }

    /// One statement in the transaction.
    async fn query(
        &mut self,
        sql: &'static str,
        params: Vec<Param>,
        context: &str,
    ) -> Result<Vec<Row>> {
        let mut batch = Batch::default();
        batch.push(sql, params);
        Ok(self
            .run(batch, false, context)
            .await?
            .pop()
            .unwrap_or_default())
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        if let Some(client) = self.client.take() {
            match tokio::runtime::Handle::try_current() {
                // The connection returns to the pool once the rollback is through.
                Ok(rt) => {
                    rt.spawn(async move {
                        if let Err(e) = client.batch_execute("ROLLBACK").await {
                            tracing::debug!(error = %e, "Postgres rollback failed");
                            let _ = deadpool_postgres::Object::take(client);
                        }
                    });
                }
                // No runtime to roll back on: close the connection instead (the server rolls back).
                Err(_) => drop(deadpool_postgres::Object::take(client)),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The store.

pub(crate) struct PostgresStore {
    pool: Pool,
    /// The `NOTIFY` channel of this schema.
    channel: String,
    /// The payload of our own notifications, so the listener skips them.
    instance: String,
    wake_tx: broadcast::Sender<()>,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// A schema name we put into SQL and into the connection options: letters, digits and `_`.
fn check_schema_name(schema: &str) -> Result<()> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !schema.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidOption(format!(
            "Postgres schema name `{schema}`: use 1 to 63 ASCII letters, digits and `_`, not starting with a digit"
        )))
    }
}

fn random_instance_id() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut h = RandomState::new().build_hasher();
    h.write_i64(now_ms());
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

impl PostgresStore {
    /// Connects, creates the schema if asked and missing, migrates, and starts the listener.
    pub(crate) async fn connect(url: &str, schema: Option<&str>) -> Result<Self> {
        let mut cfg: tokio_postgres::Config = url
            .parse()
            .map_err(|e| Error::InvalidOption(format!("Postgres URL `{}`: {e}", redact(url))))?;
        if let Some(s) = schema {
            check_schema_name(s)?;
            let opts = format!(
                "{} -c search_path=\"{s}\"",
                cfg.get_options().unwrap_or_default()
            );
            cfg.options(opts.trim_start());
        }
        if cfg.get_application_name().is_none() {
            cfg.application_name("duraflow");
        }
        let channel: String = match schema {
            Some(s) => format!("duraflow_{s}"),
            None => "duraflow".to_string(),
        }
        .chars()
        .take(63)
        .collect();

        let manager = Manager::from_config(
            cfg.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| Error::Database(format!("Postgres store: cannot build the pool: {e}")))?;
        let store_pool = pool.clone();
        {
            let mut client = pool.get().await.map_err(|e| {
                Error::Database(format!(
                    "Postgres store: cannot connect to `{}`: {e}",
                    redact(url)
                ))
            })?;
            migrate(&mut client, schema).await?;
        }

        let (wake_tx, _) = broadcast::channel(64);
        let instance = random_instance_id();
        // The first LISTEN is in place before `connect` returns: no notification after it is missed.
        let first = listen(&cfg, &channel).await?;
        let listener = tokio::spawn(listener_loop(
            cfg,
            channel.clone(),
            instance.clone(),
            wake_tx.clone(),
            first,
        ));
        Ok(PostgresStore {
            pool: store_pool,
            channel,
            instance,
            wake_tx,
            listener,
        })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool
            .get()
            .await
            .map_err(|e| Error::Database(format!("Postgres store: cannot get a connection: {e}")))
    }

    fn notify(&self, batch: &mut Batch) {
        batch.push(
            SQL_NOTIFY,
            vec![p(self.channel.clone()), p(self.instance.clone())],
        );
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

async fn migrate(client: &mut deadpool_postgres::Object, schema: Option<&str>) -> Result<()> {
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
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{s}\""))
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

// ---------------------------------------------------------------------------------------------
// LISTEN/NOTIFY.

type Listening = (
    tokio_postgres::Client,
    tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
);

/// Opens the dedicated connection and `LISTEN`s (driving the connection ourselves meanwhile).
async fn listen(cfg: &tokio_postgres::Config, channel: &str) -> Result<Listening> {
    let mut cfg = cfg.clone();
    cfg.keepalives_idle(Duration::from_secs(30));
    let (client, mut conn) = cfg
        .connect(NoTls)
        .await
        .map_err(db("connecting the LISTEN connection"))?;
    let sql = format!("LISTEN \"{channel}\"");
    {
        let listen = client.batch_execute(&sql);
        tokio::pin!(listen);
        loop {
            tokio::select! {
                r = &mut listen => {
                    r.map_err(db("LISTEN"))?;
                    break;
                }
                m = std::future::poll_fn(|cx| conn.poll_message(cx)) => match m {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(db("LISTEN")(e)),
                    None => return Err(Error::Database("Postgres store: the LISTEN connection closed".into())),
                }
            }
        }
    }
    Ok((client, conn))
}

/// Forwards notifications of other store handles; reconnects (and ticks once) when the connection
/// drops. Ends when the store is dropped (the task is aborted).
async fn listener_loop(
    cfg: tokio_postgres::Config,
    channel: String,
    instance: String,
    tx: broadcast::Sender<()>,
    first: Listening,
) {
    let mut current = Some(first);
    let mut backoff = Duration::from_millis(100);
    loop {
        let (client, mut conn) = match current.take() {
            Some(c) => c,
            None => match listen(&cfg, &channel).await {
                Ok(c) => {
                    backoff = Duration::from_millis(100);
                    // Notifications may have been missed while disconnected.
                    let _ = tx.send(());
                    c
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "Postgres LISTEN connection failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            },
        };
        loop {
            match std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if n.payload() != instance {
                        let _ = tx.send(());
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "Postgres LISTEN connection lost; reconnecting");
                    break;
                }
                None => {
                    tracing::warn!("Postgres LISTEN connection closed; reconnecting");
                    break;
                }
            }
        }
        drop(client);
    }
}

// ---------------------------------------------------------------------------------------------
// Shared transaction steps.

/// Pushes the statement appending `kind` (number allocated under the workflow row lock) and, with
/// `enqueue`, making a workflow task pending.
fn push_append(batch: &mut Batch, workflow_id: &str, kind: &EventKind, now: i64, enqueue: bool) {
    batch.push(
        SQL_APPEND,
        vec![
            p(workflow_id.to_string()),
            p(now),
            p(kind.name().to_string()),
            p(ref_seq(kind)),
            p(to_json(kind)),
            p(enqueue),
        ],
    );
}

/// Claims pending activity tasks (locking each task and its workflow row, skipping busy ones),
/// then sets their deadlines and appends their `ActivityStarted` events, and commits.
async fn claim_activities(
    tx: &mut Tx,
    worker_id: &str,
    queues: &[String],
    types: &[String],
    max: usize,
    now: i64,
) -> Result<Vec<ClaimedActivity>> {
    let ctx = "claiming activity tasks";
    let rows = tx
        .query(
            sql_claim_activities(),
            vec![
                p(now),
                p(queues.to_vec()),
                p(types.to_vec()),
                p(max as i64),
                p(worker_id.to_string()),
            ],
            ctx,
        )
        .await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for r in &rows {
        let (task, _) = read_activity(r)?;
        let visible_at: i64 = col(r, 16)?;
        claimed.push((visible_at, task));
    }
    claimed.sort_by_key(|(v, t)| (*v, t.task_id));
    let mut batch = Batch::default();
    let mut out = Vec::with_capacity(claimed.len());
    for (_, mut task) in claimed {
        let (deadline, kind) = attempt_deadline(&task.options, task.scheduled_ms, now, now);
        task.deadline_ms = Some(deadline);
        let event = EventKind::ActivityStarted {
            activity_seq: task.activity_seq,
            attempt: task.attempt,
            worker: worker_id.to_string(),
        };
        batch.push(
            SQL_START_ACTIVITY,
            vec![
                p(task.task_id),
                p(deadline),
                p(kind_str(kind)),
                p(task.workflow_id.clone()),
                p(now),
                p(task.activity_seq as i64),
                p(to_json(&event)),
            ],
        );
        out.push(task);
    }
    if !out.is_empty() {
        tx.run(batch, true, ctx).await?;
    }
    Ok(out)
}

/// What applying a commit needs, read under the workflow row lock.
struct CommitBase {
    /// The run, for the activity tasks the commit creates.
    run_id: String,
    /// The number of the first event the commit appends.
    next_seq: i64,
    /// The activity tasks the commit's cancel requests concern, as they stand before it:
    /// activity seq -> (pending?, heartbeat details).
    targets: HashMap<u64, (bool, Option<Value>)>,
    /// Events arrived since the task's: put it back as pending.
    rerun: bool,
    /// Bump the workflow task token (a continuation fences out any claim still in flight).
    bump_token: bool,
}

/// A commit whose statements are in a batch; their rows complete its outcome.
struct PendingCommit {
    outcome: CommitOutcome,
    /// Attempts claimed eagerly, each with the index of the statement returning its task id.
    eager: Vec<(usize, ClaimedActivity)>,
}

impl PendingCommit {
    fn complete(self, res: &[Vec<Row>]) -> Result<CommitOutcome> {
        let mut outcome = self.outcome;
        for (i, mut task) in self.eager {
            let row = res.get(i).and_then(|r| r.first()).ok_or_else(|| {
                Error::Database(
                    "Postgres store: an eagerly claimed activity task was not inserted".into(),
                )
            })?;
            task.task_id = col(row, 0)?;
            outcome.eager.push(task);
        }
        Ok(outcome)
    }
}

/// Pushes the statement locking the activity tasks that `commands` ask to cancel (after the
/// workflow row); returns its index, or `None` if there are none. `finished`: see
/// `SQL_CANCEL_TARGETS`.
fn push_cancel_targets(
    batch: &mut Batch,
    workflow_id: &str,
    commands: &[EventKind],
    finished: Option<i64>,
) -> Option<usize> {
    let seqs: Vec<i64> = commands
        .iter()
        .filter_map(|cmd| match cmd {
            EventKind::ActivityCancelRequested { activity_seq } => Some(*activity_seq as i64),
            _ => None,
        })
        .collect();
    if seqs.is_empty() {
        return None;
    }
    Some(batch.push(
        SQL_CANCEL_TARGETS,
        vec![p(workflow_id.to_string()), p(seqs), p(finished)],
    ))
}

fn read_cancel_targets(rows: &[Row]) -> Result<HashMap<u64, (bool, Option<Value>)>> {
    let mut targets = HashMap::with_capacity(rows.len());
    for r in rows {
        let seq: i64 = col(r, 0)?;
        let state: String = col(r, 1)?;
        let details: Option<String> = col(r, 2)?;
        targets.insert(
            seq as u64,
            (
                state == "pending",
                details.and_then(|d| serde_json::from_str(&d).ok()),
            ),
        );
    }
    Ok(targets)
}

fn is_close(cmd: &EventKind) -> bool {
    matches!(
        cmd,
        EventKind::WorkflowCompleted { .. }
            | EventKind::WorkflowFailed { .. }
            | EventKind::WorkflowCancelled { .. }
    )
}

impl PostgresStore {
    /// Pushes what ends an attempt whose task row is locked and whose token matched: the retry
    /// (returns `None`), or the task's deletion (returns the event to append).
    fn push_finish(
        &self,
        batch: &mut Batch,
        task: &ClaimedActivity,
        resolution: ActivityResolution,
        heartbeat_details: Option<Value>,
    ) -> Option<EventKind> {
        let details = heartbeat_details.or(task.heartbeat_details.clone());
        let resolution = match resolution {
            ActivityResolution::Retry { .. } if task.cancel_requested => {
                ActivityResolution::Cancelled {
                    details: details.clone(),
                }
            }
            other => other,
        };
        if let ActivityResolution::Retry { retry_at_ms } = resolution {
            let deadline = pending_deadline(&task.options, task.scheduled_ms, retry_at_ms, false);
            batch.push(
                SQL_ACTIVITY_RETRY,
                vec![
                    p(task.task_id),
                    p(retry_at_ms),
                    p(details.as_ref().map(to_json)),
                    p(deadline.map(|d| d.0)),
                    p(deadline.map(|d| kind_str(d.1))),
                ],
            );
            self.notify(batch);
            return None;
        }
        batch.push(SQL_DELETE_ACTIVITY, vec![p(task.task_id)]);
        resolution.event(task.activity_seq)
    }

    /// Pushes the statements applying a workflow task's commit whose right to commit the caller
    /// checked under the workflow row lock (the SQLite store's `apply_commands`): the `lead` events
    /// (a continuation's activity outcome), the commands and the marker, numbered from
    /// `base.next_seq`; the tasks and timers the commands imply; the workflow closed, or its task
    /// ended or put back (`base.rerun`). New activity tasks that `c.eager` takes are inserted
    /// running, their `ActivityStarted` appended after the marker: the eager claim costs no round
    /// trip.
    fn push_commit(
        &self,
        batch: &mut Batch,
        c: &WorkflowTaskCommit,
        base: CommitBase,
        lead: Vec<EventKind>,
        now: i64,
    ) -> PendingCommit {
        let CommitBase {
            run_id,
            next_seq,
            mut targets,
            mut rerun,
            bump_token,
        } = base;
        let wf = || p(c.workflow_id.clone());
        // Not claimed eagerly: new tasks of a commit that closes the workflow (they are withdrawn)
        // or that this commit cancels (they are deleted).
        let closes = c.commands.iter().any(is_close);
        let cancelled: Vec<u64> = c
            .commands
            .iter()
            .filter_map(|cmd| match cmd {
                EventKind::ActivityCancelRequested { activity_seq } => Some(*activity_seq),
                _ => None,
            })
            .collect();
        let eager_claim = c.eager.as_ref().filter(|_| !closes);

        // The events, numbered here (the caller holds the row lock), and the side effects, in
        // command order.
        let mut closed = false;
        let mut unclaimed = 0usize;
        let mut timers_changed = false;
        let mut events = lead;
        events.reserve(c.commands.len() + 2);
        let mut effects = Batch::default();
        let mut eager: Vec<(usize, ClaimedActivity)> = Vec::new();
        for cmd in &c.commands {
            events.push(cmd.clone());
            match cmd {
                EventKind::ActivityScheduled {
                    activity_seq,
                    activity_type,
                    input,
                    options,
                    task_queue,
                    local: false,
                    ..
                } => {
                    let claim = eager_claim.filter(|e| {
                        eager.len() < e.max
                            && !cancelled.contains(activity_seq)
                            && e.activity_types.contains(activity_type)
                            && e.queues.contains(task_queue)
                    });
                    if let Some(e) = claim {
                        let (deadline, kind) = attempt_deadline(options, now, now, now);
                        let i = effects.push(
                            SQL_INSERT_ACTIVITY_STARTED,
                            vec![
                                wf(),
                                p(run_id.clone()),
                                p(*activity_seq as i64),
                                p(activity_type.clone()),
                                p(task_queue.clone()),
                                p(to_json(input)),
                                p(to_json(options)),
                                p(now),
                                p(deadline),
                                p(kind_str(kind)),
                                p(e.worker_id.clone()),
                            ],
                        );
                        eager.push((
                            i,
                            ClaimedActivity {
                                task_id: 0,
                                workflow_id: c.workflow_id.clone(),
                                run_id: run_id.clone(),
                                activity_seq: *activity_seq,
                                activity_type: activity_type.clone(),
                                task_queue: task_queue.clone(),
                                input: input.clone(),
                                options: options.clone(),
                                attempt: 1,
                                token: 1,
                                scheduled_ms: now,
                                started_ms: now,
                                deadline_ms: Some(deadline),
                                heartbeat_details: None,
                                cancel_requested: false,
                            },
                        ));
                    } else {
                        let deadline = pending_deadline(options, now, now, true);
                        effects.push(
                            SQL_INSERT_ACTIVITY,
                            vec![
                                wf(),
                                p(run_id.clone()),
                                p(*activity_seq as i64),
                                p(activity_type.clone()),
                                p(task_queue.clone()),
                                p(to_json(input)),
                                p(to_json(options)),
                                p(now),
                                p(deadline.map(|d| d.0)),
                                p(deadline.map(|d| kind_str(d.1))),
                            ],
                        );
                        // A task scheduled in this very commit is pending (and deleted if the
                        // commit also cancels it).
                        targets.insert(*activity_seq, (true, None));
                        if !cancelled.contains(activity_seq) {
                            unclaimed += 1;
                        }
                    }
                }
                EventKind::TimerStarted {
                    timer_seq,
                    fire_at_ms,
                } => {
                    effects.push(
                        SQL_UPSERT_TIMER,
                        vec![wf(), p(*timer_seq as i64), p(*fire_at_ms)],
                    );
                    timers_changed = true;
                }
                EventKind::TimerCancelled { timer_seq } => {
                    effects.push(SQL_DELETE_TIMER, vec![wf(), p(*timer_seq as i64)]);
                }
                EventKind::ActivityCancelRequested { activity_seq } => {
                    match targets.get(activity_seq).cloned() {
                        Some((true, details)) => {
                            effects.push(
                                SQL_DELETE_ACTIVITY_BY_SEQ,
                                vec![wf(), p(*activity_seq as i64)],
                            );
                            targets.remove(activity_seq);
                            events.push(EventKind::ActivityCancelled {
                                activity_seq: *activity_seq,
                                details,
                            });
                            rerun = true;
                        }
                        Some((false, _)) => {
                            effects.push(
                                SQL_CANCEL_ACTIVITY_BY_SEQ,
                                vec![wf(), p(*activity_seq as i64)],
                            );
                        }
                        None => {}
                    }
                }
                EventKind::WorkflowCompleted { result } => {
                    closed = true;
                    effects.push(
                        SQL_CLOSE,
                        vec![
                            wf(),
                            p(WorkflowStatus::Completed.as_str()),
                            p(Some(to_json(result))),
                            p(now),
                        ],
                    );
                }
                EventKind::WorkflowFailed { error } => {
                    closed = true;
                    effects.push(
                        SQL_CLOSE,
                        vec![
                            wf(),
                            p(WorkflowStatus::Failed.as_str()),
                            p(Some(to_json(error))),
                            p(now),
                        ],
                    );
                }
                EventKind::WorkflowCancelled {} => {
                    closed = true;
                    effects.push(
                        SQL_CLOSE,
                        vec![
                            wf(),
                            p(WorkflowStatus::Cancelled.as_str()),
                            p(None::<String>),
                            p(now),
                        ],
                    );
                }
                _ => {}
            }
        }
        events.push(EventKind::WorkflowTaskCompleted {
            processed_through: c.processed_through,
            task_time_ms: c.task_time_ms,
        });
        let marker_seq = (next_seq + events.len() as i64 - 1) as u64;
        if let Some(e) = eager_claim {
            for (_, task) in &eager {
                events.push(EventKind::ActivityStarted {
                    activity_seq: task.activity_seq,
                    attempt: task.attempt,
                    worker: e.worker_id.clone(),
                });
            }
        }

        batch.push(
            SQL_INSERT_EVENTS,
            vec![
                wf(),
                p(now),
                p((next_seq..next_seq + events.len() as i64).collect::<Vec<i64>>()),
                p(events
                    .iter()
                    .map(|e| e.name().to_string())
                    .collect::<Vec<_>>()),
                p(events.iter().map(ref_seq).collect::<Vec<_>>()),
                p(events.iter().map(to_json).collect::<Vec<_>>()),
            ],
        );
        let offset = batch.items.len();
        batch.items.extend(effects.items);
        for (i, _) in eager.iter_mut() {
            *i += offset;
        }
        batch.push(
            SQL_SET_NEXT_SEQ,
            vec![
                wf(),
                p(next_seq + events.len() as i64),
                p(!closed),
                p(bump_token),
            ],
        );
        let mut outcome = CommitOutcome {
            marker_seq,
            ..CommitOutcome::default()
        };
        if !closed {
            if rerun {
                batch.push(SQL_WFT_RERUN, vec![wf(), p(now)]);
                outcome.rerun = true;
            } else {
                batch.push(SQL_WFT_DELETE, vec![wf()]);
            }
        }
        // Work for other processes' workers (new tasks this worker did not take, timers) or
        // their clients (a closed workflow).
        if closed || rerun || unclaimed > 0 || timers_changed {
            self.notify(batch);
        }
        PendingCommit { outcome, eager }
    }
}

#[async_trait::async_trait]
impl StoreBackend for PostgresStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    async fn create_workflow(&self, wf: NewWorkflow) -> Result<()> {
        let now = now_ms();
        let started = EventKind::WorkflowStarted {
            workflow_type: wf.workflow_type.clone(),
            input: wf.input.clone(),
            task_queue: wf.task_queue.clone(),
            run_id: wf.run_id.clone(),
        };
        let client = self.client().await?;
        let rows = query(
            &client,
            SQL_CREATE,
            &[
                &wf.workflow_id,
                &wf.run_id,
                &wf.workflow_type,
                &wf.task_queue,
                &to_json(&wf.input),
                &now,
                &to_json(&started),
                &wf.execution_deadline_ms,
                &self.channel,
                &self.instance,
            ],
            "creating a workflow",
        )
        .await?;
        if rows.is_empty() {
            return Err(Error::DuplicateWorkflowId(wf.workflow_id));
        }
        Ok(())
    }

    async fn claim_workflow_tasks(
        &self,
        worker_id: &str,
        queues: &[String],
        types: &[String],
        max: usize,
        lease_ms: i64,
    ) -> Result<Vec<ClaimedWorkflowTask>> {
        if max == 0 || queues.is_empty() || types.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_ms();
        let client = self.client().await?;
        let rows = query(
            &client,
            SQL_CLAIM_WFT,
            &[
                &now,
                &queues,
                &types,
                &(max as i64),
                &worker_id,
                &now.saturating_add(lease_ms),
            ],
            "claiming workflow tasks",
        )
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ClaimedWorkflowTask {
                    workflow_id: col(r, 0)?,
                    run_id: col(r, 1)?,
                    workflow_type: col(r, 2)?,
                    task_queue: col(r, 3)?,
                    token: col(r, 4)?,
                })
            })
            .collect()
    }

    async fn read_history(&self, workflow_id: &str, from_seq: u64) -> Result<Vec<HistoryEvent>> {
        let client = self.client().await?;
        let rows = query(
            &client,
            SQL_READ_HISTORY,
            &[&workflow_id, &(from_seq as i64)],
            "reading history",
        )
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let seq: i64 = col(r, 0)?;
            let payload: String = col(r, 2)?;
            let kind: EventKind = from_json(
                &payload,
                &format!("history event #{seq} of workflow `{workflow_id}`"),
            )?;
            out.push(HistoryEvent {
                seq: seq as u64,
                time_ms: col(r, 1)?,
                kind,
            });
        }
        Ok(out)
    }

    async fn commit_workflow_task(&self, c: WorkflowTaskCommit) -> Result<Option<CommitOutcome>> {
        let ctx = "committing a workflow task";
        let now = now_ms();
        let mut tx = Tx::new(self.client().await?);
        // The workflow row first: its lock serializes this commit with every other writer of the
        // workflow; the token is checked under it. Then (same round trip) the activity tasks the
        // commit's cancel requests concern.
        let mut lock = Batch::default();
        lock.push(SQL_COMMIT_LOCK, vec![p(c.workflow_id.clone())]);
        let targets_at = push_cancel_targets(&mut lock, &c.workflow_id, &c.commands, None);
        let res = tx.run(lock, false, ctx).await?;
        let Some(row) = res[0].first() else {
            return Ok(None);
        };
        let token: i64 = col(row, 0)?;
        let next_seq: i64 = col(row, 1)?;
        let run_id: String = col(row, 2)?;
        let state: Option<String> = col(row, 3)?;
        if token != c.token || state.as_deref() != Some("running") {
            return Ok(None);
        }
        let targets = match targets_at {
            Some(i) => read_cancel_targets(&res[i])?,
            None => HashMap::new(),
        };
        let rerun = (next_seq as u64).saturating_sub(1) > c.processed_through;
        let mut batch = Batch::default();
        let pending = self.push_commit(
            &mut batch,
            &c,
            CommitBase {
                run_id,
                next_seq,
                targets,
                rerun,
                bump_token: false,
            },
            Vec::new(),
            now,
        );
        // LOCAL-ACTIVITY LEASE (new, see `local_lease_pg` at the end of this file): port by hand.
        local_lease_pg::push_keep_leased(&mut batch, &c, pending.outcome.rerun);
        let res = tx.run(batch, true, ctx).await?;
        pending.complete(&res).map(Some)
    }

    async fn hold_workflow_task(
        &self,
        workflow_id: &str,
        token: i64,
        reason: &str,
        retry_at_ms: i64,
    ) -> Result<()> {
        let ctx = "holding a workflow task";
        let mut tx = Tx::new(self.client().await?);
        let rows = tx
            .query(SQL_HOLD_LOCK, vec![p(workflow_id.to_string())], ctx)
            .await?;
        let current: Option<i64> = match rows.first() {
            Some(r) => Some(col(r, 0)?),
            None => None,
        };
        if current != Some(token) {
            return Ok(());
        }
        let mut batch = Batch::default();
        batch.push(
            SQL_HOLD_TASK,
            vec![p(workflow_id.to_string()), p(retry_at_ms)],
        );
        batch.push(
            SQL_HOLD_REASON,
            vec![p(workflow_id.to_string()), p(reason.to_string())],
        );
        self.notify(&mut batch);
        tx.run(batch, true, ctx).await?;
        Ok(())
    }

    async fn release_held(&self) -> Result<u64> {
        let ctx = "releasing held workflows";
        let client = self.client().await?;
        let st = client
            .prepare_cached(SQL_RELEASE_HELD)
            .await
            .map_err(db(ctx))?;
        let n = client.execute(&st, &[&now_ms()]).await.map_err(db(ctx))?;
        if n > 0 {
            let mut batch = Batch::default();
            self.notify(&mut batch);
            batch.run(&client, ctx).await?;
        }
        Ok(n)
    }

    async fn claim_activity_tasks(
        &self,
        worker_id: &str,
        queues: &[String],
        types: &[String],
        max: usize,
    ) -> Result<Vec<ClaimedActivity>> {
        if max == 0 || queues.is_empty() || types.is_empty() {
            return Ok(Vec::new());
        }
        let ctx = "claiming activity tasks";
        let now = now_ms();
        let client = self.client().await?;
        let any = query(&client, SQL_ANY_DUE_ACTIVITY, &[&now, &queues, &types], ctx).await?;
        if !any
            .first()
            .map(|r| col::<bool>(r, 0))
            .transpose()?
            .unwrap_or(false)
        {
            return Ok(Vec::new());
        }
        let mut tx = Tx::new(client);
        // Nothing claimed, nothing written: the transaction is rolled back when dropped.
        claim_activities(&mut tx, worker_id, queues, types, max, now).await
    }

    async fn claim_expired_activities(&self, max: usize) -> Result<Vec<ExpiredActivity>> {
        let now = now_ms();
        let client = self.client().await?;
        let rows = query(
            &client,
            sql_claim_expired(),
            &[&now, &(max as i64), &(now + 30_000)],
            "claiming expired activities",
        )
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let (mut task, kind) = read_activity(r)?;
            // As the SQLite store reports it: the deadline that passed, the new token.
            task.deadline_ms = col(r, 16)?;
            out.push(ExpiredActivity {
                task,
                kind: kind_parse(kind.as_deref())?,
            });
        }
        out.sort_by_key(|e| (e.task.deadline_ms, e.task.task_id));
        Ok(out)
    }

    async fn heartbeat(
        &self,
        task_id: i64,
        token: i64,
        details: Option<Value>,
        new_deadline: (i64, TimeoutKind),
    ) -> Result<Option<bool>> {
        let client = self.client().await?;
        let rows = query(
            &client,
            SQL_HEARTBEAT,
            &[
                &task_id,
                &token,
                &details.as_ref().map(to_json),
                &new_deadline.0,
                &kind_str(new_deadline.1),
            ],
            "recording a heartbeat",
        )
        .await?;
        match rows.first() {
            Some(r) => Ok(Some(col(r, 0)?)),
            None => Ok(None),
        }
    }

    async fn finish_activity(
        &self,
        task_id: i64,
        token: i64,
        resolution: ActivityResolution,
        heartbeat_details: Option<Value>,
    ) -> Result<bool> {
        let ctx = "finishing an activity";
        let now = now_ms();
        let mut tx = Tx::new(self.client().await?);
        // The workflow row, then the task row (pipelined; they run in this order).
        let mut lock = Batch::default();
        lock.push(SQL_FINISH_LOCK_WF, vec![p(task_id)]);
        lock.push(sql_finish_lock_task(), vec![p(task_id)]);
        let res = tx.run(lock, false, ctx).await?;
        let running = match res[0].first() {
            Some(r) => col::<String>(r, 0)? == "running",
            None => false,
        };
        let Some(row) = res[1].first() else {
            return Ok(false);
        };
        let (task, _) = read_activity(row)?;
        if task.token != token {
            return Ok(false);
        }
        let mut batch = Batch::default();
        if let Some(event) = self.push_finish(&mut batch, &task, resolution, heartbeat_details) {
            if running {
                push_append(&mut batch, &task.workflow_id, &event, now, true);
                self.notify(&mut batch);
            }
        }
        tx.run(batch, true, ctx).await?;
        Ok(true)
    }

    async fn finish_activity_and_continue(
        &self,
        task_id: i64,
        token: i64,
        resolution: ActivityResolution,
        heartbeat_details: Option<Value>,
        cont: Continuation,
    ) -> Result<FinishOutcome> {
        let ctx = "finishing an activity and continuing its workflow";
        let now = now_ms();
        let workflow_id = cont.commit.workflow_id.clone();
        let mut tx = Tx::new(self.client().await?);
        // One round trip: the workflow row, then the task row (locked in this order), then what
        // the continuation is checked against, read under the workflow row lock (every writer of
        // the workflow's history and tasks takes it first), then the cancel targets.
        let mut lock = Batch::default();
        lock.push(SQL_FINISH_LOCK_WF, vec![p(task_id)]);
        lock.push(sql_finish_lock_task(), vec![p(task_id)]);
        lock.push(SQL_CONTINUE_QUEUED, vec![p(workflow_id.clone())]);
        lock.push(
            SQL_CONTINUE_UNSEEN,
            vec![p(workflow_id.clone()), p(cont.delivered_through as i64)],
        );
        let targets_at = push_cancel_targets(
            &mut lock,
            &workflow_id,
            &cont.commit.commands,
            Some(task_id),
        );
        let res = tx.run(lock, false, ctx).await?;
        let fenced = FinishOutcome {
            recorded: false,
            continued: None,
        };
        let Some(row) = res[1].first() else {
            return Ok(fenced);
        };
        let (task, _) = read_activity(row)?;
        if task.token != token {
            return Ok(fenced);
        }
        let recorded = FinishOutcome {
            recorded: true,
            continued: None,
        };
        // A continuation is computed with the attempt's outcome event: a retry has none.
        let retry = matches!(resolution, ActivityResolution::Retry { .. });
        let mut batch = Batch::default();
        let Some(event) = self.push_finish(&mut batch, &task, resolution, heartbeat_details) else {
            tx.run(batch, true, ctx).await?;
            return Ok(recorded);
        };
        let (running, next_seq, run_id) = match res[0].first() {
            Some(r) => (
                col::<String>(r, 0)? == "running",
                col::<i64>(r, 1)?,
                col::<String>(r, 2)?,
            ),
            None => (false, 0, String::new()),
        };
        if !running {
            tx.run(batch, true, ctx).await?;
            return Ok(recorded);
        }
        let queued: bool = match res[2].first() {
            Some(r) => col(r, 0)?,
            None => true,
        };
        let mut saw_all = !retry && task.workflow_id == workflow_id && !queued;
        for r in &res[3] {
            let seq = col::<i64>(r, 0)? as u64;
            let event_type: String = col(r, 1)?;
            if !(seq <= cont.own_marker_seq
                && crate::history::format::is_command_or_marker_name(&event_type))
            {
                saw_all = false;
            }
        }
        if !saw_all {
            push_append(&mut batch, &task.workflow_id, &event, now, true);
            self.notify(&mut batch);
            tx.run(batch, true, ctx).await?;
            return Ok(recorded);
        }
        // The worker's instance saw everything up to this event: its commands are the next
        // workflow task (committed with the token bumped, fencing out any claim in flight).
        let mut targets = match targets_at {
            Some(i) => read_cancel_targets(&res[i])?,
            None => HashMap::new(),
        };
        // The finished attempt's task is deleted by this transaction.
        targets.remove(&task.activity_seq);
        let event_seq = next_seq as u64;
        let mut commit = cont.commit;
        commit.processed_through = event_seq;
        let pending = self.push_commit(
            &mut batch,
            &commit,
            CommitBase {
                run_id,
                next_seq,
                targets,
                rerun: false,
                bump_token: true,
            },
            vec![event],
            now,
        );
        let res = tx.run(batch, true, ctx).await?;
        Ok(FinishOutcome {
            recorded: true,
            continued: Some((event_seq, pending.complete(&res)?)),
        })
    }

    async fn record_local_activity(
        &self,
        workflow_id: &str,
        activity_seq: u64,
        result: Result<Value, ActivityError>,
    ) -> Result<bool> {
        let ctx = "recording a local activity";
        let now = now_ms();
        let mut tx = Tx::new(self.client().await?);
        let mut check = Batch::default();
        check.push(SQL_LOCK_STATUS, vec![p(workflow_id.to_string())]);
        check.push(
            SQL_LOCAL_DONE,
            vec![p(workflow_id.to_string()), p(activity_seq as i64)],
        );
        let res = tx.run(check, false, ctx).await?;
        let running = match res[0].first() {
            Some(r) => col::<String>(r, 0)? == "running",
            None => false,
        };
        if !running || !res[1].is_empty() {
            return Ok(false);
        }
        let event = match result {
            Err(ActivityError::Cancelled { details }) => EventKind::ActivityCancelled {
                activity_seq,
                details,
            },
            result => EventKind::LocalActivityMarker {
                activity_seq,
                result,
            },
        };
        let mut batch = Batch::default();
        push_append(&mut batch, workflow_id, &event, now, true);
        self.notify(&mut batch);
        tx.run(batch, true, ctx).await?;
        Ok(true)
    }

    async fn renew_local_lease(
        &self,
        workflow_id: &str,
        token: i64,
        seen_through: u64,
        request: super::LeaseRequest,
    ) -> Result<super::LeaseState> {
        // LOCAL-ACTIVITY LEASE (new, see `local_lease_pg` at the end of this file): port by hand.
        local_lease_pg::renew(self, workflow_id, token, seen_through, request).await
    }

    async fn fire_due_timers(&self, max: usize) -> Result<usize> {
        let ctx = "firing timers";
        let now = now_ms();
        let client = self.client().await?;
        let any = query(&client, SQL_ANY_DUE_TIMER, &[&now], ctx).await?;
        if !any
            .first()
            .map(|r| col::<bool>(r, 0))
            .transpose()?
            .unwrap_or(false)
        {
            return Ok(0);
        }
        let mut tx = Tx::new(client);
        let due = tx
            .query(SQL_DUE_TIMERS, vec![p(now), p(max as i64)], ctx)
            .await?;
        if due.is_empty() {
            return Ok(0);
        }
        let mut batch = Batch::default();
        let mut closed: Vec<String> = Vec::new();
        for r in &due {
            let wf: String = col(r, 0)?;
            let seq: i64 = col(r, 1)?;
            let status: String = col(r, 2)?;
            batch.push(SQL_DELETE_TIMER, vec![p(wf.clone()), p(seq)]);
            if status != "running" || closed.contains(&wf) {
                continue;
            }
            if seq == 0 {
                let error = WorkflowError::application(
                    "ExecutionTimeout",
                    "the workflow ran past its execution_timeout",
                );
                push_append(
                    &mut batch,
                    &wf,
                    &EventKind::WorkflowFailed {
                        error: error.clone(),
                    },
                    now,
                    false,
                );
                batch.push(
                    SQL_CLOSE,
                    vec![
                        p(wf.clone()),
                        p(WorkflowStatus::Failed.as_str()),
                        p(Some(to_json(&error))),
                        p(now),
                    ],
                );
                closed.push(wf);
            } else {
                push_append(
                    &mut batch,
                    &wf,
                    &EventKind::TimerFired {
                        timer_seq: seq as u64,
                    },
                    now,
                    true,
                );
            }
        }
        self.notify(&mut batch);
        tx.run(batch, true, ctx).await?;
        Ok(due.len())
    }

    async fn next_due_ms(
        &self,
        queues: &[String],
        workflow_types: &[String],
        activity_types: &[String],
    ) -> Result<Option<i64>> {
        let client = self.client().await?;
        let rows = query(
            &client,
            SQL_NEXT_DUE,
            &[&queues, &workflow_types, &activity_types],
            "reading the next due time",
        )
        .await?;
        match rows.first() {
            Some(r) => col(r, 0),
            None => Ok(None),
        }
    }

    async fn request_cancel_workflow(&self, workflow_id: &str) -> Result<bool> {
        let ctx = "requesting a cancel";
        let now = now_ms();
        let mut tx = Tx::new(self.client().await?);
        let rows = tx
            .query(SQL_LOCK_STATUS, vec![p(workflow_id.to_string())], ctx)
            .await?;
        let Some(row) = rows.first() else {
            return Err(Error::WorkflowNotFound(workflow_id.to_string()));
        };
        let status: String = col(row, 0)?;
        let requested: bool = col(row, 1)?;
        if status != "running" {
            return Ok(false);
        }
        if !requested {
            let mut batch = Batch::default();
            batch.push(SQL_SET_CANCEL_REQUESTED, vec![p(workflow_id.to_string())]);
            push_append(
                &mut batch,
                workflow_id,
                &EventKind::WorkflowCancelRequested {},
                now,
                true,
            );
            self.notify(&mut batch);
            tx.run(batch, true, ctx).await?;
        }
        Ok(true)
    }

    async fn describe(&self, workflow_id: &str) -> Result<Option<WorkflowDescription>> {
        let ctx = "describing a workflow";
        // One snapshot for both reads.
        let mut tx = Tx::with_begin(
            self.client().await?,
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        );
        let mut batch = Batch::default();
        batch.push(SQL_DESCRIBE, vec![p(workflow_id.to_string())]);
        batch.push(SQL_DESCRIBE_ACTIVITIES, vec![p(workflow_id.to_string())]);
        let res = tx.run(batch, false, ctx).await?;
        let Some(r) = res[0].first() else {
            return Ok(None);
        };
        let status = WorkflowStatus::parse(&col::<String>(r, 3)?)?;
        let stored: Option<String> = col(r, 4)?;
        let what = |w: &str| format!("{w} of workflow `{workflow_id}`");
        let (result, error) = match (status, stored) {
            (WorkflowStatus::Completed, Some(v)) => {
                (Some(from_json(&v, &what("the result"))?), None)
            }
            (WorkflowStatus::Failed, Some(e)) => (None, Some(from_json(&e, &what("the error"))?)),
            _ => (None, None),
        };
        let next_seq: i64 = col(r, 7)?;
        let mut pending = Vec::with_capacity(res[1].len());
        for a in &res[1] {
            let d: Option<String> = col(a, 5)?;
            pending.push(PendingActivity {
                activity_seq: col::<i64>(a, 0)? as u64,
                activity_type: col(a, 1)?,
                state: col(a, 2)?,
                attempt: col::<i64>(a, 3)? as u32,
                cancel_requested: col(a, 4)?,
                heartbeat_details: d.and_then(|d| serde_json::from_str(&d).ok()),
            });
        }
        Ok(Some(WorkflowDescription {
            workflow_id: workflow_id.to_string(),
            run_id: col(r, 0)?,
            workflow_type: col(r, 1)?,
            task_queue: col(r, 2)?,
            status,
            result,
            error,
            started_ms: col(r, 5)?,
            closed_ms: col(r, 6)?,
            history_length: (next_seq - 1).max(0) as u64,
            held_reason: col(r, 8)?,
            cancel_requested: col(r, 9)?,
            pending_activities: pending,
        }))
    }

    async fn list(&self, filter: &ListFilter) -> Result<Vec<WorkflowSummary>> {
        let status = filter.status.map(|s| s.as_str());
        let limit = filter.limit.unwrap_or(1000).min(i64::MAX as usize) as i64;
        let client = self.client().await?;
        let rows = query(
            &client,
            SQL_LIST,
            &[&status, &filter.workflow_type, &limit],
            "listing workflows",
        )
        .await?;
        rows.iter()
            .map(|r| {
                Ok(WorkflowSummary {
                    workflow_id: col(r, 0)?,
                    run_id: col(r, 1)?,
                    workflow_type: col(r, 2)?,
                    status: WorkflowStatus::parse(&col::<String>(r, 3)?)?,
                    started_ms: col(r, 4)?,
                    closed_ms: col(r, 5)?,
                })
            })
            .collect()
    }

    fn external_wakeups(&self) -> Option<broadcast::Receiver<()>> {
        Some(self.wake_tx.subscribe())
    }
}

// =============================================================================================
// LOCAL-ACTIVITY LEASE: new in this change, kept apart so that it is easy to port by hand to the
// rewritten Postgres store. Two pieces:
//
// 1. `push_keep_leased`, called by `commit_workflow_task` after `push_commit`: a commit whose
//    `WorkflowTaskCommit::local_lease` is set, and that neither closes the workflow nor is put back
//    (rerun), keeps the workflow task running, leased to the worker until `until_ms`, instead of
//    deleting it (the engine's `WorkflowTaskEffect::Lease`; SQLite: `sqlite/apply.rs`).
// 2. `renew`, the `StoreBackend::renew_local_lease` transition: reads the facts
//    `engine::local::renew` needs (status, token, task state, the event types after
//    `seen_through`) under the workflow row lock and applies its plan (`Requeue` or `Lease`).
//
// Continuations (`finish_activity_and_continue`) never carry a lease: the worker does not take the
// one-commit step for a workflow with local activities running.
// =============================================================================================
mod local_lease_pg {
    use super::*;
    use crate::engine::plan::{Effect, WorkflowTaskEffect};
    use crate::engine::{LeaseRequest, LeaseState, TaskState, WorkflowFacts};

    /// The workflow task stays (or is put back) running, leased to `$2` until `$3`.
    const SQL_LEASE_KEEP: &str = "
INSERT INTO workflow_tasks(workflow_id, task_queue, workflow_type, state, visible_at, lease_owner,
                           lease_expires)
SELECT workflow_id, task_queue, workflow_type, 'running', $3::BIGINT, $2::TEXT, $3::BIGINT
  FROM workflows WHERE workflow_id = $1::TEXT AND status = 'running'
ON CONFLICT (workflow_id) DO UPDATE SET state = 'running', lease_owner = excluded.lease_owner,
       lease_expires = excluded.lease_expires";

    /// The workflow row (locked), its task's state, and the types of the events after `$2`.
    const SQL_LEASE_LOCK: &str = "
SELECT w.status, w.wft_token,
       (SELECT t.state FROM workflow_tasks t WHERE t.workflow_id = w.workflow_id),
       ARRAY(SELECT h.event_type FROM history h
              WHERE h.workflow_id = w.workflow_id AND h.seq > $2::BIGINT ORDER BY h.seq)
  FROM workflows w WHERE w.workflow_id = $1::TEXT
   FOR UPDATE OF w";

    pub(super) fn push_keep_leased(batch: &mut Batch, c: &WorkflowTaskCommit, rerun: bool) {
        let Some(lease) = &c.local_lease else {
            return;
        };
        if rerun || c.commands.iter().any(is_close) {
            return;
        }
        batch.push(
            SQL_LEASE_KEEP,
            vec![
                p(c.workflow_id.clone()),
                p(lease.worker_id.clone()),
                p(lease.until_ms),
            ],
        );
    }

    pub(super) async fn renew(
        store: &PostgresStore,
        workflow_id: &str,
        token: i64,
        seen_through: u64,
        request: LeaseRequest,
    ) -> Result<LeaseState> {
        let ctx = "renewing a local-activity lease";
        let now = now_ms();
        let mut tx = Tx::new(store.client().await?);
        let rows = tx
            .query(
                SQL_LEASE_LOCK,
                vec![p(workflow_id.to_string()), p(seen_through as i64)],
                ctx,
            )
            .await?;
        let Some(row) = rows.first() else {
            tx.run(Batch::default(), true, ctx).await?;
            return Ok(LeaseState::Lost);
        };
        let status: String = col(row, 0)?;
        let task: Option<String> = col(row, 2)?;
        let unseen: Vec<String> = col(row, 3)?;
        let facts = WorkflowFacts {
            workflow_id: workflow_id.to_string(),
            run_id: String::new(),
            status: WorkflowStatus::parse(&status)?,
            next_event_seq: 0,
            wft_token: col(row, 1)?,
            task: task.as_deref().map(TaskState::parse).transpose()?,
            cancel_requested: false,
            activities: HashMap::new(),
            unseen: unseen.into_iter().map(|name| (0, name)).collect(),
        };
        let (state, plan) = crate::engine::local::renew(&facts, token, &request, now);
        let mut batch = Batch::default();
        if let Some(plan) = plan {
            for effect in &plan.effects {
                match effect {
                    Effect::WorkflowTask(WorkflowTaskEffect::Requeue { at_ms }) => {
                        batch.push(SQL_WFT_RERUN, vec![p(workflow_id.to_string()), p(*at_ms)]);
                    }
                    Effect::WorkflowTask(WorkflowTaskEffect::Lease { owner, until_ms }) => {
                        batch.push(
                            SQL_LEASE_KEEP,
                            vec![
                                p(workflow_id.to_string()),
                                p(owner.clone()),
                                p(*until_ms),
                            ],
                        );
                    }
                    other => {
                        return Err(Error::Database(format!(
                            "Postgres store: a lease renewal planned an effect it does not apply: {other:?}"
                        )))
                    }
                }
            }
            if plan.wake {
                store.notify(&mut batch);
            }
        }
        tx.run(batch, true, ctx).await?;
        Ok(state)
    }
}
