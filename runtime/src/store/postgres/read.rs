//! Reads: histories, descriptions, lists, due times, and activity task rows.

use super::{col, p, query, Batch, Tx};
use crate::engine::{ClaimedActivity, WorkflowStatus};
use crate::error::Result;
use crate::history::{format, HistoryEvent};
use crate::store::{
    corrupt_from, decode_last_failure, from_json, ListFilter, PendingActivity, PendingWorkflowTask,
    Poll, PollerRecord, Pollers, QueueDepth, StatusCounts, WorkflowDescription, WorkflowSummary,
};
use deadpool_postgres::Object;
use serde_json::Value;
use tokio_postgres::Row;

pub(super) const SQL_READ_HISTORY: &str = "SELECT seq, time_ms, payload FROM history
 WHERE workflow_id = $1::TEXT AND seq >= $2::BIGINT ORDER BY seq";

const SQL_DESCRIBE: &str = "
SELECT run_id, workflow_type, task_queue, status, result, created_ms, closed_ms, next_event_seq,
       held_reason, cancel_requested
  FROM workflows WHERE workflow_id = $1::TEXT";

const SQL_DESCRIBE_ACTIVITIES: &str = "
SELECT activity_seq, activity_type, state, attempt, cancel_requested, heartbeat_details,
       task_queue, scheduled_ms, visible_at, last_failure
  FROM activity_tasks WHERE workflow_id = $1::TEXT ORDER BY activity_seq";

const SQL_DESCRIBE_TASK: &str =
    "SELECT state, visible_at, lease_owner FROM workflow_tasks WHERE workflow_id = $1::TEXT";

/// One upsert for all of a worker's polls; rows in key order, so that two workers never wait on
/// each other's rows in opposite orders.
const SQL_RECORD_POLLS: &str = "
INSERT INTO pollers(task_queue, kind, type_name, worker_id, last_poll_ms)
SELECT q, k, t, $4::TEXT, $5::BIGINT
  FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[]) AS x(q, k, t) ORDER BY q, k, t
    ON CONFLICT (task_queue, kind, type_name) DO UPDATE
   SET worker_id = excluded.worker_id, last_poll_ms = excluded.last_poll_ms";

const SQL_POLLERS: &str = "
SELECT kind, type_name, worker_id, last_poll_ms FROM pollers WHERE task_queue = $1::TEXT";

/// Due tasks of the queues, and held workflows (a held workflow always has a pending task).
const SQL_QUEUE_DEPTH: &str = "
SELECT (SELECT count(*) FROM workflow_tasks WHERE state = 'pending' AND visible_at <= $1::BIGINT
           AND task_queue = ANY($2::TEXT[])),
       (SELECT count(*) FROM activity_tasks WHERE state = 'pending' AND visible_at <= $1::BIGINT
           AND task_queue = ANY($2::TEXT[])),
       (SELECT count(*) FROM workflow_tasks t JOIN workflows w ON w.workflow_id = t.workflow_id
         WHERE t.state = 'pending' AND w.held_reason IS NOT NULL)";

/// `list` and `count_by_status` filter alike: $1 status, $2 type, $3 id prefix, $4 started at or
/// after, $5 started before.
const SQL_LIST: &str = "
SELECT workflow_id, run_id, workflow_type, status, created_ms, closed_ms FROM workflows
 WHERE ($1::TEXT IS NULL OR status = $1::TEXT) AND ($2::TEXT IS NULL OR workflow_type = $2::TEXT)
   AND ($3::TEXT IS NULL OR starts_with(workflow_id, $3::TEXT))
   AND ($4::BIGINT IS NULL OR created_ms >= $4::BIGINT)
   AND ($5::BIGINT IS NULL OR created_ms < $5::BIGINT)
 ORDER BY created_ms DESC, workflow_id
 LIMIT $6::BIGINT OFFSET $7::BIGINT";

const SQL_COUNT_BY_STATUS: &str = "
SELECT status, COUNT(*) FROM workflows
 WHERE ($1::TEXT IS NULL OR workflow_type = $1::TEXT)
   AND ($2::TEXT IS NULL OR starts_with(workflow_id, $2::TEXT))
   AND ($3::BIGINT IS NULL OR created_ms >= $3::BIGINT)
   AND ($4::BIGINT IS NULL OR created_ms < $4::BIGINT)
 GROUP BY status";

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

/// Whether any timer is due: an idle poll costs one statement, no transaction.
const SQL_ANY_DUE_TIMER: &str = "SELECT EXISTS (SELECT 1 FROM timers WHERE fire_at <= $1::BIGINT)";

/// Whether any activity task of these queues and types is due (as above).
const SQL_ANY_DUE_ACTIVITY: &str = "
SELECT EXISTS (SELECT 1 FROM activity_tasks
                WHERE state = 'pending' AND visible_at <= $1::BIGINT
                  AND task_queue = ANY($2::TEXT[]) AND activity_type = ANY($3::TEXT[]))";

