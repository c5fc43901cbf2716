//! The embedded store: one SQLite file in WAL mode with `synchronous=FULL`.
//!
//! One writer thread owns the connection. Every store call is a job sent to it; the thread takes all
//! jobs that are waiting, runs each inside a savepoint of one transaction, commits once, and only then
//! answers each caller: many workflows' transitions share one fsync (group commit), and no caller
//! hears of a write before it is durable.

use super::{
    attempt_deadline, now_ms, pending_deadline, ActivityResolution, ClaimedActivity,
    ClaimedWorkflowTask, CommitOutcome, Continuation, ExpiredActivity, FinishOutcome, ListFilter,
    NewWorkflow, PendingActivity, StoreBackend, WorkflowDescription, WorkflowStatus,
    WorkflowSummary, WorkflowTaskCommit,
};
use super::{from_json, kind_parse, kind_str, ref_seq, to_json};
use crate::definition::ActivityOptions;
use crate::error::{ActivityError, Error, Result, TimeoutKind, WorkflowError};
use crate::history::{EventKind, HistoryEvent};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;
use std::path::Path;
use std::sync::mpsc;
use tokio::sync::oneshot;

/// The schema this build writes. Older files are migrated; newer ones are refused.
pub(crate) const SCHEMA_VERSION: i64 = 1;
const FORMAT_MARKER: &str = "duraflow";

/// Migrations, index `i` takes a file from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE duraflow_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE workflows (
    workflow_id    TEXT PRIMARY KEY,
    run_id         TEXT NOT NULL,
    workflow_type  TEXT NOT NULL,
    task_queue     TEXT NOT NULL,
    status         TEXT NOT NULL,
    input          TEXT NOT NULL,
    result         TEXT,
    next_event_seq INTEGER NOT NULL,
    wft_token      INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    held_reason    TEXT,
    created_ms     INTEGER NOT NULL,
    closed_ms      INTEGER
);
CREATE INDEX workflows_by_status ON workflows(status, workflow_type, created_ms);
CREATE TABLE history (
    workflow_id TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    time_ms     INTEGER NOT NULL,
    event_type  TEXT NOT NULL,
    ref_seq     INTEGER,
    payload     TEXT NOT NULL,
    PRIMARY KEY (workflow_id, seq)
) WITHOUT ROWID;
CREATE TABLE workflow_tasks (
    workflow_id   TEXT PRIMARY KEY,
    task_queue    TEXT NOT NULL,
    workflow_type TEXT NOT NULL,
    state         TEXT NOT NULL,
    visible_at    INTEGER NOT NULL,
    lease_owner   TEXT,
    lease_expires INTEGER
);
CREATE INDEX workflow_tasks_due ON workflow_tasks(state, visible_at);
CREATE TABLE activity_tasks (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    workflow_id   TEXT NOT NULL,
    run_id        TEXT NOT NULL,
    activity_seq  INTEGER NOT NULL,
    activity_type TEXT NOT NULL,
    task_queue    TEXT NOT NULL,
    input         TEXT NOT NULL,
    options       TEXT NOT NULL,
    state         TEXT NOT NULL,
    attempt       INTEGER NOT NULL DEFAULT 0,
    token         INTEGER NOT NULL DEFAULT 0,
    visible_at    INTEGER NOT NULL,
    scheduled_ms  INTEGER NOT NULL,
    started_ms    INTEGER,
    deadline_ms   INTEGER,
    deadline_kind TEXT,
    lease_owner   TEXT,
    heartbeat_details TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    UNIQUE (workflow_id, activity_seq)
);
CREATE INDEX activity_tasks_due ON activity_tasks(state, visible_at);
CREATE INDEX activity_tasks_deadline ON activity_tasks(deadline_ms);
CREATE TABLE timers (
    workflow_id TEXT NOT NULL,
    timer_seq   INTEGER NOT NULL,
    fire_at     INTEGER NOT NULL,
    PRIMARY KEY (workflow_id, timer_seq)
) WITHOUT ROWID;
CREATE INDEX timers_due ON timers(fire_at);
"#];

/// How hard each commit holds on to the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Durability {
    /// `synchronous=FULL`: a completed step survives power loss.
    Full,
    /// `synchronous=NORMAL`: survives a process crash, not always a power loss.
    Normal,
    /// In memory.
    Memory,
}

type Reply = Box<dyn FnOnce(std::result::Result<(), String>) + Send>;
/// A store call: run against the connection (or `None` when no transaction could begin).
type Job = Box<dyn FnOnce(Option<&Connection>) -> (bool, Reply) + Send>;

pub(crate) struct SqliteStore {
    jobs: mpsc::Sender<Job>,
    kind: &'static str,
}

fn db_err(e: rusqlite::Error) -> Error {
    Error::Database(e.to_string())
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        db_err(e)
    }
}

impl SqliteStore {
    pub(crate) fn open(path: &Path, durability: Durability) -> Result<Self> {
        let display = path.display().to_string();
        let existed = path.exists()
            && std::fs::metadata(path)
                .map(|m| m.len() > 0)
                .unwrap_or(false);
        let conn = Connection::open(path)
            .map_err(|e| Error::Store(format!("cannot open `{display}`: {e}")))?;
        Self::check_existing(&conn, &display, existed)?;
        Self::start(conn, durability)
    }

    pub(crate) fn memory() -> Result<Self> {
        let conn = Connection::open_in_memory()?;
        Self::start(conn, Durability::Memory)
    }

