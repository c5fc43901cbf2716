//! Reads: histories, descriptions, lists, due times, and activity task rows.

use super::qrow;
use crate::engine::{ClaimedActivity, WorkflowStatus};
use crate::error::Result;
use crate::history::{format, HistoryEvent};
use crate::store::decode_last_failure;
use crate::store::{
    corrupt_from, from_json, ListFilter, PendingActivity, PendingWorkflowTask, PollerRecord,
    Pollers, QueueDepth, StatusCounts, WorkflowDescription, WorkflowSummary,
};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

pub(super) fn history(
    conn: &Connection,
    workflow_id: &str,
    from_seq: u64,
) -> Result<Vec<HistoryEvent>> {
    let mut st = conn.prepare_cached(
        "SELECT seq, time_ms, payload FROM history WHERE workflow_id = ?1 AND seq >= ?2
         ORDER BY seq",
    )?;
    events(&mut st, params![workflow_id, from_seq as i64], workflow_id)
}

/// The history of an earlier run (`run_history`).
pub(super) fn run_history(
    conn: &Connection,
    workflow_id: &str,
    run_id: &str,
) -> Result<Vec<HistoryEvent>> {
    let mut st = conn.prepare_cached(
        "SELECT seq, time_ms, payload FROM run_history WHERE workflow_id = ?1 AND run_id = ?2
         ORDER BY seq",
    )?;
    events(&mut st, params![workflow_id, run_id], workflow_id)
}

/// The earlier runs of a workflow id, oldest first.
pub(super) fn runs(conn: &Connection, workflow_id: &str) -> Result<Vec<crate::store::RunSummary>> {
    let mut st = conn.prepare_cached(
        "SELECT run_id, workflow_type, task_queue, status, result, created_ms, closed_ms,
                history_length, next_run_id
           FROM runs WHERE workflow_id = ?1 ORDER BY created_ms, closed_ms",
    )?;
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
    );
    let rows = st.query_map(params![workflow_id], |r| {
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
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (run_id, wtype, queue, status, result, created, closed, len, next): Row = row?;
        let status = WorkflowStatus::parse(&status)?;
        let (result, error) = crate::store::run_outcome(workflow_id, status, result)?;
        out.push(crate::store::RunSummary {
            workflow_id: workflow_id.to_string(),
            run_id,
            workflow_type: wtype,
            task_queue: queue,
            status,
            result,
            error,
            started_ms: created,
            closed_ms: closed,
            history_length: len.max(0) as u64,
            next_run_id: next,
        });
    }
    Ok(out)
}

fn events(
    st: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
    workflow_id: &str,
) -> Result<Vec<HistoryEvent>> {
    let rows = st.query_map(params, |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, time_ms, payload) = row?;
        let kind = format::decode_event(&payload).map_err(|e| {
            corrupt_from(
                format!("history event #{seq} of workflow `{workflow_id}`: {e}"),
                e,
            )
        })?;
        out.push(HistoryEvent {
            seq: seq as u64,
            time_ms,
            kind,
        });
    }
    Ok(out)
}

pub(super) fn describe(
    conn: &Connection,
    workflow_id: String,
) -> Result<Option<WorkflowDescription>> {
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
    let Some((run_id, wtype, queue, status, result, created, closed, next_seq, held, cancel)) = row
    else {
        return Ok(None);
    };
    let status = WorkflowStatus::parse(&status)?;
    let (result, error) = match (status, result) {
        (WorkflowStatus::Completed, Some(r)) => (Some(from_json(&r, "workflow result")?), None),
        (WorkflowStatus::Failed, Some(e)) => (
            None,
            Some(format::decode_workflow_error(&e).map_err(|err| {
                corrupt_from(format!("the error of workflow `{workflow_id}`: {err}"), err)
            })?),
        ),
        _ => (None, None),
    };
    let pending = {
        let mut st = conn.prepare_cached(
            "SELECT activity_seq, activity_type, state, attempt, cancel_requested,
                 heartbeat_details, task_queue, scheduled_ms, visible_at, last_failure
               FROM activity_tasks WHERE workflow_id = ?1 ORDER BY activity_seq",
        )?;
        let rows = st.query_map(params![workflow_id], |r| {
            let d: Option<String> = r.get(5)?;
            let failure: Option<String> = r.get(9)?;
            Ok((
                PendingActivity {
                    activity_seq: r.get::<_, i64>(0)? as u64,
                    activity_type: r.get(1)?,
                    state: r.get(2)?,
                    attempt: r.get::<_, i64>(3)? as u32,
                    cancel_requested: r.get::<_, i64>(4)? != 0,
                    heartbeat_details: d.and_then(|d| serde_json::from_str(&d).ok()),
                    task_queue: r.get(6)?,
                    scheduled_ms: r.get(7)?,
                    due_ms: r.get(8)?,
                    last_failure: None,
                    pollers: Pollers::default(),
                },
                failure,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (mut a, failure) = row?;
            a.last_failure = decode_last_failure(failure.as_deref(), &workflow_id, a.activity_seq);
            out.push(a);
        }
        out
    };
    let pending_task = qrow(
        conn,
        "SELECT state, visible_at, lease_owner FROM workflow_tasks WHERE workflow_id = ?1",
        params![workflow_id],
        |r| {
            Ok(PendingWorkflowTask {
                state: r.get(0)?,
                due_ms: r.get(1)?,
                worker: r.get(2)?,
            })
        },
    )
    .optional()?;
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
        pending_task,
        pollers: Pollers::default(),
        notes: Vec::new(),
    }))
}

