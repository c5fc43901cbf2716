//! The SQLite store's transitions: each reads the facts, asks the engine, applies its plan, in one
//! job of the writer thread (one savepoint of a group commit).

use super::apply::{apply, attempt_facts, existing_ids, workflow_facts};
use super::now_ms;
use super::read::{self, read_activity, ACTIVITY_COLS};
use super::{exec, qrow, SqliteStore};
use crate::engine::activity::{self as activity_engine, REAPER_LEASE_MS};
use crate::engine::cancel as cancel_engine;
use crate::engine::child as child_engine;
use crate::engine::workflow_task as wft;
use crate::engine::{local as local_engine, timer as timer_engine};
use crate::engine::{
    ActivityResolution, ClaimedActivity, ClaimedWorkflowTask, CommitOutcome, Continuation,
    ExpiredActivity, FinishOutcome, LeaseRequest, LeaseState, Plan, WorkflowTaskCommit,
};
use crate::error::{ActivityError, Error, Result, TimeoutKind};
use crate::history::format::names;
use crate::history::HistoryEvent;
use crate::store::{
    kind_parse, kind_str, to_json, DirectClaim, ListFilter, NewSignal, NewUpdate, NewWorkflow,
    Poll, PollerRecord, QueueDepth, SignalOutcome, StatusCounts, StoreBackend, WorkflowDescription,
    WorkflowSummary,
};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

fn json_list(items: &[String]) -> String {
    to_json(&items)
}