    /// Refuses a file that is not ours, is newer than this build, or is damaged, before anything is
    /// written to it.
    fn check_existing(conn: &Connection, display: &str, existed: bool) -> Result<()> {
        if !existed {
            return Ok(());
        }
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
            .and_then(|mut st| {
                st.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(|e| {
                Error::Store(format!(
                    "`{display}` is not a readable SQLite database ({e}); it may be corrupt or another kind of file. It was left untouched: point duraflow at a new path, or restore a backup"
                ))
            })?;
        if tables.is_empty() {
            return Ok(());
        }
        if !tables.iter().any(|t| t == "duraflow_meta") {
            return Err(Error::Store(format!(
                "`{display}` is a SQLite database of another program (tables: {}); duraflow will not touch it. Use a new file for duraflow",
                tables.join(", ")
            )));
        }
        let marker: Option<String> = qrow(
            conn,
            "SELECT value FROM duraflow_meta WHERE key = 'format'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| Error::Store(format!("`{display}`: cannot read duraflow_meta: {e}")))?;
        if marker.as_deref() != Some(FORMAT_MARKER) {
            return Err(Error::Store(format!(
                "`{display}` has a duraflow_meta table but no duraflow format marker; it was not written by duraflow and was left untouched"
            )));
        }
        let version: i64 = qrow(
            conn,
            "SELECT value FROM duraflow_meta WHERE key = 'schema_version'",
            [],
            |r| r.get::<_, String>(0),
        )
        .map_err(|e| Error::Store(format!("`{display}`: no schema version: {e}")))?
        .parse()
        .map_err(|_| Error::Store(format!("`{display}`: schema version is not a number")))?;
        if version > SCHEMA_VERSION {
            return Err(Error::Store(format!(
                "`{display}` has schema version {version}, newer than this build of duraflow understands ({SCHEMA_VERSION}); upgrade duraflow. The file was left untouched"
            )));
        }
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|e| Error::Store(format!("`{display}`: integrity check failed: {e}")))?;
        if check != "ok" {
            return Err(Error::Store(format!(
                "`{display}` is damaged (SQLite quick_check: {check}); it was left untouched. Restore a backup"
            )));
        }
        Ok(())
    }

    fn start(conn: Connection, durability: Durability) -> Result<Self> {
        match durability {
            Durability::Memory => {}
            Durability::Full | Durability::Normal => {
                let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
                if !mode.eq_ignore_ascii_case("wal") {
                    return Err(Error::Store(format!(
                        "SQLite refused WAL mode (got `{mode}`); the file system may not support it"
                    )));
                }
                let sync = if durability == Durability::Full {
                    "FULL"
                } else {
                    "NORMAL"
                };
                conn.execute_batch(&format!("PRAGMA synchronous={sync};"))?;
            }
        }
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.set_prepared_statement_cache_capacity(128);
        // Keep each cached statement's query plan: the bundled SQLite (STAT4) would otherwise
        // re-prepare a statement whenever a bound value compared with an indexed column changes,
        // which is every call here (27% of the store's instructions in a profile).
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )?;
        migrate(&conn)?;
        let kind = match durability {
            Durability::Full => "sqlite-wal-full",
            Durability::Normal => "sqlite-wal-normal",
            Durability::Memory => "memory",
        };
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("duraflow-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(|e| Error::Store(format!("cannot start the SQLite writer thread: {e}")))?;
        Ok(SqliteStore { jobs: tx, kind })
    }

    /// Runs `f` on the writer thread inside the next group commit; answers after the commit.
    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |conn| {
            let r = match conn {
                Some(conn) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn)))
                    .unwrap_or_else(|_| {
                        Err(Error::Store("internal error: a store job panicked".into()))
                    }),
                None => Err(Error::Database("could not begin a transaction".into())),
            };
            let failed = r.is_err();
            let reply: Reply = Box::new(move |commit| {
                let r = match commit {
                    Ok(()) => r,
                    Err(e) => Err(Error::Database(format!("commit failed: {e}"))),
                };
                let _ = tx.send(r);
            });
            (failed, reply)
        });
        self.jobs.send(job).map_err(|_| Error::Shutdown)?;
        rx.await.map_err(|_| Error::Shutdown)?
    }
}

fn migrate(conn: &Connection) -> Result<()> {
    let has_meta: bool = qrow(
        conn,
        "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='duraflow_meta'",
        [],
        |r| r.get::<_, i64>(0),
    )? > 0;
    let current: i64 = if has_meta {
        qrow(
            conn,
            "SELECT value FROM duraflow_meta WHERE key='schema_version'",
            [],
            |r| r.get::<_, String>(0),
        )?
        .parse()
        .unwrap_or(0)
    } else {
        0
    };
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let to = i as i64 + 1;
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let r = conn.execute_batch(sql).and_then(|_| {
            exec(
                conn,
                "INSERT INTO duraflow_meta(key, value) VALUES ('format', ?1), ('schema_version', ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![FORMAT_MARKER, to.to_string()],
            )
        });
        match r {
            Ok(_) => conn.execute_batch("COMMIT")?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(Error::Store(format!(
                    "migration to schema {to} failed: {e}"
                )));
            }
        }
    }
    Ok(())
}

fn writer_loop(conn: Connection, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < 512 {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let mut replies = Vec::with_capacity(jobs.len());
        if let Err(e) = exec(&conn, "BEGIN IMMEDIATE", []) {
            let msg = e.to_string();
            for job in jobs {
                let (_, reply) = job(None);
                reply(Err(msg.clone()));
            }
            continue;
        }
        for job in jobs {
            let _ = exec(&conn, "SAVEPOINT job", []);
            let (failed, reply) = job(Some(&conn));
            if failed {
                let _ = exec(&conn, "ROLLBACK TO job", []);
            }
            let _ = exec(&conn, "RELEASE job", []);
            replies.push(reply);
        }
        let commit = exec(&conn, "COMMIT", [])
            .map(|_| ())
            .map_err(|e| e.to_string());
        if commit.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for r in replies {
            r(commit.clone());
        }
    }
}

/// `execute` through the statement cache: SQL text is parsed once per connection.
fn exec<P: rusqlite::Params>(conn: &Connection, sql: &str, params: P) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// `query_row` through the statement cache.
fn qrow<T, P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached(sql)?.query_row(params, f)
}