/// The poller heartbeats of a task queue.
pub(super) fn pollers(conn: &Connection, task_queue: &str) -> Result<Vec<PollerRecord>> {
    let mut st = conn.prepare_cached(
        "SELECT kind, type_name, worker_id, last_poll_ms FROM pollers WHERE task_queue = ?1",
    )?;
    let rows = st.query_map(params![task_queue], |r| {
        Ok(PollerRecord {
            kind: r.get(0)?,
            type_name: r.get(1)?,
            worker_id: r.get(2)?,
            last_poll_ms: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Tasks due at `now` in the task queues `queues` (a JSON list), and held workflows (a held
/// workflow always has a pending task, so only the task rows are read).
pub(super) fn queue_depth(conn: &Connection, queues: &str, now: i64) -> Result<QueueDepth> {
    let count = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<u64> {
        Ok(qrow(conn, sql, p, |r| r.get::<_, i64>(0))?.max(0) as u64)
    };
    Ok(QueueDepth {
        workflow_tasks: count(
            "SELECT count(*) FROM workflow_tasks WHERE state = 'pending' AND visible_at <= ?1
                AND task_queue IN (SELECT value FROM json_each(?2))",
            &[&now, &queues],
        )?,
        activity_tasks: count(
            "SELECT count(*) FROM activity_tasks WHERE state = 'pending' AND visible_at <= ?1
                AND task_queue IN (SELECT value FROM json_each(?2))",
            &[&now, &queues],
        )?,
        held_workflows: count(
            "SELECT count(*) FROM workflow_tasks t JOIN workflows w ON w.workflow_id = t.workflow_id
              WHERE t.state = 'pending' AND w.held_reason IS NOT NULL",
            &[],
        )?,
    })
}

/// The `WHERE` clause of `list` and `count_by_status`: ?1 status, ?2 type, ?3 id prefix, ?4 started
/// at or after, ?5 started before.
const SQL_FILTER: &str = "(?1 IS NULL OR status = ?1) AND (?2 IS NULL OR workflow_type = ?2)
     AND (?3 IS NULL OR substr(workflow_id, 1, length(?3)) = ?3)
     AND (?4 IS NULL OR created_ms >= ?4) AND (?5 IS NULL OR created_ms < ?5)";

pub(super) fn list(conn: &Connection, filter: &ListFilter) -> Result<Vec<WorkflowSummary>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT workflow_id, run_id, workflow_type, status, created_ms, closed_ms
         FROM workflows WHERE {SQL_FILTER}
         ORDER BY created_ms DESC, workflow_id LIMIT ?6 OFFSET ?7"
    ))?;
    let rows = st.query_map(
        params![
            filter.status.map(|s| s.as_str()),
            filter.workflow_type,
            filter.id_prefix,
            filter.started_after_ms,
            filter.started_before_ms,
            filter.limit_i64(),
            filter.offset_i64()
        ],
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, Option<i64>>(5)?,
            ))
        },
    )?;
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
}

pub(super) fn count_by_status(conn: &Connection, filter: &ListFilter) -> Result<StatusCounts> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT status, COUNT(*) FROM workflows WHERE {SQL_FILTER} GROUP BY status"
    ))?;
    let rows = st.query_map(
        params![
            None::<&str>,
            filter.workflow_type,
            filter.id_prefix,
            filter.started_after_ms,
            filter.started_before_ms
        ],
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
    )?;
    let mut counts = StatusCounts::default();
    for row in rows {
        let (status, n) = row?;
        counts.add(WorkflowStatus::parse(&status)?, n.max(0) as u64);
    }
    Ok(counts)
}

/// When the next task of these queues and types (JSON lists), timer, retry, lease or deadline
/// falls due.
pub(super) fn next_due(
    conn: &Connection,
    queues: &str,
    wtypes: &str,
    atypes: &str,
) -> Result<Option<i64>> {
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
}

pub(super) const ACTIVITY_COLS: &str =
    "id, workflow_id, run_id, activity_seq, activity_type, task_queue, input,
    options, attempt, token, scheduled_ms, started_ms, deadline_ms, heartbeat_details,
    cancel_requested, deadline_kind";

pub(super) fn read_activity(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<(ClaimedActivity, Option<String>)> {
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
            options: format::decode_options(&options).unwrap_or_else(|e| {
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
