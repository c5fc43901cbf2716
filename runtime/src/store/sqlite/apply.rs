//! Reading the engine's facts and applying its plans, in SQLite's SQL. No decisions here: every
//! choice was made by the engine; this file checks the plan's guards and writes its effects.

use super::{exec, qrow};
use crate::engine::child;
use crate::engine::facts::LazyOptions;
use crate::engine::{
    AttemptFacts, ClosedAs, Effect, Plan, TaskState, WorkflowFacts, WorkflowStatus,
    WorkflowTaskEffect,
};
use crate::error::{Error, Result};
use crate::history::format;
use crate::history::ParentClosePolicy;
use crate::store::{from_json, kind_str, to_json};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::{HashMap, HashSet};

/// The workflow's row and the rows the decision concerns: the activity tasks of `targets`, and
/// with `unseen_after` the history's events after that seq. `None` if there is no such workflow.
pub(super) fn workflow_facts(
    conn: &Connection,
    workflow_id: &str,
    targets: &[u64],
    unseen_after: Option<u64>,
) -> Result<Option<WorkflowFacts>> {
    type Row = (String, String, i64, i64, i64, Option<String>, bool);
    let row: Option<Row> = qrow(
        conn,
        "SELECT w.run_id, w.status, w.next_event_seq, w.wft_token, w.cancel_requested, t.state,
                EXISTS (SELECT 1 FROM child_workflows c WHERE c.child_run_id = w.run_id)
                OR EXISTS (SELECT 1 FROM child_workflows c
                            WHERE c.parent_id = w.workflow_id AND c.parent_run_id = w.run_id)
           FROM workflows w LEFT JOIN workflow_tasks t ON t.workflow_id = w.workflow_id
          WHERE w.workflow_id = ?1",
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
            ))
        },
    )
    .optional()?;
    let Some((run_id, status, next_seq, token, cancel_requested, task, linked)) = row else {
        return Ok(None);
    };
    let mut activities = HashMap::with_capacity(targets.len());
    for &seq in targets {
        let t: Option<(String, Option<String>)> = qrow(
            conn,
            "SELECT state, heartbeat_details FROM activity_tasks
              WHERE workflow_id = ?1 AND activity_seq = ?2",
            params![workflow_id, seq as i64],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
        if let Some((state, details)) = t {
            let details = details
                .map(|d| from_json(&d, "an activity task's heartbeat details"))
                .transpose()?;
            activities.insert(seq, (TaskState::parse(&state)?, details));
        }
    }
    let mut unseen = Vec::new();
    if let Some(after) = unseen_after {
        let mut st = conn.prepare_cached(
            "SELECT seq, event_type FROM history WHERE workflow_id = ?1 AND seq > ?2",
        )?;
        let rows = st.query_map(params![workflow_id, after as i64], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?))
        })?;
        for r in rows {
            unseen.push(r?);
        }
    }
    Ok(Some(WorkflowFacts {
        workflow_id: workflow_id.to_string(),
        run_id,
        status: WorkflowStatus::parse(&status)?,
        next_event_seq: next_seq as u64,
        wft_token: token,
        task: task.as_deref().map(TaskState::parse).transpose()?,
        cancel_requested: cancel_requested != 0,
        activities,
        unseen,
        next_run: None,
        existing_ids: Default::default(),
        linked,
    }))
}

/// What the next run inherits (see [`crate::engine::facts::NextRunFacts`]): the signals recorded
/// after `after`, and the execution-timeout timer.
pub(super) fn next_run_facts(
    conn: &Connection,
    workflow_id: &str,
    after: u64,
) -> Result<crate::engine::facts::NextRunFacts> {
    let mut late_signals = Vec::new();
    let mut st = conn.prepare_cached(
        "SELECT seq, payload FROM history WHERE workflow_id = ?1 AND seq > ?2 AND event_type = ?3
          ORDER BY seq",
    )?;
    let rows = st.query_map(
        params![workflow_id, after as i64, format::messages::SIGNAL_RECEIVED],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
    )?;
    for row in rows {
        let (seq, payload) = row?;
        late_signals.push(format::decode_event(&payload).map_err(|e| {
            crate::error::corrupt_from(
                format!("history event #{seq} of workflow `{workflow_id}`: {e}"),
                e,
            )
        })?);
    }
    let execution_deadline_ms = qrow(
        conn,
        "SELECT fire_at FROM timers WHERE workflow_id = ?1 AND timer_seq = ?2",
        params![
            workflow_id,
            crate::engine::timer::EXECUTION_TIMEOUT_TIMER as i64
        ],
        |r| r.get(0),
    )
    .optional()?;
    Ok(crate::engine::facts::NextRunFacts {
        late_signals,
        execution_deadline_ms,
    })
}