// ---------------------------------------------------------------------------------------------
// Transaction helpers (run on the writer thread).

fn append(conn: &Connection, workflow_id: &str, kind: &EventKind, now: i64) -> Result<u64> {
    let seq: i64 = qrow(
        conn,
        "UPDATE workflows SET next_event_seq = next_event_seq + 1 WHERE workflow_id = ?1
         RETURNING next_event_seq - 1",
        params![workflow_id],
        |r| r.get(0),
    )?;
    let ref_seq = ref_seq(kind);
    exec(
        conn,
        "INSERT INTO history(workflow_id, seq, time_ms, event_type, ref_seq, payload)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![workflow_id, seq, now, kind.name(), ref_seq, to_json(kind)],
    )?;
    Ok(seq as u64)
}

fn enqueue_workflow_task(conn: &Connection, workflow_id: &str, now: i64) -> Result<()> {
    exec(
        conn,
        "INSERT INTO workflow_tasks(workflow_id, task_queue, workflow_type, state, visible_at)
         SELECT workflow_id, task_queue, workflow_type, 'pending', ?2 FROM workflows
         WHERE workflow_id = ?1 AND status = 'running'
         ON CONFLICT(workflow_id) DO NOTHING",
        params![workflow_id, now],
    )?;
    Ok(())
}

fn workflow_running(conn: &Connection, workflow_id: &str) -> Result<bool> {
    Ok(qrow(
        conn,
        "SELECT status FROM workflows WHERE workflow_id = ?1",
        params![workflow_id],
        |r| r.get::<_, String>(0),
    )
    .optional()?
    .as_deref()
        == Some("running"))
}

/// Ends a workflow: status and result, and every task of it withdrawn; running attempts are told to
/// cancel at their next heartbeat.
fn close_workflow(
    conn: &Connection,
    workflow_id: &str,
    status: WorkflowStatus,
    result: Option<String>,
    now: i64,
) -> Result<()> {
    exec(
        conn,
        "UPDATE workflows SET status = ?2, result = ?3, closed_ms = ?4, held_reason = NULL
         WHERE workflow_id = ?1",
        params![workflow_id, status.as_str(), result, now],
    )?;
    exec(
        conn,
        "DELETE FROM workflow_tasks WHERE workflow_id = ?1",
        params![workflow_id],
    )?;
    exec(
        conn,
        "DELETE FROM timers WHERE workflow_id = ?1",
        params![workflow_id],
    )?;
    exec(
        conn,
        "DELETE FROM activity_tasks WHERE workflow_id = ?1 AND state = 'pending'",
        params![workflow_id],
    )?;
    exec(
        conn,
        "UPDATE activity_tasks SET cancel_requested = 1 WHERE workflow_id = ?1",
        params![workflow_id],
    )?;
    Ok(())
}

const ACTIVITY_COLS: &str =
    "id, workflow_id, run_id, activity_seq, activity_type, task_queue, input,
    options, attempt, token, scheduled_ms, started_ms, deadline_ms, heartbeat_details,
    cancel_requested, deadline_kind";

fn read_activity(r: &rusqlite::Row<'_>) -> rusqlite::Result<(ClaimedActivity, Option<String>)> {
    let input: String = r.get(6)?;
    let options: String = r.get(7)?;
    let details: Option<String> = r.get(13)?;
    Ok((
        ClaimedActivity {
            task_id: r.get(0)?,
            workflow_id: r.get(1)?,
            run_id: r.get(2)?,
            activity_seq: r.get::<_, i64>(3)? as u64,
            activity_type: r.get(4)?,
            task_queue: r.get(5)?,
            // A damaged payload must not block the claims behind it: the attempt then fails with a
            // payload error naming the type, and damaged options fall back to the defaults.
            input: serde_json::from_str(&input).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "an activity task's stored input is not valid JSON");
                Value::Null
            }),
            options: serde_json::from_str(&options).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "an activity task's stored options are not valid JSON; using the defaults");
                Default::default()
            }),
            attempt: r.get::<_, i64>(8)? as u32,
            token: r.get(9)?,
            scheduled_ms: r.get(10)?,
            started_ms: r.get::<_, Option<i64>>(11)?.unwrap_or(0),
            deadline_ms: r.get(12)?,
            heartbeat_details: details.and_then(|d| serde_json::from_str(&d).ok()),
            cancel_requested: r.get::<_, i64>(14)? != 0,
        },
        r.get(15)?,
    ))
}

fn claim_activities(
    conn: &Connection,
    worker_id: &str,
    queues: &str,
    types: &str,
    max: usize,
    only_workflow: Option<&str>,
    now: i64,
) -> Result<Vec<ClaimedActivity>> {
    let ids: Vec<i64> = {
        // Two statements, so each gets the index that fits: one workflow's new tasks (eager claim at
        // commit), or every due task of the queues.
        let mut st = conn.prepare_cached(if only_workflow.is_some() {
            "SELECT id FROM activity_tasks INDEXED BY sqlite_autoindex_activity_tasks_1
             WHERE workflow_id = ?4 AND state = 'pending' AND visible_at <= ?1
               AND task_queue IN (SELECT value FROM json_each(?2))
               AND activity_type IN (SELECT value FROM json_each(?3))
             ORDER BY visible_at, id LIMIT ?5"
        } else {
            "SELECT id FROM activity_tasks
             WHERE state = 'pending' AND visible_at <= ?1
               AND task_queue IN (SELECT value FROM json_each(?2))
               AND activity_type IN (SELECT value FROM json_each(?3))
               AND ?4 IS NULL
             ORDER BY visible_at, id LIMIT ?5"
        })?;
        let rows = st.query_map(
            params![now, queues, types, only_workflow, max as i64],
            |r| r.get(0),
        )?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let (mut task, _) = qrow(
            conn,
            &format!("SELECT {ACTIVITY_COLS} FROM activity_tasks WHERE id = ?1"),
            params![id],
            read_activity,
        )?;
        task.attempt += 1;
        task.token += 1;
        task.started_ms = now;
        let (deadline, kind) = attempt_deadline(&task.options, task.scheduled_ms, now, now);
        task.deadline_ms = Some(deadline);
        exec(
                conn,
            "UPDATE activity_tasks SET state = 'running', attempt = ?2, token = ?3, started_ms = ?4,
                 deadline_ms = ?5, deadline_kind = ?6, lease_owner = ?7 WHERE id = ?1",
            params![id, task.attempt, task.token, now, deadline, kind_str(kind), worker_id],
        )?;
        append(
            conn,
            &task.workflow_id,
            &EventKind::ActivityStarted {
                activity_seq: task.activity_seq,
                attempt: task.attempt,
                worker: worker_id.to_string(),
            },
            now,
        )?;
        out.push(task);
    }
    Ok(out)
}