pub(super) async fn history(
    client: &Object,
    workflow_id: &str,
    from_seq: u64,
) -> Result<Vec<HistoryEvent>> {
    let rows = query(
        client,
        SQL_READ_HISTORY,
        &[&workflow_id, &(from_seq as i64)],
        "reading history",
    )
    .await?;
    events(&rows, workflow_id)
}

/// The history of an earlier run.
pub(super) async fn run_history(
    client: &Object,
    workflow_id: &str,
    run_id: &str,
) -> Result<Vec<HistoryEvent>> {
    let rows = query(
        client,
        "SELECT seq, time_ms, payload FROM run_history
          WHERE workflow_id = $1::TEXT AND run_id = $2::TEXT ORDER BY seq",
        &[&workflow_id, &run_id],
        "reading an earlier run's history",
    )
    .await?;
    events(&rows, workflow_id)
}

/// The earlier runs of a workflow id, oldest first.
pub(super) async fn runs(
    client: &Object,
    workflow_id: &str,
) -> Result<Vec<crate::store::RunSummary>> {
    let rows = query(
        client,
        "SELECT run_id, workflow_type, task_queue, status, result, created_ms, closed_ms,
                history_length, next_run_id
           FROM runs WHERE workflow_id = $1::TEXT ORDER BY created_ms, closed_ms",
        &[&workflow_id],
        "reading the earlier runs of a workflow",
    )
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let status = WorkflowStatus::parse(&col::<String>(r, 3)?)?;
        let (result, error) = crate::store::run_outcome(workflow_id, status, col(r, 4)?)?;
        out.push(crate::store::RunSummary {
            workflow_id: workflow_id.to_string(),
            run_id: col(r, 0)?,
            workflow_type: col(r, 1)?,
            task_queue: col(r, 2)?,
            status,
            result,
            error,
            started_ms: col(r, 5)?,
            closed_ms: col(r, 6)?,
            history_length: col::<i64>(r, 7)?.max(0) as u64,
            next_run_id: col(r, 8)?,
        });
    }
    Ok(out)
}

pub(super) fn events(rows: &[Row], workflow_id: &str) -> Result<Vec<HistoryEvent>> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let seq: i64 = col(r, 0)?;
        let payload: String = col(r, 2)?;
        let kind = format::decode_event(&payload).map_err(|e| {
            corrupt_from(
                format!("history event #{seq} of workflow `{workflow_id}`: {e}"),
                e,
            )
        })?;
        out.push(HistoryEvent {
            seq: seq as u64,
            time_ms: col(r, 1)?,
            kind,
        });
    }
    Ok(out)
}

pub(super) async fn describe(
    client: Object,
    workflow_id: &str,
) -> Result<Option<WorkflowDescription>> {
    let ctx = "describing a workflow";
    // One snapshot for both reads.
    let mut tx = Tx::with_begin(client, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    let mut batch = Batch::default();
    batch.push(SQL_DESCRIBE, vec![p(workflow_id.to_string())]);
    batch.push(SQL_DESCRIBE_ACTIVITIES, vec![p(workflow_id.to_string())]);
    batch.push(SQL_DESCRIBE_TASK, vec![p(workflow_id.to_string())]);
    let res = tx.run(batch, false, ctx).await?;
    let Some(r) = res[0].first() else {
        return Ok(None);
    };
    let status = WorkflowStatus::parse(&col::<String>(r, 3)?)?;
    let stored: Option<String> = col(r, 4)?;
    let what = |w: &str| format!("{w} of workflow `{workflow_id}`");
    let (result, error) = match (status, stored) {
        (WorkflowStatus::Completed, Some(v)) => (Some(from_json(&v, &what("the result"))?), None),
        (WorkflowStatus::Failed, Some(e)) => (
            None,
            Some(
                format::decode_workflow_error(&e)
                    .map_err(|e| corrupt_from(format!("{}: {e}", what("the error")), e))?,
            ),
        ),
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
            task_queue: col(a, 6)?,
            scheduled_ms: col(a, 7)?,
            due_ms: col(a, 8)?,
            last_failure: decode_last_failure(
                col::<Option<String>>(a, 9)?.as_deref(),
                workflow_id,
                col::<i64>(a, 0)? as u64,
            ),
            pollers: Pollers::default(),
        });
    }
    let pending_task = match res[2].first() {
        Some(t) => Some(PendingWorkflowTask {
            state: col(t, 0)?,
            due_ms: col(t, 1)?,
            worker: col(t, 2)?,
        }),
        None => None,
    };
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
        pending_task,
        pollers: Pollers::default(),
        notes: Vec::new(),
    }))
}

/// Records a worker's poller heartbeats.
pub(super) async fn record_polls(
    client: &Object,
    worker_id: &str,
    polls: &[Poll],
    now: i64,
) -> Result<()> {
    let queues: Vec<&str> = polls.iter().map(|p| p.task_queue.as_str()).collect();
    let kinds: Vec<&str> = polls.iter().map(|p| p.kind.as_str()).collect();
    let types: Vec<&str> = polls.iter().map(|p| p.type_name.as_str()).collect();
    query(
        client,
        SQL_RECORD_POLLS,
        &[&queues, &kinds, &types, &worker_id, &now],
        "recording a worker's polls",
    )
    .await?;
    Ok(())
}

