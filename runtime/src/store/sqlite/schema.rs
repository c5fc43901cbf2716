//! The SQLite schema and its migrations.

/// The schema this build writes. Older files are migrated; newer ones are refused.
pub(crate) const SCHEMA_VERSION: i64 = 7;
pub(super) const FORMAT_MARKER: &str = "duraflow";

/// Migrations, index `i` takes a file from version `i` to `i + 1`.
pub(super) const MIGRATIONS: &[&str] = &[
    r#"
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
    last_poll_ms INTEGER NOT NULL,
    PRIMARY KEY (task_queue, kind, type_name)
) WITHOUT ROWID;
"#,
    // 3: the workers' liveness leases (`engine::liveness`).
    r#"
CREATE TABLE workers (
    worker_id     TEXT PRIMARY KEY,
    lease_expires INTEGER NOT NULL,
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
    revision    INTEGER NOT NULL,
    due_ms      INTEGER,
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
    created_ms     INTEGER NOT NULL,
    closed_ms      INTEGER,
    history_length INTEGER NOT NULL,
    next_run_id    TEXT,
    PRIMARY KEY (workflow_id, run_id)
) WITHOUT ROWID;
CREATE TABLE run_history (
    workflow_id TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    time_ms     INTEGER NOT NULL,
    event_type  TEXT NOT NULL,
    ref_seq     INTEGER,
    payload     TEXT NOT NULL,
    PRIMARY KEY (workflow_id, run_id, seq)
) WITHOUT ROWID;
"#,
    // 7: child workflows (`engine::child`): each child run's link to its parent, kept after both
    // end; the parent's children by its id.
    r#"
CREATE TABLE child_workflows (
    child_run_id        TEXT PRIMARY KEY,
    child_id            TEXT NOT NULL,
    parent_id           TEXT NOT NULL,
    parent_run_id       TEXT NOT NULL,
    child_seq           INTEGER NOT NULL,
    parent_close_policy TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX child_workflows_by_parent ON child_workflows(parent_id, parent_run_id);
"#,
];