/// Appends a workflow task's commands and its marker, creates the tasks and timers they imply, and
/// ends or re-queues the workflow task. The caller has checked the right to commit.
fn apply_commands(
    conn: &Connection,
    c: &WorkflowTaskCommit,
    mut rerun: bool,
    now: i64,
) -> Result<CommitOutcome> {
    let mut closed = false;
    let mut new_activities = false;
    for cmd in &c.commands {
        append(conn, &c.workflow_id, cmd, now)?;
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
                let deadline = pending_deadline(options, now, now, true);
                exec(
                    conn,
                    "INSERT INTO activity_tasks(workflow_id, run_id, activity_seq, activity_type,
                         task_queue, input, options, state, visible_at, scheduled_ms,
                         deadline_ms, deadline_kind)
                     SELECT ?1, run_id, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?7, ?8, ?9
                     FROM workflows WHERE workflow_id = ?1",
                    params![
                        c.workflow_id,
                        *activity_seq as i64,
                        activity_type,
                        task_queue,
                        to_json(input),
                        to_json(options),
                        now,
                        deadline.map(|d| d.0),
                        deadline.map(|d| kind_str(d.1)),
                    ],
                )?;
                new_activities = true;
            }
            EventKind::TimerStarted {
                timer_seq,
                fire_at_ms,
            } => {
                exec(
                    conn,
                    "INSERT OR REPLACE INTO timers(workflow_id, timer_seq, fire_at)
                     VALUES (?1, ?2, ?3)",
                    params![c.workflow_id, *timer_seq as i64, fire_at_ms],
                )?;
            }
            EventKind::TimerCancelled { timer_seq } => {
                exec(
                    conn,
                    "DELETE FROM timers WHERE workflow_id = ?1 AND timer_seq = ?2",
                    params![c.workflow_id, *timer_seq as i64],
                )?;
            }
            EventKind::ActivityCancelRequested { activity_seq } => {
                let task: Option<(i64, String, Option<String>)> = qrow(
                    conn,
                    "SELECT id, state, heartbeat_details FROM activity_tasks
                         WHERE workflow_id = ?1 AND activity_seq = ?2",
                    params![c.workflow_id, *activity_seq as i64],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
                match task {
                    Some((id, state, details)) if state == "pending" => {
                        exec(
                            conn,
                            "DELETE FROM activity_tasks WHERE id = ?1",
                            params![id],
                        )?;
                        append(
                            conn,
                            &c.workflow_id,
                            &EventKind::ActivityCancelled {
                                activity_seq: *activity_seq,
                                details: details.and_then(|d| serde_json::from_str(&d).ok()),
                            },
                            now,
                        )?;
                        rerun = true;
                    }
                    Some((id, _, _)) => {
                        exec(
                            conn,
                            "UPDATE activity_tasks SET cancel_requested = 1 WHERE id = ?1",
                            params![id],
                        )?;
                    }
                    None => {}
                }
            }
            EventKind::WorkflowCompleted { result } => {
                closed = true;
                close_workflow(
                    conn,
                    &c.workflow_id,
                    WorkflowStatus::Completed,
                    Some(to_json(result)),
                    now,
                )?;
            }
            EventKind::WorkflowFailed { error } => {
                closed = true;
                close_workflow(
                    conn,
                    &c.workflow_id,
                    WorkflowStatus::Failed,
                    Some(to_json(error)),
                    now,
                )?;
            }
            EventKind::WorkflowCancelled {} => {
                closed = true;
                close_workflow(conn, &c.workflow_id, WorkflowStatus::Cancelled, None, now)?;
            }
            _ => {}
        }
    }
    let marker_seq = append(
        conn,
        &c.workflow_id,
        &EventKind::WorkflowTaskCompleted {
            processed_through: c.processed_through,
            task_time_ms: c.task_time_ms,
        },
        now,
    )?;
    let mut outcome = CommitOutcome {
        marker_seq,
        ..CommitOutcome::default()
    };
    if !closed {
        exec(
            conn,
            "UPDATE workflows SET held_reason = NULL WHERE workflow_id = ?1",
            params![c.workflow_id],
        )?;
        if rerun {
            exec(
                conn,
                "INSERT INTO workflow_tasks(workflow_id, task_queue, workflow_type, state, visible_at)
                 SELECT workflow_id, task_queue, workflow_type, 'pending', ?2 FROM workflows
                 WHERE workflow_id = ?1
                 ON CONFLICT(workflow_id) DO UPDATE SET state = 'pending', visible_at = ?2,
                     lease_owner = NULL, lease_expires = NULL",
                params![c.workflow_id, now],
            )?;
            outcome.rerun = true;
        } else {
            exec(
                conn,
                "DELETE FROM workflow_tasks WHERE workflow_id = ?1",
                params![c.workflow_id],
            )?;
        }
        if let (true, Some(e)) = (new_activities, &c.eager) {
            outcome.eager = claim_activities(
                conn,
                &e.worker_id,
                &json_list(&e.queues),
                &json_list(&e.activity_types),
                e.max,
                Some(&c.workflow_id),
                now,
            )?;
        }
    }
    Ok(outcome)
}