/// Of `ids`, those a workflow has (the children a commit starts: see `engine::child`).
pub(super) fn existing_ids(conn: &Connection, ids: &[String]) -> Result<HashSet<String>> {
    let mut out = HashSet::new();
    for id in ids {
        let found: Option<i64> = qrow(
            conn,
            "SELECT 1 FROM workflows WHERE workflow_id = ?1",
            params![id],
            |r| r.get(0),
        )
        .optional()?;
        if found.is_some() {
            out.insert(id.clone());
        }
    }
    Ok(out)
}

/// A closed workflow's links (`engine::child::Links`): its parent, and its children still
/// running.
fn links(conn: &Connection, workflow_id: &str) -> Result<child::Links> {
    let parent: Option<(String, String, i64)> = qrow(
        conn,
        "SELECT c.parent_id, c.parent_run_id, c.child_seq FROM child_workflows c
          WHERE c.child_run_id = (SELECT run_id FROM workflows WHERE workflow_id = ?1)
            AND c.child_id = ?1",
        params![workflow_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .optional()?;
    let mut open_children = Vec::new();
    let mut st = conn.prepare_cached(
        "SELECT c.child_id, c.child_run_id, c.parent_close_policy FROM child_workflows c
           JOIN workflows w ON w.workflow_id = c.child_id AND w.run_id = c.child_run_id
          WHERE c.parent_id = ?1
            AND c.parent_run_id = (SELECT run_id FROM workflows WHERE workflow_id = ?1)
            AND w.status = 'running'
          ORDER BY c.child_seq",
    )?;
    let rows = st.query_map(params![workflow_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for r in rows {
        let (id, run, policy) = r?;
        let policy = ParentClosePolicy::parse(&policy).ok_or_else(|| {
            crate::error::corrupt(format!("unknown parent close policy `{policy}`"))
        })?;
        open_children.push((id, run, policy));
    }
    Ok(child::Links {
        parent: parent.map(|(p, r, s)| (p, r, s as u64)),
        open_children,
    })
}

/// What follows `plan` on other workflows (`engine::child`): for each, the facts it concerns
/// are read, the engine decides, and its plan is applied (with its own followups), in the same
/// transaction.
fn follow(conn: &Connection, f: child::Followup, now: i64) -> Result<bool> {
    use child::Followup;
    let plan = match f {
        Followup::Closed {
            workflow_id,
            closed,
        } => {
            let links = links(conn, &workflow_id)?;
            let mut any = false;
            for g in child::on_close(&closed, &links, &workflow_id) {
                any |= follow(conn, g, now)?;
            }
            return Ok(any);
        }
        Followup::Deliver {
            parent_id,
            parent_run_id,
            event,
        } => {
            let facts = workflow_facts(conn, &parent_id, &[], None)?;
            child::deliver(facts.as_ref(), &parent_run_id, event, now)
        }
        Followup::RequestCancel {
            workflow_id,
            run_id,
        } => {
            let facts = workflow_facts(conn, &workflow_id, &[], None)?;
            child::request_cancel_of(facts.as_ref(), &run_id, now)
        }
        Followup::Terminate {
            workflow_id,
            run_id,
            reason,
        } => {
            let facts = workflow_facts(conn, &workflow_id, &[], None)?;
            child::terminate_of(facts.as_ref(), &run_id, &reason, now)
        }
    };
    match plan {
        Some(mut plan) => {
            apply(conn, &mut plan)?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Starts a child workflow (`Effect::StartChild`): its row, its link, its first event and task.
fn start_child(conn: &Connection, c: &child::NewChild, now: i64) -> Result<()> {
    exec(
        conn,
        "INSERT INTO child_workflows(child_run_id, child_id, parent_id, parent_run_id, child_seq,
             parent_close_policy) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            c.workflow.run_id,
            c.workflow.workflow_id,
            c.parent_id,
            c.parent_run_id,
            c.child_seq as i64,
            c.policy.as_str()
        ],
    )?;
    if !super::messages::create(conn, &c.workflow, now)? {
        return Err(Error::DuplicateWorkflowId(c.workflow.workflow_id.clone()));
    }
    Ok(())
}

/// The activity task `task_id` as ending an attempt needs it, or `None` if it is gone.
pub(super) fn attempt_facts(conn: &Connection, task_id: i64) -> Result<Option<AttemptFacts>> {
    // Only what ending the attempt needs: the input stays unread and the options unparsed on
    // this hot path.
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
    let Some((workflow_id, seq, token, scheduled_ms, cancel_requested, details, options)) = row
    else {
        return Ok(None);
    };
    Ok(Some(AttemptFacts {
        task_id,
        workflow_id,
        activity_seq: seq as u64,
        token,
        scheduled_ms,
        cancel_requested,
        heartbeat_details: details
            .map(|d| from_json(&d, "an activity task's heartbeat details"))
            .transpose()?,
        options: LazyOptions::Stored(options),
    }))
}

fn guard_failed(plan: &Plan) -> Error {
    Error::database(format!(
        "workflow `{}` changed while a transition was being applied (its guard no longer holds); nothing was written",
        plan.workflow_id
    ))
}

/// Applies `plan`: checks its guards against the workflow row, appends its events, writes its
/// effects. Fills in the task ids of the attempts it claims. On error the caller's savepoint is
/// rolled back: nothing of the plan stays.
pub(super) fn apply(conn: &Connection, plan: &mut Plan) -> Result<()> {
    let g = &plan.guard;
    let n = plan.events.len() as i64;
    let has_row_update = n > 0 || g.wft_token.is_some() || g.running;
    let first_seq: Option<i64> = if has_row_update {
        let bump = plan.effects.contains(&Effect::BumpWorkflowTaskToken);
        let clear_held = plan.effects.contains(&Effect::ClearHeld);
        let cancel = plan.effects.contains(&Effect::SetCancelRequested);
        qrow(
            conn,
            "UPDATE workflows SET next_event_seq = next_event_seq + ?2,
                    wft_token = wft_token + ?3,
                    held_reason = CASE WHEN ?4 THEN NULL ELSE held_reason END,
                    cancel_requested = CASE WHEN ?5 THEN 1 ELSE cancel_requested END
              WHERE workflow_id = ?1
                AND (?6 IS NULL OR next_event_seq = ?6)
                AND (?7 IS NULL OR wft_token = ?7)
                AND (NOT ?8 OR status = 'running')
             RETURNING next_event_seq - ?2",
            params![
                plan.workflow_id,
                n,
                bump as i64,
                clear_held,
                cancel,
                g.next_event_seq.map(|s| s as i64),
                g.wft_token,
                g.running,
            ],
            |r| r.get(0),
        )
        .optional()?
    } else {
        Some(0)
    };
    let Some(first) = first_seq else {
        return Err(guard_failed(plan));
    };
    for (i, e) in plan.events.iter().enumerate() {
        exec(
            conn,
            "INSERT INTO history(workflow_id, seq, time_ms, event_type, ref_seq, payload)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                plan.workflow_id,
                first + i as i64,
                plan.time_ms,
                e.name(),
                format::ref_seq(e),
                format::encode_event(e)
            ],
        )?;
    }
    let wf = plan.workflow_id.as_str();
    let now = plan.time_ms;
    let mut claimed = 0usize;
    for effect in &plan.effects {
        match effect {
            Effect::InsertActivityTask(t) => {
                let (owner, deadline, state, attempt) = match &t.claimed_by {
                    Some((worker, d)) => (Some(worker.as_str()), Some(*d), TaskState::Running, 1),
                    None => (None, t.pending_deadline, TaskState::Pending, 0),
                };
                let id: i64 = qrow(
                    conn,
                    "INSERT INTO activity_tasks(workflow_id, run_id, activity_seq, activity_type,
                         task_queue, input, options, state, attempt, token, visible_at,
                         scheduled_ms, started_ms, deadline_ms, deadline_kind, lease_owner)
                     VALUES (?1, ?13, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?9,
                            CASE WHEN ?8 = 1 THEN ?9 END, ?10, ?11, ?12)
                     RETURNING id",
                    params![
                        wf,
                        t.activity_seq as i64,
                        t.activity_type,
                        t.task_queue,
                        to_json(&t.input),
                        format::encode_options(&t.options),
                        state.as_str(),
                        attempt,
                        t.scheduled_ms,
                        deadline.map(|d| d.0),
                        deadline.map(|d| kind_str(d.1)),
                        owner,
                        t.run_id,
                    ],
                    |r| r.get(0),
                )?;
                if t.claimed_by.is_some() {
                    if let Some(c) = plan.claimed.get_mut(claimed) {
                        c.task_id = id;
                    }
                    claimed += 1;
                }
            }
            Effect::DeleteActivityTask { activity_seq } => {
                exec(
                    conn,
                    "DELETE FROM activity_tasks WHERE workflow_id = ?1 AND activity_seq = ?2",
                    params![wf, *activity_seq as i64],
                )?;
            }
            Effect::FlagActivityCancel { activity_seq } => {
                exec(
                    conn,
                    "UPDATE activity_tasks SET cancel_requested = 1
                      WHERE workflow_id = ?1 AND activity_seq = ?2",
                    params![wf, *activity_seq as i64],
                )?;
            }
            Effect::StartAttempt {
                task_id,
                attempt,
                token,
                started_ms,
                deadline,
                worker,
            } => {
                exec(
                    conn,
                    "UPDATE activity_tasks SET state = 'running', attempt = ?2, token = ?3,
                         started_ms = ?4, deadline_ms = ?5, deadline_kind = ?6, lease_owner = ?7
                      WHERE id = ?1",
                    params![
                        task_id,
                        attempt,
                        token,
                        started_ms,
                        deadline.0,
                        kind_str(deadline.1),
                        worker
                    ],
                )?;
            }
            Effect::RetryActivityTask {
                task_id,
                visible_at_ms,
                heartbeat_details,
                pending_deadline,
                last_failure,
            } => {
                exec(
                    conn,
                    "UPDATE activity_tasks SET state = 'pending', visible_at = ?2, lease_owner = NULL,
                         heartbeat_details = ?3, deadline_ms = ?4, deadline_kind = ?5,
                         last_failure = COALESCE(?6, last_failure)
                      WHERE id = ?1",
                    params![
                        task_id,
                        visible_at_ms,
                        heartbeat_details.as_ref().map(to_json),
                        pending_deadline.map(|d| d.0),
                        pending_deadline.map(|d| kind_str(d.1)),
                        last_failure.as_ref().map(format::encode_activity_error)
                    ],
                )?;
            }
            Effect::EndActivityTask { task_id } => {
                exec(
                    conn,
                    "DELETE FROM activity_tasks WHERE id = ?1",
                    params![task_id],
                )?;
            }
            Effect::UpsertTimer {
                timer_seq,
                fire_at_ms,
            } => {
                exec(
                    conn,
                    "INSERT OR REPLACE INTO timers(workflow_id, timer_seq, fire_at) VALUES (?1, ?2, ?3)",
                    params![wf, *timer_seq as i64, fire_at_ms],
                )?;
            }
            Effect::DeleteTimer { timer_seq } => {
                exec(
                    conn,
                    "DELETE FROM timers WHERE workflow_id = ?1 AND timer_seq = ?2",
                    params![wf, *timer_seq as i64],
                )?;
            }
            Effect::Close(c) => close(conn, wf, c, now)?,
            Effect::ArchiveRun { next_run_id } => {
                exec(
                    conn,
                    "INSERT INTO runs(workflow_id, run_id, workflow_type, task_queue, status, input,
                         result, created_ms, closed_ms, history_length, next_run_id)
                     SELECT workflow_id, run_id, workflow_type, task_queue, status, input, result,
                            created_ms, closed_ms, next_event_seq - 1, ?2
                       FROM workflows WHERE workflow_id = ?1",
                    params![wf, next_run_id],
                )?;
                for sql in [
                    "INSERT INTO run_history(workflow_id, run_id, seq, time_ms, event_type, ref_seq,
                         payload)
                     SELECT h.workflow_id, w.run_id, h.seq, h.time_ms, h.event_type, h.ref_seq,
                            h.payload
                       FROM history h JOIN workflows w ON w.workflow_id = h.workflow_id
                      WHERE h.workflow_id = ?1",
                    "DELETE FROM history WHERE workflow_id = ?1",
                    "DELETE FROM activity_tasks WHERE workflow_id = ?1",
                ] {
                    exec(conn, sql, params![wf])?;
                }
            }
            Effect::ReplaceRun(r) => {
                exec(
                    conn,
                    "UPDATE workflows SET run_id = ?2, workflow_type = ?3, task_queue = ?4,
                         input = ?5, status = 'running', result = NULL, next_event_seq = 1,
                         wft_token = wft_token + 1, cancel_requested = 0, held_reason = NULL,
                         created_ms = ?6, closed_ms = NULL
                      WHERE workflow_id = ?1",
                    params![
                        wf,
                        r.run_id,
                        r.workflow_type,
                        r.task_queue,
                        to_json(&r.input),
                        now
                    ],
                )?;
            }
            Effect::StartChild(c) => start_child(conn, c, now)?,
            // Applied with the guarded row update above.
            Effect::SetCancelRequested | Effect::ClearHeld | Effect::BumpWorkflowTaskToken => {}
            Effect::WorkflowTask(t) => workflow_task(conn, wf, t)?,
        }
    }
    if let Some(next) = plan.then.as_deref_mut() {
        apply(conn, next)?;
    }
    if !plan.followups.is_empty() || plan.closes().is_some() {
        for f in child::followups(plan) {
            plan.woke_others |= follow(conn, f, now)?;
        }
    }
    Ok(())
}

fn workflow_task(conn: &Connection, wf: &str, t: &WorkflowTaskEffect) -> Result<()> {
    match t {
        WorkflowTaskEffect::Enqueue { at_ms } => {
            exec(
                conn,
                "INSERT INTO workflow_tasks(workflow_id, task_queue, workflow_type, state, visible_at)
                 SELECT workflow_id, task_queue, workflow_type, 'pending', ?2 FROM workflows
                  WHERE workflow_id = ?1 AND status = 'running'
                 ON CONFLICT(workflow_id) DO NOTHING",
                params![wf, at_ms],
            )?;
        }
        WorkflowTaskEffect::Requeue { at_ms } => {
            exec(
                conn,
                "INSERT INTO workflow_tasks(workflow_id, task_queue, workflow_type, state, visible_at)
                 SELECT workflow_id, task_queue, workflow_type, 'pending', ?2 FROM workflows
                  WHERE workflow_id = ?1
                 ON CONFLICT(workflow_id) DO UPDATE SET state = 'pending', visible_at = ?2,
                     lease_owner = NULL, lease_expires = NULL",
                params![wf, at_ms],
            )?;
        }
        WorkflowTaskEffect::Complete => {
            exec(
                conn,
                "DELETE FROM workflow_tasks WHERE workflow_id = ?1",
                params![wf],
            )?;
        }
        WorkflowTaskEffect::Lease { owner, until_ms } => {
            exec(
                conn,
                "INSERT INTO workflow_tasks(workflow_id, task_queue, workflow_type, state, visible_at,
                     lease_owner, lease_expires)
                 SELECT workflow_id, task_queue, workflow_type, 'running', ?3, ?2, ?3 FROM workflows
                  WHERE workflow_id = ?1
                 ON CONFLICT(workflow_id) DO UPDATE SET state = 'running', lease_owner = ?2,
                     lease_expires = ?3",
                params![wf, owner, until_ms],
            )?;
        }
        WorkflowTaskEffect::Hold {
            reason,
            retry_at_ms,
        } => {
            exec(
                conn,
                "UPDATE workflow_tasks SET state = 'pending', visible_at = ?2, lease_owner = NULL,
                     lease_expires = NULL WHERE workflow_id = ?1",
                params![wf, retry_at_ms],
            )?;
            exec(
                conn,
                "UPDATE workflows SET held_reason = ?2 WHERE workflow_id = ?1",
                params![wf, reason],
            )?;
        }
    }
    Ok(())
}

/// Ends a workflow: status and result, and every task of it withdrawn; running attempts are told to
/// cancel at their next heartbeat.
fn close(conn: &Connection, wf: &str, c: &ClosedAs, now: i64) -> Result<()> {
    let result = match c {
        ClosedAs::Completed(v) => Some(to_json(v)),
        ClosedAs::Failed(e) => Some(format::encode_workflow_error(e)),
        ClosedAs::Cancelled | ClosedAs::ContinuedAsNew(_) => None,
    };
    exec(
        conn,
        "UPDATE workflows SET status = ?2, result = ?3, closed_ms = ?4, held_reason = NULL
          WHERE workflow_id = ?1",
        params![wf, c.status().as_str(), result, now],
    )?;
    for sql in [
        "DELETE FROM workflow_tasks WHERE workflow_id = ?1",
        "DELETE FROM timers WHERE workflow_id = ?1",
        "DELETE FROM activity_tasks WHERE workflow_id = ?1 AND state = 'pending'",
        "UPDATE activity_tasks SET cancel_requested = 1 WHERE workflow_id = ?1",
    ] {
        exec(conn, sql, params![wf])?;
    }
    Ok(())
}