/// The poller heartbeats of a task queue.
pub(super) async fn pollers(client: &Object, task_queue: &str) -> Result<Vec<PollerRecord>> {
    let rows = query(client, SQL_POLLERS, &[&task_queue], "reading pollers").await?;
    rows.iter()
        .map(|r| {
            Ok(PollerRecord {
                kind: col(r, 0)?,
                type_name: col(r, 1)?,
                worker_id: col(r, 2)?,
                last_poll_ms: col(r, 3)?,
            })
        })
        .collect()
}

/// Tasks due at `now` in these queues, and the workflows held.
pub(super) async fn queue_depth(
    client: &Object,
    queues: &[String],
    now: i64,
) -> Result<QueueDepth> {
    let rows = query(
        client,
        SQL_QUEUE_DEPTH,
        &[&now, &queues],
        "reading queue depths",
    )
    .await?;
    let Some(r) = rows.first() else {
        return Ok(QueueDepth::default());
    };
    let n = |i: usize| col::<i64>(r, i).map(|v| v.max(0) as u64);
    Ok(QueueDepth {
        workflow_tasks: n(0)?,
        activity_tasks: n(1)?,
        held_workflows: n(2)?,
    })
}

pub(super) async fn list(client: &Object, filter: &ListFilter) -> Result<Vec<WorkflowSummary>> {
    let status = filter.status.map(|s| s.as_str());
    let rows = query(
        client,
        SQL_LIST,
        &[
            &status,
            &filter.workflow_type,
            &filter.id_prefix,
            &filter.started_after_ms,
            &filter.started_before_ms,
            &filter.limit_i64(),
            &filter.offset_i64(),
        ],
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

/// How many workflows match the filter, by status.
pub(super) async fn count_by_status(client: &Object, filter: &ListFilter) -> Result<StatusCounts> {
    let rows = query(
        client,
        SQL_COUNT_BY_STATUS,
        &[
            &filter.workflow_type,
            &filter.id_prefix,
            &filter.started_after_ms,
            &filter.started_before_ms,
        ],
        "counting workflows",
    )
    .await?;
    let mut counts = StatusCounts::default();
    for r in &rows {
        let status = WorkflowStatus::parse(&col::<String>(r, 0)?)?;
        counts.add(status, col::<i64>(r, 1)?.max(0) as u64);
    }
    Ok(counts)
}

/// When the next task of these queues and types, timer, retry, lease or deadline falls due.
pub(super) async fn next_due(
    client: &Object,
    queues: &[String],
    workflow_types: &[String],
    activity_types: &[String],
) -> Result<Option<i64>> {
    let rows = query(
        client,
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

/// Whether a timer is due at `now`.
pub(super) async fn any_due_timer(client: &Object, now: i64) -> Result<bool> {
    let rows = query(client, SQL_ANY_DUE_TIMER, &[&now], "firing timers").await?;
    Ok(rows
        .first()
        .map(|r| col(r, 0))
        .transpose()?
        .unwrap_or(false))
}

/// Whether an activity task of these queues and types is due at `now`.
pub(super) async fn any_due_activity(
    client: &Object,
    now: i64,
    queues: &[String],
    types: &[String],
) -> Result<bool> {
    let rows = query(
        client,
        SQL_ANY_DUE_ACTIVITY,
        &[&now, &queues, &types],
        "claiming activity tasks",
    )
    .await?;
    Ok(rows
        .first()
        .map(|r| col(r, 0))
        .transpose()?
        .unwrap_or(false))
}

/// An activity task's columns, as [`read_activity`] reads them (table alias `a`).
pub(super) const ACTIVITY_COLS: &str = "a.id, a.workflow_id, a.run_id, a.activity_seq,
    a.activity_type, a.task_queue, a.input, a.options, a.attempt, a.token, a.scheduled_ms,
    a.started_ms, a.deadline_ms, a.heartbeat_details, a.cancel_requested, a.deadline_kind";

/// Reads `ACTIVITY_COLS` (as the SQLite store does: an input or options that do not parse become
/// `null` / the defaults, so one damaged row cannot block every claim behind it).
pub(super) fn read_activity(r: &Row) -> Result<(ClaimedActivity, Option<String>)> {
    let input: String = col(r, 6)?;
    let options: String = col(r, 7)?;
    let details: Option<String> = col(r, 13)?;
    let task_id: i64 = col(r, 0)?;
    let input = serde_json::from_str(&input).unwrap_or_else(|e| {
        tracing::warn!(task_id, error = %e, "activity task input is not valid JSON; using null");
        Value::Null
    });
    let options = format::decode_options(&options).unwrap_or_else(|e| {
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