/// How [`finish_inner`] ended.
enum Finished {
    /// The token no longer matches: nothing was written.
    Fenced,
    /// Recorded; `event_seq` is the appended event's number (none for a retry or an ended workflow).
    Recorded {
        workflow_id: String,
        event_seq: Option<u64>,
    },
}

/// Ends an attempt (see `StoreBackend::finish_activity`); enqueues a workflow task if `enqueue`.
fn finish_inner(
    conn: &Connection,
    task_id: i64,
    token: i64,
    resolution: ActivityResolution,
    heartbeat_details: Option<Value>,
    enqueue: bool,
) -> Result<Finished> {
    let now = now_ms();
    // Only what ending the attempt needs: the input and the options (parsed only for a retry) stay
    // unread on this hot path.
    type Row = (String, i64, i64, i64, bool, Option<String>, String);
    let row: Option<Row> = qrow(
        conn,
        "SELECT workflow_id, activity_seq, token, scheduled_ms, cancel_requested != 0,
             heartbeat_details, options FROM activity_tasks WHERE id = ?1",
        params![task_id],
        |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        },
    )
    .optional()?;
    let Some((
        workflow_id,
        activity_seq,
        task_token,
        scheduled_ms,
        cancel_requested,
        stored,
        options,
    )) = row
    else {
        return Ok(Finished::Fenced);
    };
    if task_token != token {
        return Ok(Finished::Fenced);
    }
    let details = heartbeat_details.or_else(|| stored.and_then(|d| serde_json::from_str(&d).ok()));
    let resolution = match resolution {
        ActivityResolution::Retry { .. } if cancel_requested => ActivityResolution::Cancelled {
            details: details.clone(),
        },
        other => other,
    };
    if let ActivityResolution::Retry { retry_at_ms } = resolution {
        let options: ActivityOptions = from_json(&options, "an activity task's options")?;
        let deadline = pending_deadline(&options, scheduled_ms, retry_at_ms, false);
        exec(
            conn,
            "UPDATE activity_tasks SET state = 'pending', visible_at = ?2, lease_owner = NULL,
                 heartbeat_details = ?3, deadline_ms = ?4, deadline_kind = ?5
             WHERE id = ?1",
            params![
                task_id,
                retry_at_ms,
                details.as_ref().map(to_json),
                deadline.map(|d| d.0),
                deadline.map(|d| kind_str(d.1))
            ],
        )?;
        return Ok(Finished::Recorded {
            workflow_id,
            event_seq: None,
        });
    }
    let Some(event) = resolution.event(activity_seq as u64) else {
        return Ok(Finished::Recorded {
            workflow_id,
            event_seq: None,
        });
    };
    exec(
        conn,
        "DELETE FROM activity_tasks WHERE id = ?1",
        params![task_id],
    )?;
    let mut event_seq = None;
    if workflow_running(conn, &workflow_id)? {
        event_seq = Some(append(conn, &workflow_id, &event, now)?);
        if enqueue {
            enqueue_workflow_task(conn, &workflow_id, now)?;
        }
    }
    Ok(Finished::Recorded {
        workflow_id,
        event_seq,
    })
}

/// Whether a worker's in-memory instance, which has seen the history up to `delivered_through` and
/// wrote everything up to `own_marker_seq`, saw every event before `event_seq`: then its commands,
/// computed with that event, can be committed as the next workflow task.
fn continuation_allowed(conn: &Connection, cont: &Continuation, event_seq: u64) -> Result<bool> {
    let queued: bool = qrow(
        conn,
        "SELECT 1 FROM workflow_tasks WHERE workflow_id = ?1",
        params![cont.commit.workflow_id],
        |_| Ok(()),
    )
    .optional()?
    .is_some();
    if queued {
        return Ok(false);
    }
    let mut st = conn.prepare_cached(
        "SELECT seq, event_type FROM history WHERE workflow_id = ?1 AND seq > ?2 AND seq < ?3",
    )?;
    let rows = st.query_map(
        params![
            cont.commit.workflow_id,
            cont.delivered_through as i64,
            event_seq as i64
        ],
        |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?)),
    )?;
    for row in rows {
        let (seq, event_type) = row?;
        let own = seq <= cont.own_marker_seq && super::is_command_or_marker_name(&event_type);
        if !(own || event_type == "activity_started") {
            return Ok(false);
        }
    }
    Ok(true)
}

fn json_list(items: &[String]) -> String {
    to_json(&items)
}