/// Claims due activity tasks (of one workflow for an eager claim, else of the queues), each
/// started by the engine's plan.
fn claim_activities(
    conn: &Connection,
    worker_id: &str,
    queues: &str,
    types: &str,
    max: usize,
    now: i64,
) -> Result<Vec<ClaimedActivity>> {
    let ids: Vec<i64> = {
        let mut st = conn.prepare_cached(
            "SELECT id FROM activity_tasks
             WHERE state = 'pending' AND visible_at <= ?1
               AND task_queue IN (SELECT value FROM json_each(?2))
               AND activity_type IN (SELECT value FROM json_each(?3))
             ORDER BY visible_at, id LIMIT ?4",
        )?;
        let rows = st.query_map(params![now, queues, types, max as i64], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut out = Vec::with_capacity(ids.len());
    let mut plans = Vec::with_capacity(ids.len());
    for id in ids {
        let (task, _) = qrow(
            conn,
            &format!("SELECT {ACTIVITY_COLS} FROM activity_tasks WHERE id = ?1"),
            params![id],
            read_activity,
        )?;
        let (task, plan) = activity_engine::start_attempt(&task, worker_id, now);
        plans.push(plan);
        out.push(task);
    }
    for mut plan in Plan::merge_appends(plans) {
        apply(conn, &mut plan)?;
    }
    Ok(out)
}

fn missing(workflow_id: &str) -> Error {
    Error::WorkflowNotFound(workflow_id.to_string())
}

#[async_trait::async_trait]
impl StoreBackend for SqliteStore {
    fn kind(&self) -> &'static str {
        self.kind
    }

    async fn create_workflow(&self, wf: NewWorkflow) -> Result<()> {
        self.call(move |conn| {
            if !super::messages::create(conn, &wf, now_ms())? {
                return Err(Error::DuplicateWorkflowId(wf.workflow_id));
            }
            Ok(())
        })
        .await
    }

    async fn start_workflow(
        &self,
        wf: NewWorkflow,
        policy: crate::store::StartPolicy,
    ) -> Result<crate::store::StartOutcome> {
        self.call(move |conn| super::messages::start(conn, &wf, policy, now_ms()))
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
                    params![id, worker_id, now.saturating_add(lease_ms)],
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
        self.call(move |conn| read::history(conn, &workflow_id, from_seq))
            .await
    }

    async fn commit_workflow_task(&self, c: WorkflowTaskCommit) -> Result<Option<CommitOutcome>> {
        self.call(move |conn| {
            let targets = wft::cancel_targets(&c.commands);
            let Some(mut facts) = workflow_facts(conn, &c.workflow_id, &targets, None)? else {
                return Ok(None);
            };
            if crate::engine::continue_as_new::continues(&c.commands) {
                facts.next_run = Some(super::apply::next_run_facts(
                    conn,
                    &c.workflow_id,
                    c.processed_through,
                )?);
            }
            facts.existing_ids = existing_ids(conn, &child_engine::child_ids(&c.commands))?;
            let Some((mut plan, outcome)) = wft::commit(&facts, &c, Vec::new(), now_ms()) else {
                return Ok(None);
            };
            apply(conn, &mut plan)?;
            Ok(Some(outcome.applied(plan)))
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
            let Some(facts) = workflow_facts(conn, &workflow_id, &[], None)? else {
                return Ok(());
            };
            if let Some(mut plan) = wft::hold(&facts, token, &reason, retry_at_ms, now_ms()) {
                apply(conn, &mut plan)?;
            }
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
        self.call(move |conn| claim_activities(conn, &worker_id, &queues, &types, max, now_ms()))
            .await
    }

    async fn renew_worker_lease(
        &self,
        worker_id: &str,
        process: &str,
        lease_ms: i64,
    ) -> Result<()> {
        self.renew_lease(worker_id, process, lease_ms).await
    }

    async fn end_worker_lease(&self, worker_id: &str) -> Result<()> {
        self.end_lease(worker_id).await
    }

    async fn worker_leases(&self, except_worker: &str) -> Result<Vec<crate::store::WorkerLease>> {
        self.leases(except_worker).await
    }

    async fn claim_lost_attempts(
        &self,
        worker_id: &str,
        lease_expires_ms: i64,
        max: usize,
    ) -> Result<Vec<ClaimedActivity>> {
        self.claim_lost(worker_id, lease_expires_ms, max).await
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
                let kind = kind_parse(kind.as_deref())?;
                task.token += 1;
                // Should this reaper die before it resolves the task, another one takes it later.
                exec(
                    conn,
                    "UPDATE activity_tasks SET token = ?2, deadline_ms = ?3 WHERE id = ?1",
                    params![task.task_id, task.token, now + REAPER_LEASE_MS],
                )?;
                out.push(ExpiredActivity { task, kind });
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
            let Some(task) = attempt_facts(conn, task_id)? else {
                return Ok(false);
            };
            let workflow = workflow_facts(conn, &task.workflow_id, &[], None)?;
            let mut decision = activity_engine::finish(
                &task,
                token,
                resolution,
                heartbeat_details,
                workflow.as_ref(),
                true,
                now_ms(),
            )?;
            if let Some(plan) = decision.plan_mut() {
                apply(conn, plan)?;
            }
            Ok(decision.recorded())
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
            let Some(task) = attempt_facts(conn, task_id)? else {
                return Ok(wft::ContinueDecision::Fenced.outcome());
            };
            let targets = wft::cancel_targets(&cont.commit.commands);
            let mut facts = workflow_facts(
                conn,
                &task.workflow_id,
                &targets,
                Some(cont.delivered_through),
            )?;
            if let Some(f) = facts.as_mut() {
                f.existing_ids =
                    existing_ids(conn, &child_engine::child_ids(&cont.commit.commands))?;
            }
            let mut decision = wft::finish_and_continue(
                &task,
                facts.as_ref(),
                token,
                resolution,
                heartbeat_details,
                &cont,
                now_ms(),
            )?;
            if let Some(plan) = decision.plan_mut() {
                apply(conn, plan)?;
            }
            Ok(decision.outcome())
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
            let Some(facts) = workflow_facts(conn, &workflow_id, &[], None)? else {
                return Ok(false);
            };
            let recorded: bool = qrow(
                conn,
                "SELECT 1 FROM history WHERE workflow_id = ?1 AND ref_seq = ?2
                       AND event_type IN (?3, ?4)",
                params![
                    workflow_id,
                    activity_seq as i64,
                    names::LOCAL_ACTIVITY_MARKER,
                    names::ACTIVITY_CANCELLED
                ],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
            match local_engine::record(&facts, recorded, activity_seq, result, now_ms()) {
                Some(mut plan) => {
                    apply(conn, &mut plan)?;
                    Ok(true)
                }
                None => Ok(false),
            }
        })
        .await
    }

    async fn renew_local_lease(
        &self,
        workflow_id: &str,
        token: i64,
        seen_through: u64,
        request: LeaseRequest,
    ) -> Result<LeaseState> {
        let workflow_id = workflow_id.to_string();
        self.call(move |conn| {
            let Some(facts) = workflow_facts(conn, &workflow_id, &[], Some(seen_through))? else {
                return Ok(LeaseState::Lost);
            };
            let (state, plan) = local_engine::renew(&facts, token, &request, now_ms());
            if let Some(mut plan) = plan {
                apply(conn, &mut plan)?;
            }
            Ok(state)
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
                let facts = workflow_facts(conn, wf, &[], None)?;
                let mut plan = timer_engine::fire(wf, facts.as_ref(), *seq as u64, now);
                apply(conn, &mut plan)?;
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
        self.call(move |conn| read::next_due(conn, &queues, &wtypes, &atypes))
            .await
    }

    async fn request_cancel_workflow(&self, workflow_id: &str) -> Result<bool> {
        let workflow_id = workflow_id.to_string();
        self.call(move |conn| {
            let facts = workflow_facts(conn, &workflow_id, &[], None)?
                .ok_or_else(|| missing(&workflow_id))?;
            let mut decision = cancel_engine::request(&facts, now_ms());
            if let Some(plan) = decision.plan_mut() {
                apply(conn, plan)?;
            }
            Ok(decision.accepted())
        })
        .await
    }

    async fn signal_workflow(
        &self,
        workflow_id: &str,
        signal: NewSignal,
        direct: Option<DirectClaim>,
    ) -> Result<SignalOutcome> {
        let workflow_id = workflow_id.to_string();
        self.call(move |conn| super::messages::signal(conn, &workflow_id, &signal, direct.as_ref()))
            .await
    }

    async fn signal_with_start(&self, wf: NewWorkflow, signal: NewSignal) -> Result<bool> {
        self.call(move |conn| super::messages::signal_with_start(conn, &wf, &signal))
            .await
    }

    async fn accept_update(&self, workflow_id: &str, update: NewUpdate) -> Result<Option<u64>> {
        let workflow_id = workflow_id.to_string();
        self.call(move |conn| super::messages::accept_update(conn, &workflow_id, &update))
            .await
    }

    async fn reset_workflow(
        &self,
        workflow_id: &str,
        request: crate::engine::reset::ResetRequest,
    ) -> Result<()> {
        let workflow_id = workflow_id.to_string();
        self.call(move |conn| {
            let facts = workflow_facts(conn, &workflow_id, &[], None)?
                .ok_or_else(|| missing(&workflow_id))?;
            let history = read::history(conn, &workflow_id, 1)?;
            let deadline = super::apply::next_run_facts(conn, &workflow_id, u64::MAX >> 1)?
                .execution_deadline_ms;
            let mut plan =
                crate::engine::reset::reset(&facts, &history, deadline, &request, now_ms())?;
            apply(conn, &mut plan)
        })
        .await
    }

    async fn terminate_workflow(&self, workflow_id: &str, reason: &str) -> Result<bool> {
        let (workflow_id, reason) = (workflow_id.to_string(), reason.to_string());
        self.call(move |conn| {
            let facts = workflow_facts(conn, &workflow_id, &[], None)?
                .ok_or_else(|| missing(&workflow_id))?;
            match crate::engine::terminate::terminate(&facts, &reason, now_ms()) {
                Some(mut plan) => apply(conn, &mut plan).map(|_| true),
                None => Ok(false),
            }
        })
        .await
    }

    async fn earlier_runs(&self, workflow_id: &str) -> Result<Vec<crate::store::RunSummary>> {
        let workflow_id = workflow_id.to_string();
        self.call(move |conn| read::runs(conn, &workflow_id)).await
    }

    async fn earlier_run_history(
        &self,
        workflow_id: &str,
        run_id: &str,
    ) -> Result<Vec<HistoryEvent>> {
        let (workflow_id, run_id) = (workflow_id.to_string(), run_id.to_string());
        self.call(move |conn| read::run_history(conn, &workflow_id, &run_id))
            .await
    }

    async fn describe(&self, workflow_id: &str) -> Result<Option<WorkflowDescription>> {
        let workflow_id = workflow_id.to_string();
        self.call(move |conn| read::describe(conn, workflow_id))
            .await
    }

    async fn record_polls(&self, worker_id: &str, polls: &[Poll], now: i64) -> Result<()> {
        let worker_id = worker_id.to_string();
        let polls = polls.to_vec();
        self.call(move |conn| {
            let mut st = conn.prepare_cached(
                "INSERT INTO pollers(task_queue, kind, type_name, worker_id, last_poll_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(task_queue, kind, type_name) DO UPDATE
                    SET worker_id = excluded.worker_id, last_poll_ms = excluded.last_poll_ms",
            )?;
            for p in &polls {
                st.execute(params![
                    p.task_queue,
                    p.kind.as_str(),
                    p.type_name,
                    worker_id,
                    now
                ])?;
            }
            Ok(())
        })
        .await
    }

    async fn pollers(&self, task_queue: &str) -> Result<Vec<PollerRecord>> {
        let task_queue = task_queue.to_string();
        self.call(move |conn| read::pollers(conn, &task_queue))
            .await
    }

    async fn queue_depth(&self, queues: &[String], now: i64) -> Result<QueueDepth> {
        let queues = json_list(queues);
        self.call(move |conn| read::queue_depth(conn, &queues, now))
            .await
    }

    async fn list(&self, filter: &ListFilter) -> Result<Vec<WorkflowSummary>> {
        let filter = filter.clone();
        self.call(move |conn| read::list(conn, &filter)).await
    }

    async fn count_by_status(&self, filter: &ListFilter) -> Result<StatusCounts> {
        let filter = filter.clone();
        self.call(move |conn| read::count_by_status(conn, &filter))
            .await
    }

    async fn create_schedule(&self, plan: crate::store::SchedulePlan) -> Result<()> {
        self.call(move |conn| super::schedules::create(conn, &plan))
            .await
    }

    async fn read_schedule(
        &self,
        schedule_id: &str,
    ) -> Result<Option<crate::schedule::ScheduleDescription>> {
        let id = schedule_id.to_string();
        self.call(move |conn| super::schedules::read(conn, &id))
            .await
    }

    async fn list_schedules(&self) -> Result<Vec<crate::schedule::ScheduleDescription>> {
        self.call(super::schedules::list).await
    }

    async fn change_schedule(
        &self,
        schedule_id: &str,
        change: crate::store::ScheduleChange,
    ) -> Result<Option<crate::schedule::Triggered>> {
        let id = schedule_id.to_string();
        self.call(move |conn| super::schedules::change(conn, &id, &change))
            .await
    }

    async fn fire_due_schedules(&self, max: usize) -> Result<usize> {
        self.call(move |conn| super::schedules::fire_due(conn, max))
            .await
    }

    async fn next_schedule_due_ms(&self) -> Result<Option<i64>> {
        self.call(super::schedules::next_due).await
    }
}
