//! Reading the engine's facts and applying its plans, in Postgres's SQL. No decisions here: every
//! choice was made by the engine; this file reads what it decides on (the workflow row locked
//! first) and turns a plan into statements for a pipelined batch: one guarded update of the
//! workflow row, which also numbers and inserts the plan's events, then one statement per effect.

use super::{col, p, Batch, Param};
use crate::engine::facts::LazyOptions;
use crate::engine::{
    AttemptFacts, ClosedAs, Effect, Plan, TaskState, WorkflowFacts, WorkflowStatus,
    WorkflowTaskEffect,
};
use crate::error::{Error, Result};
use crate::history::format;
use crate::store::{from_json, kind_str, to_json};
use std::collections::HashMap;
use tokio_postgres::Row;

// ---------------------------------------------------------------------------------------------
// Facts.

/// What a facts query reads: a workflow named by its id, or an attempt (activity task `task_id`)
/// and the workflow it belongs to (whose id is not known before the query runs).
#[derive(Clone, Copy)]
pub(super) enum Of<'a> {
    Workflow(&'a str),
    Attempt(i64),
}

impl Of<'_> {
    fn param(self) -> Param {
        match self {
            Of::Workflow(w) => p(w.to_string()),
            Of::Attempt(id) => p(id),
        }
    }

    fn sql(self, forms: &[&'static str; 2]) -> &'static str {
        match self {
            Of::Workflow(_) => forms[0],
            Of::Attempt(_) => forms[1],
        }
    }
}

/// A statement about one workflow in its two forms (see [`Of`]): the workflow `$1::TEXT`, or the
/// workflow of activity task `$1::BIGINT`.
macro_rules! of_workflow {
    ($before:literal, $after:literal) => {
        [
            concat!($before, "$1::TEXT", $after),
            concat!(
                $before,
                "(SELECT workflow_id FROM activity_tasks WHERE id = $1::BIGINT)",
                $after
            ),
        ]
    };
}

/// Locks the workflow row (first, always: every writer of the workflow does) and reads it.
const SQL_LOCK_WORKFLOW: [&str; 2] = of_workflow!(
    "SELECT workflow_id, run_id, status, next_event_seq, wft_token, cancel_requested,
            EXISTS (SELECT 1 FROM child_workflows c WHERE c.child_run_id = workflows.run_id)
            OR EXISTS (SELECT 1 FROM child_workflows c
                        WHERE c.parent_id = workflows.workflow_id
                          AND c.parent_run_id = workflows.run_id)
       FROM workflows WHERE workflow_id = ",
    " FOR UPDATE"
);

/// The state of the workflow's task. Every statement after the lock sees the changes committed
/// before the lock was granted, and nothing changes the task's state without the lock.
const SQL_TASK_STATE: &str = "SELECT state FROM workflow_tasks WHERE workflow_id = $1::TEXT";

/// An attempt's activity task as ending it needs it (locked, after its workflow row; the input
/// stays unread and the options unparsed on this hot path), the state of its workflow's task (as
/// [`SQL_TASK_STATE`]: the workflow row is locked before this statement starts) and, unless `$2`
/// is null, its workflow's events after seq `$2` (as [`SQL_UNSEEN`]). The bound is a sub-select
/// so that the plan does not depend on its value: the server then caches a generic plan instead
/// of planning the statement again at every execution.
const SQL_ATTEMPT: &str = "
SELECT a.workflow_id, a.activity_seq, a.token, a.scheduled_ms, a.cancel_requested,
       a.heartbeat_details, a.options,
       (SELECT t.state FROM workflow_tasks t WHERE t.workflow_id = a.workflow_id),
       u.seqs, u.names
  FROM activity_tasks a
  LEFT JOIN LATERAL (
      SELECT array_agg(h.seq ORDER BY h.seq) AS seqs, array_agg(h.event_type ORDER BY h.seq) AS names
        FROM history h WHERE h.workflow_id = a.workflow_id AND h.seq > (SELECT $2::BIGINT)) u ON TRUE
 WHERE a.id = $1::BIGINT FOR UPDATE OF a";

/// The activity tasks of seqs `$2` (locked, after the workflow row).
const SQL_ACTIVITIES: [&str; 2] = of_workflow!(
    "SELECT activity_seq, state, heartbeat_details FROM activity_tasks WHERE workflow_id = ",
    " AND activity_seq = ANY($2::BIGINT[]) FOR UPDATE"
);

/// The history's events after seq `$2`, by seq and stored name (the bound a sub-select: see
/// [`SQL_ATTEMPT`]).
const SQL_UNSEEN: &str = "
SELECT array_agg(seq ORDER BY seq), array_agg(event_type ORDER BY seq) FROM history
 WHERE workflow_id = $1::TEXT AND seq > (SELECT $2::BIGINT)";

/// Due timers, each with its workflow's row; both locked, those another transaction holds
/// skipped. (Never waiting, the statement reads the task state as of its start; a timer's firing
/// does not depend on it.)
pub(super) const SQL_DUE_TIMERS: &str = "
SELECT t.timer_seq, w.workflow_id, w.run_id, w.status, w.next_event_seq, w.wft_token,
       w.cancel_requested,
       (SELECT s.state FROM workflow_tasks s WHERE s.workflow_id = w.workflow_id),
       EXISTS (SELECT 1 FROM child_workflows c WHERE c.child_run_id = w.run_id)
       OR EXISTS (SELECT 1 FROM child_workflows c
                   WHERE c.parent_id = w.workflow_id AND c.parent_run_id = w.run_id)
  FROM timers t JOIN workflows w ON w.workflow_id = t.workflow_id
 WHERE t.fire_at <= $1::BIGINT
 ORDER BY t.fire_at
 LIMIT $2::BIGINT
   FOR UPDATE OF t, w SKIP LOCKED";

/// The statements of the facts in a batch.
pub(super) struct FactsQuery {
    lock: usize,
    /// The workflow task's state: statement and column (its own, or for an attempt the
    /// attempt's).
    task: (usize, usize),
    /// For an attempt: its id and statement.
    attempt: Option<(i64, usize)>,
    activities: Option<usize>,
    /// The events after `unseen_after`: statement and first column (their seqs, then names).
    unseen: Option<(usize, usize)>,
}

/// Pushes the statements reading the facts of `of`: the workflow row, locked (first); the
/// attempt's task row, locked; the workflow's task; the activity tasks of `targets`, locked; and
/// with `unseen_after`, the history's events after that seq.
pub(super) fn push_facts(
    batch: &mut Batch,
    of: Of<'_>,
    targets: &[u64],
    unseen_after: Option<u64>,
) -> FactsQuery {
    let lock = batch.push(of.sql(&SQL_LOCK_WORKFLOW), vec![of.param()]);
    let after = unseen_after.map(|s| s as i64);
    let (task, attempt, unseen) = match of {
        Of::Workflow(w) => {
            let task = batch.push(SQL_TASK_STATE, vec![p(w.to_string())]);
            let unseen =
                after.map(|after| (batch.push(SQL_UNSEEN, vec![p(w.to_string()), p(after)]), 0));
            ((task, 0), None, unseen)
        }
        Of::Attempt(id) => {
            let i = batch.push(SQL_ATTEMPT, vec![p(id), p(after)]);
            ((i, 7), Some((id, i)), after.map(|_| (i, 8)))
        }
    };
    let activities = (!targets.is_empty()).then(|| {
        let seqs: Vec<i64> = targets.iter().map(|&s| s as i64).collect();
        batch.push(of.sql(&SQL_ACTIVITIES), vec![of.param(), p(seqs)])
    });
    FactsQuery {
        lock,
        task,
        attempt,
        activities,
        unseen,
    }
}

impl FactsQuery {
    /// The workflow's facts, from the batch's rows; `None` if there is no such workflow (or, for
    /// an attempt, no such task: there is nothing to decide).
    pub(super) fn workflow(&self, res: &[Vec<Row>]) -> Result<Option<WorkflowFacts>> {
        let Some(r) = rows(res, self.lock)?.first() else {
            return Ok(None);
        };
        let (task_at, task_col) = self.task;
        let task_row = rows(res, task_at)?.first();
        if task_row.is_none() && self.attempt.is_some() {
            return Ok(None);
        }
        let task: Option<String> = match task_row {
            Some(t) => col(t, task_col)?,
            None => None,
        };
        let mut facts = workflow_row(r, 0, task, col(r, 6)?)?;
        if let Some(i) = self.activities {
            for a in rows(res, i)? {
                let details: Option<String> = col(a, 2)?;
                let details = details
                    .map(|d| from_json(&d, "an activity task's heartbeat details"))
                    .transpose()?;
                let state = TaskState::parse(&col::<String>(a, 1)?)?;
                facts
                    .activities
                    .insert(col::<i64>(a, 0)? as u64, (state, details));
            }
        }
        if let Some((i, c)) = self.unseen {
            if let Some(e) = rows(res, i)?.first() {
                let seqs: Option<Vec<i64>> = col(e, c)?;
                let names: Option<Vec<String>> = col(e, c + 1)?;
                let seqs = seqs.unwrap_or_default().into_iter().map(|s| s as u64);
                facts.unseen = seqs.zip(names.unwrap_or_default()).collect();
            }
        }
        Ok(Some(facts))
    }

    /// For an attempt: its facts, from the batch's rows; `None` if its task is gone.
    pub(super) fn attempt(&self, res: &[Vec<Row>]) -> Result<Option<AttemptFacts>> {
        let Some((task_id, i)) = self.attempt else {
            return Ok(None);
        };
        let Some(r) = rows(res, i)?.first() else {
            return Ok(None);
        };
        let details: Option<String> = col(r, 5)?;
        Ok(Some(AttemptFacts {
            task_id,
            workflow_id: col(r, 0)?,
            activity_seq: col::<i64>(r, 1)? as u64,
            token: col(r, 2)?,
            scheduled_ms: col(r, 3)?,
            cancel_requested: col(r, 4)?,
            heartbeat_details: details
                .map(|d| from_json(&d, "an activity task's heartbeat details"))
                .transpose()?,
            options: LazyOptions::Stored(col(r, 6)?),
        }))
    }
}

fn rows(res: &[Vec<Row>], i: usize) -> Result<&[Row]> {
    res.get(i)
        .map(Vec::as_slice)
        .ok_or_else(|| Error::database("Postgres store: a statement of a batch returned no result"))
}

/// The workflow row's columns from `at` on (`workflow_id, run_id, status, next_event_seq,
/// wft_token, cancel_requested`), with its task's state.
fn workflow_row(r: &Row, at: usize, task: Option<String>, linked: bool) -> Result<WorkflowFacts> {
    Ok(WorkflowFacts {
        workflow_id: col(r, at)?,
        run_id: col(r, at + 1)?,
        status: WorkflowStatus::parse(&col::<String>(r, at + 2)?)?,
        next_event_seq: col::<i64>(r, at + 3)? as u64,
        wft_token: col(r, at + 4)?,
        task: task.as_deref().map(TaskState::parse).transpose()?,
        cancel_requested: col(r, at + 5)?,
        activities: HashMap::new(),
        unseen: Vec::new(),
        next_run: None,
        existing_ids: Default::default(),
        linked,
    })
}

/// The rows of [`SQL_DUE_TIMERS`]: each due timer (workflow id, timer seq) in order, and the facts
/// of their workflows.
pub(super) type DueTimers = (Vec<(String, u64)>, HashMap<String, WorkflowFacts>);

pub(super) fn read_due_timers(rows: &[Row]) -> Result<DueTimers> {
    let mut due = Vec::with_capacity(rows.len());
    let mut facts = HashMap::new();
    for r in rows {
        let seq = col::<i64>(r, 0)? as u64;
        let f = workflow_row(r, 1, col(r, 7)?, col(r, 8)?)?;
        due.push((f.workflow_id.clone(), seq));
        facts.entry(f.workflow_id.clone()).or_insert(f);
    }
    Ok((due, facts))
}

// ---------------------------------------------------------------------------------------------
// Plans.

/// The plan's guard, its effects on the workflow row, and its events, in one statement: the row
/// is updated only if the guard holds (the events are numbered from its next event number, which
/// is the guard's when it has one), and the events are inserted after it. A guard that does not
/// hold leaves `g` empty: the count then divides by zero, which fails the statement, aborts
/// the transaction and so turns the `COMMIT` pipelined after it into a rollback (the error is
/// reported as a failed guard: see `super::pg_error`).
const SQL_GUARD: &str = "
WITH g AS (
    UPDATE workflows SET next_event_seq = next_event_seq + $2::BIGINT,
           wft_token = wft_token + $3::BIGINT,
           held_reason = CASE WHEN $4::BOOLEAN THEN NULL ELSE held_reason END,
           cancel_requested = cancel_requested OR $5::BOOLEAN
     WHERE workflow_id = $1::TEXT
       AND ($6::BIGINT IS NULL OR next_event_seq = $6::BIGINT)
       AND ($7::BIGINT IS NULL OR wft_token = $7::BIGINT)
       AND (NOT $8::BOOLEAN OR status = 'running')
    RETURNING next_event_seq - $2::BIGINT AS first),
h AS (
    INSERT INTO history(workflow_id, seq, time_ms, event_type, ref_seq, payload)
    SELECT $1::TEXT, g.first + e.i - 1, $9::BIGINT, e.t, e.r, e.p
      FROM g, unnest($10::TEXT[], $11::BIGINT[], $12::TEXT[]) WITH ORDINALITY AS e(t, r, p, i))
SELECT 1 / count(*) FROM g";

/// A new activity task: pending (attempt and token 0), or claimed by the committing worker
/// (running, attempt and token 1, started).
const SQL_INSERT_ACTIVITY: &str = "
INSERT INTO activity_tasks(workflow_id, run_id, activity_seq, activity_type, task_queue, input,
                           options, state, attempt, token, visible_at, scheduled_ms, started_ms,
                           deadline_ms, deadline_kind, lease_owner)
VALUES ($1::TEXT, $14::TEXT, $2::BIGINT, $3::TEXT, $4::TEXT, $5::TEXT, $6::TEXT, $7::TEXT,
        $8::BIGINT, $8::BIGINT, $9::BIGINT, $9::BIGINT, $10::BIGINT, $11::BIGINT, $12::TEXT,
        $13::TEXT)
RETURNING id";

const SQL_DELETE_ACTIVITY_BY_SEQ: &str =
    "DELETE FROM activity_tasks WHERE workflow_id = $1::TEXT AND activity_seq = $2::BIGINT";

const SQL_FLAG_ACTIVITY_CANCEL: &str = "UPDATE activity_tasks SET cancel_requested = TRUE
 WHERE workflow_id = $1::TEXT AND activity_seq = $2::BIGINT";

/// [`SQL_FLAG_ACTIVITY_CANCEL`], and a notification on channel `$3` (payload `$4`, see
/// [`cancel_payload`]) when the attempt is running: the process running it hears the cancel at
/// commit, not at its next stored heartbeat.
const SQL_FLAG_ACTIVITY_CANCEL_NOTIFY: &str = "
WITH u AS (UPDATE activity_tasks SET cancel_requested = TRUE
            WHERE workflow_id = $1::TEXT AND activity_seq = $2::BIGINT
        RETURNING state)
SELECT pg_notify($3::TEXT, $4::TEXT) FROM u WHERE state = 'running'";

const SQL_START_ATTEMPT: &str = "
UPDATE activity_tasks SET state = 'running', attempt = $2::BIGINT, token = $3::BIGINT,
       started_ms = $4::BIGINT, deadline_ms = $5::BIGINT, deadline_kind = $6::TEXT,
       lease_owner = $7::TEXT
 WHERE id = $1::BIGINT";

const SQL_RETRY_ACTIVITY: &str = "
UPDATE activity_tasks SET state = 'pending', visible_at = $2::BIGINT, lease_owner = NULL,
       heartbeat_details = $3::TEXT, deadline_ms = $4::BIGINT, deadline_kind = $5::TEXT,
       last_failure = COALESCE($6::TEXT, last_failure)
 WHERE id = $1::BIGINT";

const SQL_END_ACTIVITY: &str = "DELETE FROM activity_tasks WHERE id = $1::BIGINT";

const SQL_UPSERT_TIMER: &str = "
INSERT INTO timers(workflow_id, timer_seq, fire_at) VALUES ($1::TEXT, $2::BIGINT, $3::BIGINT)
ON CONFLICT (workflow_id, timer_seq) DO UPDATE SET fire_at = excluded.fire_at";

const SQL_DELETE_TIMER: &str =
    "DELETE FROM timers WHERE workflow_id = $1::TEXT AND timer_seq = $2::BIGINT";

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

/// [`SQL_CLOSE`], and a notification on channel `$5` (payload `$6`, see [`cancel_payload`]) when
/// the workflow had attempts running, so the processes running them hear the cancel at commit.
const SQL_CLOSE_NOTIFY: &str = "
WITH a AS (
    UPDATE workflows SET status = $2::TEXT, result = $3::TEXT, closed_ms = $4::BIGINT,
                         held_reason = NULL
     WHERE workflow_id = $1::TEXT),
b AS (DELETE FROM workflow_tasks WHERE workflow_id = $1::TEXT),
c AS (DELETE FROM timers WHERE workflow_id = $1::TEXT),
d AS (DELETE FROM activity_tasks WHERE workflow_id = $1::TEXT AND state = 'pending'),
e AS (UPDATE activity_tasks SET cancel_requested = TRUE
       WHERE workflow_id = $1::TEXT AND state <> 'pending' RETURNING 1)
SELECT pg_notify($5::TEXT, $6::TEXT) FROM (SELECT 1 FROM e LIMIT 1) r";

/// The longest payload we send: Postgres refuses one of 8,000 bytes or more (the statement, and
/// so the transaction, would fail); past it the cancel waits for the attempt's next heartbeat.
const MAX_PAYLOAD: usize = 7_900;

/// The payload of a cancel notification: `c`, the activity seq (`*`: every attempt of the
/// workflow), the workflow id, separated by newlines. `None` when it would be too long.
pub(super) fn cancel_payload(workflow_id: &str, seq: Option<u64>) -> Option<String> {
    let seq = seq.map_or_else(|| "*".to_string(), |s| s.to_string());
    let payload = format!("c\n{seq}\n{workflow_id}");
    (payload.len() <= MAX_PAYLOAD).then_some(payload)
}

/// Parses [`cancel_payload`]: `(workflow id, seq)`, or `None` for any other payload.
pub(super) fn parse_cancel_payload(payload: &str) -> Option<(&str, Option<u64>)> {
    let rest = payload.strip_prefix("c\n")?;
    let (seq, workflow_id) = rest.split_once('\n')?;
    let seq = match seq {
        "*" => None,
        s => Some(s.parse().ok()?),
    };
    Some((workflow_id, seq))
}

/// The ended current run moved into the archive of earlier runs: its row and its history; its
/// history and any activity task left are deleted (their late results are fenced). The
/// sub-statements share one snapshot: each reads the rows as they were before the statement.
const SQL_ARCHIVE_RUN: &str = "
WITH r AS (
    INSERT INTO runs(workflow_id, run_id, workflow_type, task_queue, status, input, result,
                     created_ms, closed_ms, history_length, next_run_id)
    SELECT workflow_id, run_id, workflow_type, task_queue, status, input, result, created_ms,
           closed_ms, next_event_seq - 1, $2::TEXT
      FROM workflows WHERE workflow_id = $1::TEXT),
h AS (
    INSERT INTO run_history(workflow_id, run_id, seq, time_ms, event_type, ref_seq, payload)
    SELECT h.workflow_id, w.run_id, h.seq, h.time_ms, h.event_type, h.ref_seq, h.payload
      FROM history h JOIN workflows w ON w.workflow_id = h.workflow_id
     WHERE h.workflow_id = $1::TEXT),
d AS (DELETE FROM history WHERE workflow_id = $1::TEXT),
a AS (DELETE FROM activity_tasks WHERE workflow_id = $1::TEXT)
SELECT 1";

/// The workflow row holds a new run (see `Effect::ReplaceRun`).
const SQL_REPLACE_RUN: &str = "
UPDATE workflows SET run_id = $2::TEXT, workflow_type = $3::TEXT, task_queue = $4::TEXT,
       input = $5::TEXT, status = 'running', result = NULL, next_event_seq = 1,
       wft_token = wft_token + 1, cancel_requested = FALSE, held_reason = NULL,
       created_ms = $6::BIGINT, closed_ms = NULL
 WHERE workflow_id = $1::TEXT";

/// The signals recorded after seq `$2` (what a continue-as-new hands to the next run) and the
/// execution deadline.
pub(super) const SQL_NEXT_RUN_FACTS: &str = "
SELECT (SELECT array_agg(payload ORDER BY seq) FROM history
         WHERE workflow_id = $1::TEXT AND seq > $2::BIGINT AND event_type = $3::TEXT),
       (SELECT fire_at FROM timers WHERE workflow_id = $1::TEXT AND timer_seq = $4::BIGINT)";

/// Reads the row of [`SQL_NEXT_RUN_FACTS`].
pub(super) fn next_run_facts(
    row: &Row,
    workflow_id: &str,
) -> Result<crate::engine::facts::NextRunFacts> {
    let payloads: Option<Vec<String>> = col(row, 0)?;
    let mut late_signals = Vec::new();
    for payload in payloads.unwrap_or_default() {
        late_signals.push(format::decode_event(&payload).map_err(|e| {
            crate::error::corrupt_from(format!("a signal of workflow `{workflow_id}`: {e}"), e)
        })?);
    }
    Ok(crate::engine::facts::NextRunFacts {
        late_signals,
        execution_deadline_ms: col(row, 1)?,
    })
}

/// A pending workflow task, unless the workflow has one (or has ended).
const SQL_WFT_ENQUEUE: &str = "
INSERT INTO workflow_tasks(workflow_id, task_queue, workflow_type, state, visible_at)
SELECT workflow_id, task_queue, workflow_type, 'pending', $2::BIGINT FROM workflows
 WHERE workflow_id = $1::TEXT AND status = 'running'
ON CONFLICT (workflow_id) DO NOTHING";

/// The workflow task put back as pending, created when there is none (a continuation commits
/// without a task row).
const SQL_WFT_REQUEUE: &str = "
INSERT INTO workflow_tasks(workflow_id, task_queue, workflow_type, state, visible_at)
SELECT workflow_id, task_queue, workflow_type, 'pending', $2::BIGINT FROM workflows
 WHERE workflow_id = $1::TEXT
ON CONFLICT (workflow_id) DO UPDATE SET state = 'pending', visible_at = excluded.visible_at,
       lease_owner = NULL, lease_expires = NULL";

const SQL_WFT_COMPLETE: &str = "DELETE FROM workflow_tasks WHERE workflow_id = $1::TEXT";

/// Keeps (or makes) the workflow task running, leased to `$2` until `$3` (a worker running the
/// workflow's local activities).
const SQL_WFT_LEASE: &str = "
INSERT INTO workflow_tasks(workflow_id, task_queue, workflow_type, state, visible_at, lease_owner,
                           lease_expires)
SELECT workflow_id, task_queue, workflow_type, 'running', $3::BIGINT, $2::TEXT, $3::BIGINT
  FROM workflows WHERE workflow_id = $1::TEXT
ON CONFLICT (workflow_id) DO UPDATE SET state = 'running', lease_owner = excluded.lease_owner,
       lease_expires = excluded.lease_expires";

const SQL_WFT_HOLD: &str = "
WITH t AS (
    UPDATE workflow_tasks SET state = 'pending', visible_at = $2::BIGINT, lease_owner = NULL,
           lease_expires = NULL
     WHERE workflow_id = $1::TEXT)
UPDATE workflows SET held_reason = $3::TEXT WHERE workflow_id = $1::TEXT";

/// Of the workflow ids `$1`, those that exist (the children a commit starts: `engine::child`).
const SQL_EXISTING_IDS: &str =
    "SELECT workflow_id FROM workflows WHERE workflow_id = ANY($1::TEXT[])";

/// Pushes the statement reading which of `ids` exist, if there are any.
pub(super) fn push_existing(batch: &mut Batch, ids: Vec<String>) -> Option<usize> {
    (!ids.is_empty()).then(|| batch.push(SQL_EXISTING_IDS, vec![p(ids)]))
}

/// The ids [`push_existing`] found.
pub(super) fn read_existing(
    res: &[Vec<Row>],
    i: Option<usize>,
) -> Result<std::collections::HashSet<String>> {
    let Some(i) = i else {
        return Ok(Default::default());
    };
    rows(res, i)?.iter().map(|r| col(r, 0)).collect()
}

/// A closed workflow's parent (`engine::child::Links`).
pub(super) const SQL_LINK_PARENT: &str = "
SELECT c.parent_id, c.parent_run_id, c.child_seq FROM child_workflows c
 WHERE c.child_id = $1::TEXT
   AND c.child_run_id = (SELECT run_id FROM workflows WHERE workflow_id = $1::TEXT)";

/// A closed workflow's children still running.
pub(super) const SQL_LINK_CHILDREN: &str = "
SELECT c.child_id, c.child_run_id, c.parent_close_policy FROM child_workflows c
  JOIN workflows w ON w.workflow_id = c.child_id AND w.run_id = c.child_run_id
 WHERE c.parent_id = $1::TEXT
   AND c.parent_run_id = (SELECT run_id FROM workflows WHERE workflow_id = $1::TEXT)
   AND w.status = 'running'
 ORDER BY c.child_seq";

/// The links from the rows of [`SQL_LINK_PARENT`] and [`SQL_LINK_CHILDREN`].
pub(super) fn read_links(
    res: &[Vec<Row>],
    parent: usize,
    children: usize,
) -> Result<crate::engine::child::Links> {
    let parent = match rows(res, parent)?.first() {
        Some(r) => Some((col(r, 0)?, col(r, 1)?, col::<i64>(r, 2)? as u64)),
        None => None,
    };
    let mut open_children = Vec::new();
    for r in rows(res, children)? {
        let policy: String = col(r, 2)?;
        let policy = crate::history::ParentClosePolicy::parse(&policy).ok_or_else(|| {
            crate::error::corrupt(format!("unknown parent close policy `{policy}`"))
        })?;
        open_children.push((col(r, 0)?, col(r, 1)?, policy));
    }
    Ok(crate::engine::child::Links {
        parent,
        open_children,
    })
}

const SQL_CREATE_CHILD: &str = "
WITH l AS (
    INSERT INTO child_workflows(child_run_id, child_id, parent_id, parent_run_id, child_seq,
                                parent_close_policy)
    VALUES ($2::TEXT, $1::TEXT, $7::TEXT, $8::TEXT, $9::BIGINT, $10::TEXT))
INSERT INTO workflows(workflow_id, run_id, workflow_type, task_queue, status, input,
                      next_event_seq, created_ms)
VALUES ($1::TEXT, $2::TEXT, $3::TEXT, $4::TEXT, 'running', $5::TEXT, 1, $6::BIGINT)";

/// A plan's statements in a batch; their rows complete it.
#[must_use]
pub(super) struct Applied {
    /// The inserts of the activity tasks the plan claims, in order.
    claimed: Vec<usize>,
}

/// Pushes the statements applying `plan`: its guard (with the workflow row's own effects and the
/// events), then one statement per effect, in order.
///
/// With a `channel`, a cancel that reaches a running attempt (a flagged activity, a close) also
/// notifies that channel, so the process running the attempt hears it at commit.
pub(super) fn push_plan(batch: &mut Batch, plan: &Plan, channel: Option<&str>) -> Applied {
    let g = &plan.guard;
    let n = plan.events.len() as i64;
    let bump = plan.effects.contains(&Effect::BumpWorkflowTaskToken);
    let clear_held = plan.effects.contains(&Effect::ClearHeld);
    let cancel = plan.effects.contains(&Effect::SetCancelRequested);
    let wf = || p(plan.workflow_id.clone());
    if n > 0 || g.wft_token.is_some() || g.running || bump || clear_held || cancel {
        batch.push(
            SQL_GUARD,
            vec![
                wf(),
                p(n),
                p(bump as i64),
                p(clear_held),
                p(cancel),
                p(g.next_event_seq.map(|s| s as i64)),
                p(g.wft_token),
                p(g.running),
                p(plan.time_ms),
                p(plan
                    .events
                    .iter()
                    .map(|e| e.name().to_string())
                    .collect::<Vec<_>>()),
                p(plan.events.iter().map(format::ref_seq).collect::<Vec<_>>()),
                p(plan
                    .events
                    .iter()
                    .map(format::encode_event)
                    .collect::<Vec<_>>()),
            ],
        );
    }
    let mut claimed = Vec::new();
    for effect in &plan.effects {
        match effect {
            Effect::InsertActivityTask(t) => {
                let (state, attempt, started, deadline, owner) = match &t.claimed_by {
                    Some((worker, d)) => (
                        TaskState::Running,
                        1i64,
                        Some(t.scheduled_ms),
                        Some(*d),
                        Some(worker.clone()),
                    ),
                    None => (TaskState::Pending, 0, None, t.pending_deadline, None),
                };
                let i = batch.push(
                    SQL_INSERT_ACTIVITY,
                    vec![
                        wf(),
                        p(t.activity_seq as i64),
                        p(t.activity_type.clone()),
                        p(t.task_queue.clone()),
                        p(to_json(&t.input)),
                        p(format::encode_options(&t.options)),
                        p(state.as_str()),
                        p(attempt),
                        p(t.scheduled_ms),
                        p(started),
                        p(deadline.map(|d| d.0)),
                        p(deadline.map(|d| kind_str(d.1))),
                        p(owner),
                        p(t.run_id.clone()),
                    ],
                );
                if t.claimed_by.is_some() {
                    claimed.push(i);
                }
            }
            Effect::DeleteActivityTask { activity_seq } => {
                batch.push(
                    SQL_DELETE_ACTIVITY_BY_SEQ,
                    vec![wf(), p(*activity_seq as i64)],
                );
            }
            Effect::FlagActivityCancel { activity_seq } => {
                let notify = channel.and_then(|c| {
                    Some((c, cancel_payload(&plan.workflow_id, Some(*activity_seq))?))
                });
                match notify {
                    Some((c, payload)) => batch.push(
                        SQL_FLAG_ACTIVITY_CANCEL_NOTIFY,
                        vec![wf(), p(*activity_seq as i64), p(c.to_string()), p(payload)],
                    ),
                    None => batch.push(
                        SQL_FLAG_ACTIVITY_CANCEL,
                        vec![wf(), p(*activity_seq as i64)],
                    ),
                };
            }
            Effect::StartAttempt {
                task_id,
                attempt,
                token,
                started_ms,
                deadline,
                worker,
            } => {
                batch.push(
                    SQL_START_ATTEMPT,
                    vec![
                        p(*task_id),
                        p(*attempt as i64),
                        p(*token),
                        p(*started_ms),
                        p(deadline.0),
                        p(kind_str(deadline.1)),
                        p(worker.clone()),
                    ],
                );
            }
            Effect::RetryActivityTask {
                task_id,
                visible_at_ms,
                heartbeat_details,
                pending_deadline,
                last_failure,
            } => {
                batch.push(
                    SQL_RETRY_ACTIVITY,
                    vec![
                        p(*task_id),
                        p(*visible_at_ms),
                        p(heartbeat_details.as_ref().map(to_json)),
                        p(pending_deadline.map(|d| d.0)),
                        p(pending_deadline.map(|d| kind_str(d.1))),
                        p(last_failure.as_ref().map(format::encode_activity_error)),
                    ],
                );
            }
            Effect::EndActivityTask { task_id } => {
                batch.push(SQL_END_ACTIVITY, vec![p(*task_id)]);
            }
            Effect::UpsertTimer {
                timer_seq,
                fire_at_ms,
            } => {
                batch.push(
                    SQL_UPSERT_TIMER,
                    vec![wf(), p(*timer_seq as i64), p(*fire_at_ms)],
                );
            }
            Effect::DeleteTimer { timer_seq } => {
                batch.push(SQL_DELETE_TIMER, vec![wf(), p(*timer_seq as i64)]);
            }
            Effect::StartChild(c) => {
                let w = &c.workflow;
                batch.push(
                    SQL_CREATE_CHILD,
                    vec![
                        p(w.workflow_id.clone()),
                        p(w.run_id.clone()),
                        p(w.workflow_type.clone()),
                        p(w.task_queue.clone()),
                        p(to_json(&w.input)),
                        p(plan.time_ms),
                        p(c.parent_id.clone()),
                        p(c.parent_run_id.clone()),
                        p(c.child_seq as i64),
                        p(c.policy.as_str()),
                    ],
                );
                let start = crate::engine::start::start(w, plan.time_ms);
                let _no_claims = push_plan(batch, &start, channel);
            }
            Effect::Close(c) => {
                let result = match c {
                    ClosedAs::Completed(v) => Some(to_json(v)),
                    ClosedAs::Failed(e) => Some(format::encode_workflow_error(e)),
                    ClosedAs::Cancelled | ClosedAs::ContinuedAsNew(_) => None,
                };
                let mut params = vec![wf(), p(c.status().as_str()), p(result), p(plan.time_ms)];
                let notify =
                    channel.and_then(|c| Some((c, cancel_payload(&plan.workflow_id, None)?)));
                let sql = match notify {
                    Some((c, payload)) => {
                        params.push(p(c.to_string()));
                        params.push(p(payload));
                        SQL_CLOSE_NOTIFY
                    }
                    None => SQL_CLOSE,
                };
                batch.push(sql, params);
            }
            Effect::ArchiveRun { next_run_id } => {
                batch.push(SQL_ARCHIVE_RUN, vec![wf(), p(next_run_id.clone())]);
            }
            Effect::ReplaceRun(r) => {
                batch.push(
                    SQL_REPLACE_RUN,
                    vec![
                        wf(),
                        p(r.run_id.clone()),
                        p(r.workflow_type.clone()),
                        p(r.task_queue.clone()),
                        p(to_json(&r.input)),
                        p(plan.time_ms),
                    ],
                );
            }
            // Applied by the guarded row update.
            Effect::SetCancelRequested | Effect::ClearHeld | Effect::BumpWorkflowTaskToken => {}
            Effect::WorkflowTask(t) => {
                match t {
                    WorkflowTaskEffect::Enqueue { at_ms } => {
                        batch.push(SQL_WFT_ENQUEUE, vec![wf(), p(*at_ms)])
                    }
                    WorkflowTaskEffect::Requeue { at_ms } => {
                        batch.push(SQL_WFT_REQUEUE, vec![wf(), p(*at_ms)])
                    }
                    WorkflowTaskEffect::Complete => batch.push(SQL_WFT_COMPLETE, vec![wf()]),
                    WorkflowTaskEffect::Lease { owner, until_ms } => {
                        batch.push(SQL_WFT_LEASE, vec![wf(), p(owner.clone()), p(*until_ms)])
                    }
                    WorkflowTaskEffect::Hold {
                        reason,
                        retry_at_ms,
                    } => batch.push(SQL_WFT_HOLD, vec![wf(), p(*retry_at_ms), p(reason.clone())]),
                };
            }
        }
    }
    if let Some(next) = plan.then.as_deref() {
        // The next run's first plan claims nothing: its statements follow, in the same batch.
        let _ = push_plan(batch, next, channel);
    }
    Applied { claimed }
}

impl Applied {
    /// Completes `plan` from the rows of its batch (which ran without error: its guard held): the
    /// task id of each attempt it claims.
    pub(super) fn complete(self, plan: &mut Plan, res: &[Vec<Row>]) -> Result<()> {
        for (k, i) in self.claimed.into_iter().enumerate() {
            let row = rows(res, i)?.first().ok_or_else(|| {
                Error::database("Postgres store: an eagerly claimed activity task was not inserted")
            })?;
            if let Some(c) = plan.claimed.get_mut(k) {
                c.task_id = col(row, 0)?;
            }
        }
        Ok(())
    }
}