#[async_trait::async_trait]
impl StoreBackend for SqliteStore {
    fn kind(&self) -> &'static str {
        self.kind
    }

    async fn create_workflow(&self, wf: NewWorkflow) -> Result<()> {
        self.call(move |conn| {
            let now = now_ms();
            let exists: bool = qrow(
                    conn,
                    "SELECT 1 FROM workflows WHERE workflow_id = ?1",
                    params![wf.workflow_id],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            if exists {
                return Err(Error::DuplicateWorkflowId(wf.workflow_id));
            }
            exec(
                conn,
                "INSERT INTO workflows(workflow_id, run_id, workflow_type, task_queue, status, input,
                     next_event_seq, created_ms)
                 VALUES (?1, ?2, ?3, ?4, 'running', ?5, 1, ?6)",
                params![
                    wf.workflow_id,
                    wf.run_id,
                    wf.workflow_type,
                    wf.task_queue,
                    to_json(&wf.input),
                    now
                ],
            )?;
            append(
                conn,
                &wf.workflow_id,
                &EventKind::WorkflowStarted {
                    workflow_type: wf.workflow_type.clone(),
                    input: wf.input,
                    task_queue: wf.task_queue.clone(),
                    run_id: wf.run_id.clone(),
                },
                now,
            )?;
            if let Some(deadline) = wf.execution_deadline_ms {
                exec(
                conn,
                    "INSERT INTO timers(workflow_id, timer_seq, fire_at) VALUES (?1, 0, ?2)",
                    params![wf.workflow_id, deadline],
                )?;
            }
            enqueue_workflow_task(conn, &wf.workflow_id, now)
        })
        .await
    }

    async fn claim_workflow_tasks(
        &self,
        worker_id: &str,
        queues: &[String],
        types: &[String],
        max: usize,
        lease_ms: i64,
    ) -> Result<Vec<ClaimedWorkflowTask>> {
        let worker_id = worker_id.to_string();
        let queues = json_list(queues);
        let types = json_list(types);
        self.call(move |conn| {
            let now = now_ms();
            let ids: Vec<String> = {
                let mut st = conn.prepare_cached(
                    "SELECT workflow_id FROM workflow_tasks
                     WHERE ((state = 'pending' AND visible_at <= ?1)
                            OR (state = 'running' AND lease_expires <= ?1))
                       AND task_queue IN (SELECT value FROM json_each(?2))
                       AND workflow_type IN (SELECT value FROM json_each(?3))
                     ORDER BY visible_at LIMIT ?4",
                )?;
                let rows = st.query_map(params![now, queues, types, max as i64], |r| r.get(0))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                exec(
                conn,
                    "UPDATE workflow_tasks SET state = 'running', lease_owner = ?2, lease_expires = ?3
                     WHERE workflow_id = ?1",
                    params![id, worker_id, now + lease_ms],
                )?;
                let task = qrow(
                conn,
                    "UPDATE workflows SET wft_token = wft_token + 1 WHERE workflow_id = ?1
                     RETURNING run_id, workflow_type, task_queue, wft_token",
                    params![id],
                    |r| {
                        Ok(ClaimedWorkflowTask {
                            workflow_id: id.clone(),
                            run_id: r.get(0)?,
                            workflow_type: r.get(1)?,
                            task_queue: r.get(2)?,
                            token: r.get(3)?,
                        })
                    },
                )?;
                out.push(task);
            }
            Ok(out)
        })
        .await
    }

    async fn read_history(&self, workflow_id: &str, from_seq: u64) -> Result<Vec<HistoryEvent>> {
        let workflow_id = workflow_id.to_string();
        self.call(move |conn| {
            let mut st = conn.prepare_cached(
                "SELECT seq, time_ms, payload FROM history WHERE workflow_id = ?1 AND seq >= ?2
                 ORDER BY seq",
            )?;
            let rows = st.query_map(params![workflow_id, from_seq as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, time_ms, payload) = row?;
                let kind: EventKind = from_json(
                    &payload,
                    &format!("history event #{seq} of workflow `{workflow_id}`"),
                )?;
                out.push(HistoryEvent {
                    seq: seq as u64,
                    time_ms,
                    kind,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn commit_workflow_task(&self, c: WorkflowTaskCommit) -> Result<Option<CommitOutcome>> {
        self.call(move |conn| {
            let now = now_ms();
            let row: Option<(i64, String, i64)> = qrow(
                conn,
                "SELECT w.wft_token, t.state, w.next_event_seq FROM workflows w
                     JOIN workflow_tasks t ON t.workflow_id = w.workflow_id
                     WHERE w.workflow_id = ?1 AND w.status = 'running'",
                params![c.workflow_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
            let Some((token, state, next_seq)) = row else {
                return Ok(None);
            };
            if token != c.token || state != "running" {
                return Ok(None);
            }
            let rerun = (next_seq as u64).saturating_sub(1) > c.processed_through;
            apply_commands(conn, &c, rerun, now).map(Some)
        })
        .await
    }

    async fn hold_workflow_task(
        &self,
        workflow_id: &str,
        token: i64,
        reason: &str,
        retry_at_ms: i64,
    ) -> Result<()> {
        let workflow_id = workflow_id.to_string();
        let reason = reason.to_string();
        self.call(move |conn| {
            let current: Option<i64> = qrow(
                conn,
                "SELECT wft_token FROM workflows WHERE workflow_id = ?1",
                params![workflow_id],
                |r| r.get(0),
            )
            .optional()?;
            if current != Some(token) {
                return Ok(());
            }
            exec(
                conn,
                "UPDATE workflow_tasks SET state = 'pending', visible_at = ?2, lease_owner = NULL,
                     lease_expires = NULL WHERE workflow_id = ?1",
                params![workflow_id, retry_at_ms],
            )?;
            exec(
                conn,
                "UPDATE workflows SET held_reason = ?2 WHERE workflow_id = ?1",
                params![workflow_id, reason],
            )?;
            Ok(())
        })
        .await
    }

    async fn release_held(&self) -> Result<u64> {
        self.call(|conn| {
            let n = exec(
                conn,
                "UPDATE workflow_tasks SET visible_at = ?1 WHERE state = 'pending' AND workflow_id IN
                     (SELECT workflow_id FROM workflows WHERE held_reason IS NOT NULL)",
                params![now_ms()],
            )?;
            Ok(n as u64)
        })
        .await
    }

    async fn claim_activity_tasks(
        &self,
        worker_id: &str,
        queues: &[String],
        types: &[String],
        max: usize,
    ) -> Result<Vec<ClaimedActivity>> {
        let worker_id = worker_id.to_string();
        let queues = json_list(queues);
        let types = json_list(types);
        self.call(move |conn| {
            claim_activities(conn, &worker_id, &queues, &types, max, None, now_ms())
        })
        .await
    }

    async fn claim_expired_activities(&self, max: usize) -> Result<Vec<ExpiredActivity>> {
        self.call(move |conn| {
            let now = now_ms();
            let rows: Vec<(ClaimedActivity, Option<String>)> = {
                let mut st = conn.prepare_cached(&format!(
                    "SELECT {ACTIVITY_COLS} FROM activity_tasks WHERE deadline_ms <= ?1
                     ORDER BY deadline_ms LIMIT ?2"
                ))?;
                let rows = st.query_map(params![now, max as i64], read_activity)?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let mut out = Vec::with_capacity(rows.len());
            for (mut task, kind) in rows {
                task.token += 1;
                // Should this reaper die before it resolves the task, another one takes it later.
                exec(
                    conn,
                    "UPDATE activity_tasks SET token = ?2, deadline_ms = ?3 WHERE id = ?1",
                    params![task.task_id, task.token, now + 30_000],
                )?;
                out.push(ExpiredActivity {
                    task,
                    kind: kind_parse(kind.as_deref()),
                });
            }
            Ok(out)
        })
        .await
    }

    async fn heartbeat(
        &self,
        task_id: i64,
        token: i64,
        details: Option<Value>,
        new_deadline: (i64, TimeoutKind),
    ) -> Result<Option<bool>> {
        self.call(move |conn| {
            let r: Option<i64> = qrow(
                conn,
                "UPDATE activity_tasks SET heartbeat_details = COALESCE(?3, heartbeat_details),
                         deadline_ms = ?4, deadline_kind = ?5
                     WHERE id = ?1 AND token = ?2 AND state = 'running'
                     RETURNING cancel_requested",
                params![
                    task_id,
                    token,
                    details.as_ref().map(to_json),
                    new_deadline.0,
                    kind_str(new_deadline.1)
                ],
                |r| r.get(0),
            )
            .optional()?;
            Ok(r.map(|c| c != 0))
        })
        .await
    }

    async fn finish_activity(
        &self,
        task_id: i64,
        token: i64,
        resolution: ActivityResolution,
        heartbeat_details: Option<Value>,
    ) -> Result<bool> {
        self.call(move |conn| {
            let f = finish_inner(conn, task_id, token, resolution, heartbeat_details, true)?;
            Ok(!matches!(f, Finished::Fenced))
        })
        .await
    }

    async fn finish_activity_and_continue(
        &self,
        task_id: i64,
        token: i64,
        resolution: ActivityResolution,
        heartbeat_details: Option<Value>,
        cont: Continuation,
    ) -> Result<FinishOutcome> {
        self.call(move |conn| {
            let f = finish_inner(conn, task_id, token, resolution, heartbeat_details, false)?;
            let (workflow_id, event_seq) = match f {
                Finished::Fenced => {
                    return Ok(FinishOutcome {
                        recorded: false,
                        continued: None,
                    })
                }
                Finished::Recorded {
                    event_seq: None, ..
                } => {
                    return Ok(FinishOutcome {
                        recorded: true,
                        continued: None,
                    })
                }
                Finished::Recorded {
                    workflow_id,
                    event_seq: Some(seq),
                } => (workflow_id, seq),
            };
            let now = now_ms();
            if workflow_id != cont.commit.workflow_id
                || !continuation_allowed(conn, &cont, event_seq)?
            {
                enqueue_workflow_task(conn, &workflow_id, now)?;
                return Ok(FinishOutcome {
                    recorded: true,
                    continued: None,
                });
            }
            // The worker's instance saw everything up to this event: its commands are the next
            // workflow task. Fence out any claim that could still be in flight.
            exec(
                conn,
                "UPDATE workflows SET wft_token = wft_token + 1 WHERE workflow_id = ?1",
                params![workflow_id],
            )?;
            let mut commit = cont.commit;
            commit.processed_through = event_seq;
            let outcome = apply_commands(conn, &commit, false, now)?;
            Ok(FinishOutcome {
                recorded: true,
                continued: Some((event_seq, outcome)),
            })
        })
        .await
    }

    async fn record_local_activity(
        &self,
        workflow_id: &str,
        activity_seq: u64,
        result: Result<Value, ActivityError>,
    ) -> Result<bool> {
        let workflow_id = workflow_id.to_string();
        self.call(move |conn| {
            let now = now_ms();
            if !workflow_running(conn, &workflow_id)? {
                return Ok(false);
            }
            let done: bool = qrow(
                conn,
                "SELECT 1 FROM history WHERE workflow_id = ?1 AND ref_seq = ?2
                       AND event_type IN ('local_activity_marker', 'activity_cancelled')",
                params![workflow_id, activity_seq as i64],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
            if done {
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
            append(conn, &workflow_id, &event, now)?;
            enqueue_workflow_task(conn, &workflow_id, now)?;
            Ok(true)
        })
        .await
    }

    async fn fire_due_timers(&self, max: usize) -> Result<usize> {
        self.call(move |conn| {
            let now = now_ms();
            let due: Vec<(String, i64)> = {
                let mut st = conn.prepare_cached(
                    "SELECT workflow_id, timer_seq FROM timers WHERE fire_at <= ?1
                     ORDER BY fire_at LIMIT ?2",
                )?;
                let rows =
                    st.query_map(params![now, max as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            for (wf, seq) in &due {
                exec(
                    conn,
                    "DELETE FROM timers WHERE workflow_id = ?1 AND timer_seq = ?2",
                    params![wf, seq],
                )?;
                if !workflow_running(conn, wf)? {
                    continue;
                }
                if *seq == 0 {
                    let error = WorkflowError::application(
                        "ExecutionTimeout",
                        "the workflow ran past its execution_timeout",
                    );
                    append(
                        conn,
                        wf,
                        &EventKind::WorkflowFailed {
                            error: error.clone(),
                        },
                        now,
                    )?;
                    close_workflow(conn, wf, WorkflowStatus::Failed, Some(to_json(&error)), now)?;
                } else {
                    append(
                        conn,
                        wf,
                        &EventKind::TimerFired {
                            timer_seq: *seq as u64,
                        },
                        now,
                    )?;
                    enqueue_workflow_task(conn, wf, now)?;
                }
            }
            Ok(due.len())
        })
        .await
    }

    async fn next_due_ms(
        &self,
        queues: &[String],
        workflow_types: &[String],
        activity_types: &[String],
    ) -> Result<Option<i64>> {
        let queues = json_list(queues);
        let wtypes = json_list(workflow_types);
        let atypes = json_list(activity_types);
        self.call(move |conn| {
            let v: Option<i64> = qrow(
                conn,
                "SELECT MIN(x) FROM (
                   SELECT MIN(CASE WHEN state = 'pending' THEN visible_at ELSE lease_expires END) AS x
                     FROM workflow_tasks
                    WHERE task_queue IN (SELECT value FROM json_each(?1))
                      AND workflow_type IN (SELECT value FROM json_each(?2))
                   UNION ALL
                   SELECT MIN(visible_at) FROM activity_tasks WHERE state = 'pending'
                      AND task_queue IN (SELECT value FROM json_each(?1))
                      AND activity_type IN (SELECT value FROM json_each(?3))
                   UNION ALL SELECT MIN(deadline_ms) FROM activity_tasks
                   UNION ALL SELECT MIN(fire_at) FROM timers)",
                params![queues, wtypes, atypes],
                |r| r.get(0),
            )?;
            Ok(v)
        })
        .await
    }

    async fn request_cancel_workflow(&self, workflow_id: &str) -> Result<bool> {
        let workflow_id = workflow_id.to_string();
        self.call(move |conn| {
            let now = now_ms();
            let row: Option<(String, i64)> = qrow(
                conn,
                "SELECT status, cancel_requested FROM workflows WHERE workflow_id = ?1",
                params![workflow_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
            let Some((status, requested)) = row else {
                return Err(Error::WorkflowNotFound(workflow_id));
            };
            if status != "running" {
                return Ok(false);
            }
            if requested == 0 {
                exec(
                    conn,
                    "UPDATE workflows SET cancel_requested = 1 WHERE workflow_id = ?1",
                    params![workflow_id],
                )?;
                append(
                    conn,
                    &workflow_id,
                    &EventKind::WorkflowCancelRequested {},
                    now,
                )?;
                enqueue_workflow_task(conn, &workflow_id, now)?;
            }
            Ok(true)
        })
        .await
    }

    async fn describe(&self, workflow_id: &str) -> Result<Option<WorkflowDescription>> {
        let workflow_id = workflow_id.to_string();
        self.call(move |conn| {
            type Row = (
                String,
                String,
                String,
                String,
                Option<String>,
                i64,
                Option<i64>,
                i64,
                Option<String>,
                i64,
            );
            let row: Option<Row> = qrow(
                    conn,
                    "SELECT run_id, workflow_type, task_queue, status, result, created_ms, closed_ms,
                         next_event_seq, held_reason, cancel_requested
                     FROM workflows WHERE workflow_id = ?1",
                    params![workflow_id],
                    |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                            r.get(6)?,
                            r.get(7)?,
                            r.get(8)?,
                            r.get(9)?,
                        ))
                    },
                )
                .optional()?;
            let Some((run_id, wtype, queue, status, result, created, closed, next_seq, held, cancel)) =
                row
            else {
                return Ok(None);
            };
            let status = WorkflowStatus::parse(&status)?;
            let (result, error) = match (status, result) {
                (WorkflowStatus::Completed, Some(r)) => (Some(from_json(&r, "workflow result")?), None),
                (WorkflowStatus::Failed, Some(e)) => (None, Some(from_json(&e, "workflow error")?)),
                _ => (None, None),
            };
            let pending = {
                let mut st = conn.prepare_cached(
                    "SELECT activity_seq, activity_type, state, attempt, cancel_requested,
                         heartbeat_details FROM activity_tasks WHERE workflow_id = ?1 ORDER BY activity_seq",
                )?;
                let rows = st.query_map(params![workflow_id], |r| {
                    let d: Option<String> = r.get(5)?;
                    Ok(PendingActivity {
                        activity_seq: r.get::<_, i64>(0)? as u64,
                        activity_type: r.get(1)?,
                        state: r.get(2)?,
                        attempt: r.get::<_, i64>(3)? as u32,
                        cancel_requested: r.get::<_, i64>(4)? != 0,
                        heartbeat_details: d.and_then(|d| serde_json::from_str(&d).ok()),
                    })
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()?
            };
            Ok(Some(WorkflowDescription {
                workflow_id,
                run_id,
                workflow_type: wtype,
                task_queue: queue,
                status,
                result,
                error,
                started_ms: created,
                closed_ms: closed,
                history_length: (next_seq - 1).max(0) as u64,
                held_reason: held,
                cancel_requested: cancel != 0,
                pending_activities: pending,
            }))
        })
        .await
    }

    async fn list(&self, filter: &ListFilter) -> Result<Vec<WorkflowSummary>> {
        let status = filter.status.map(|s| s.as_str());
        let wtype = filter.workflow_type.clone();
        let limit = filter.limit.unwrap_or(1000) as i64;
        self.call(move |conn| {
            let mut st = conn.prepare_cached(
                "SELECT workflow_id, run_id, workflow_type, status, created_ms, closed_ms
                 FROM workflows WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR workflow_type = ?2)
                 ORDER BY created_ms DESC, workflow_id LIMIT ?3",
            )?;
            let rows = st.query_map(params![status, wtype, limit], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (workflow_id, run_id, workflow_type, status, started_ms, closed_ms) = row?;
                out.push(WorkflowSummary {
                    workflow_id,
                    run_id,
                    workflow_type,
                    status: WorkflowStatus::parse(&status)?,
                    started_ms,
                    closed_ms,
                });
            }
            Ok(out)
        })
        .await
    }
}
