//! The Postgres store's transitions: each locks the workflow row and reads the facts (one round
//! trip, which begins the transaction), asks the engine, and applies its plan (one round trip,
//! which commits).

use super::apply::{
    push_existing, push_facts, push_plan, read_due_timers, read_existing, read_links, Applied, Of,
    SQL_DUE_TIMERS, SQL_LINK_CHILDREN, SQL_LINK_PARENT,
};
use super::read::{self, read_activity, ACTIVITY_COLS};
use super::{col, p, pg_error, query, Batch, PostgresStore, Tx};
use crate::engine::activity::{self as activity_engine, REAPER_LEASE_MS};
use crate::engine::child as child_engine;
use crate::engine::workflow_task as wft;
use crate::engine::{local as local_engine, start as start_engine, timer as timer_engine};
use crate::engine::{
    ActivityResolution, ClaimedActivity, ClaimedWorkflowTask, CommitOutcome, Continuation,
    ExpiredActivity, FinishOutcome, LeaseRequest, LeaseState, Plan, WorkflowTaskCommit,
};
use crate::error::{ActivityError, Error, Result, TimeoutKind};
use crate::history::format::names;
use crate::history::HistoryEvent;
use crate::store::{
    kind_parse, kind_str, now_ms, to_json, DirectClaim, ListFilter, NewSignal, NewUpdate,
    NewWorkflow, Poll, PollerRecord, QueueDepth, SignalOutcome, StatusCounts, StoreBackend,
    WorkflowDescription, WorkflowSummary,
};
use serde_json::Value;
use std::sync::OnceLock;
use tokio::sync::broadcast;
use tokio_postgres::error::SqlState;

/// A new workflow row (a duplicate id fails the statement: see `create_workflow`).
const SQL_CREATE_WORKFLOW: &str = "
INSERT INTO workflows(workflow_id, run_id, workflow_type, task_queue, status, input,
                      next_event_seq, created_ms)
VALUES ($1::TEXT, $2::TEXT, $3::TEXT, $4::TEXT, 'running', $5::TEXT, 1, $6::BIGINT)";

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

/// Due activity tasks, each locked with its workflow row, those another transaction holds skipped.
fn sql_claim_activities() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "
SELECT {ACTIVITY_COLS}, a.visible_at
  FROM activity_tasks a JOIN workflows w ON w.workflow_id = a.workflow_id
 WHERE a.state = 'pending' AND a.visible_at <= $1::BIGINT
   AND a.task_queue = ANY($2::TEXT[]) AND a.activity_type = ANY($3::TEXT[])
 ORDER BY a.visible_at, a.id
 LIMIT $4::BIGINT
   FOR UPDATE OF a, w SKIP LOCKED"
        )
    })
}

const SQL_RELEASE_HELD: &str = "
UPDATE workflow_tasks SET visible_at = $1::BIGINT
 WHERE state = 'pending'
   AND workflow_id IN (SELECT workflow_id FROM workflows WHERE held_reason IS NOT NULL)";

fn sql_claim_expired() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
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

/// Whether a local activity's outcome is already in the history.
const SQL_LOCAL_RECORDED: &str = "
SELECT 1 FROM history WHERE workflow_id = $1::TEXT AND ref_seq = $2::BIGINT
   AND event_type IN ($3::TEXT, $4::TEXT) LIMIT 1";

impl PostgresStore {
    /// Pushes the statements applying `plans` to `batch`, and a `NOTIFY` when one of them has work
    /// for others.
    fn push_plans(&self, batch: &mut Batch, plans: &[Plan]) -> Vec<Applied> {
        let applied = plans
            .iter()
            .map(|plan| push_plan(batch, plan, Some(&self.channel)))
            .collect();
        if plans.iter().any(|plan| plan.wake) {
            self.notify(batch);
        }
        applied
    }

    /// Applies `plans` and commits, in one round trip; when they have followups on other
    /// workflows (`engine::child`), those are read, decided and applied in the same transaction
    /// before the commit.
    async fn commit_plans(&self, tx: &mut Tx, plans: &mut [Plan], context: &str) -> Result<()> {
        let follow: Vec<child_engine::Followup> =
            plans.iter().flat_map(child_engine::followups).collect();
        let now = plans.first().map_or_else(now_ms, |p| p.time_ms);
        let mut batch = Batch::default();
        let applied = self.push_plans(&mut batch, plans);
        let res = tx.run(batch, follow.is_empty(), context).await?;
        for (a, plan) in applied.into_iter().zip(plans.iter_mut()) {
            a.complete(plan, &res)?;
        }
        if !follow.is_empty() {
            let mut any = false;
            for f in follow {
                any |= self.follow(tx, f, now, context).await?;
            }
            for plan in plans.iter_mut() {
                plan.woke_others = any;
            }
            tx.run(Batch::default(), true, context).await?;
        }
        Ok(())
    }

    /// One followup on another workflow: its facts read (its row locked), the engine's plan
    /// applied, and that plan's own followups, in the caller's transaction (not committed).
    fn follow<'a>(
        &'a self,
        tx: &'a mut Tx,
        f: child_engine::Followup,
        now: i64,
        context: &'a str,
    ) -> crate::definition::BoxFuture<'a, Result<bool>> {
        use child_engine::Followup;
        Box::pin(async move {
            let facts_of = |id: &str| {
                let mut batch = Batch::default();
                let q = push_facts(&mut batch, Of::Workflow(id), &[], None);
                (batch, q)
            };
            let plan = match f {
                Followup::Closed {
                    workflow_id,
                    closed,
                } => {
                    let mut batch = Batch::default();
                    let parent = batch.push(SQL_LINK_PARENT, vec![p(workflow_id.clone())]);
                    let children = batch.push(SQL_LINK_CHILDREN, vec![p(workflow_id.clone())]);
                    let res = tx.run(batch, false, context).await?;
                    let links = read_links(&res, parent, children)?;
                    let mut any = false;
                    for g in child_engine::on_close(&closed, &links, &workflow_id) {
                        any |= self.follow(tx, g, now, context).await?;
                    }
                    return Ok(any);
                }
                Followup::Deliver {
                    parent_id,
                    parent_run_id,
                    event,
                } => {
                    let (batch, q) = facts_of(&parent_id);
                    let res = tx.run(batch, false, context).await?;
                    let facts = q.workflow(&res)?;
                    child_engine::deliver(facts.as_ref(), &parent_run_id, event, now)
                }
                Followup::RequestCancel {
                    workflow_id,
                    run_id,
                } => {
                    let (batch, q) = facts_of(&workflow_id);
                    let res = tx.run(batch, false, context).await?;
                    let facts = q.workflow(&res)?;
                    child_engine::request_cancel_of(facts.as_ref(), &run_id, now)
                }
                Followup::Terminate {
                    workflow_id,
                    run_id,
                    reason,
                } => {
                    let (batch, q) = facts_of(&workflow_id);
                    let res = tx.run(batch, false, context).await?;
                    let facts = q.workflow(&res)?;
                    child_engine::terminate_of(facts.as_ref(), &run_id, &reason, now)
                }
            };
            if let Some(mut plan) = plan {
                let then = child_engine::followups(&plan);
                let mut batch = Batch::default();
                let applied = self.push_plans(&mut batch, std::slice::from_ref(&plan));
                let res = tx.run(batch, false, context).await?;
                for a in applied {
                    a.complete(&mut plan, &res)?;
                }
                for g in then {
                    self.follow(tx, g, now, context).await?;
                }
                return Ok(true);
            }
            Ok(false)
        })
    }

    /// Applies `plan` and commits, in one round trip.
    pub(super) async fn commit_plan(
        &self,
        tx: &mut Tx,
        plan: &mut Plan,
        context: &str,
    ) -> Result<()> {
        self.commit_plans(tx, std::slice::from_mut(plan), context)
            .await
    }
}

#[async_trait::async_trait]
impl StoreBackend for PostgresStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    async fn create_workflow(&self, wf: NewWorkflow) -> Result<()> {
        let ctx = "creating a workflow";
        let now = now_ms();
        let mut plan = start_engine::start(&wf, now);
        // One round trip: the row, then the plan, then the commit.
        let mut batch = Batch::default();
        batch.push(
            SQL_CREATE_WORKFLOW,
            vec![
                p(wf.workflow_id.clone()),
                p(wf.run_id.clone()),
                p(wf.workflow_type.clone()),
                p(wf.task_queue.clone()),
                p(to_json(&wf.input)),
                p(now),
            ],
        );
        let applied = self.push_plans(&mut batch, std::slice::from_ref(&plan));
        let mut tx = Tx::new(self.client().await?);
        let res = match tx.try_run(batch, true).await? {
            Ok(res) => res,
            Err(e)
                if e.code() == Some(&SqlState::UNIQUE_VIOLATION)
                    && e.as_db_error().and_then(|d| d.constraint()) == Some("workflows_pkey") =>
            {
                return Err(Error::DuplicateWorkflowId(wf.workflow_id));
            }
            Err(e) => return Err(pg_error(ctx, e)),
        };
        for a in applied {
            a.complete(&mut plan, &res)?;
        }
        Ok(())
    }

    async fn start_workflow(
        &self,
        wf: NewWorkflow,
        policy: crate::store::StartPolicy,
    ) -> Result<crate::store::StartOutcome> {
        self.start_workflow_impl(wf, policy).await
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
        read::history(&self.client().await?, workflow_id, from_seq).await
    }

    async fn commit_workflow_task(&self, c: WorkflowTaskCommit) -> Result<Option<CommitOutcome>> {
        let ctx = "committing a workflow task";
        let mut tx = Tx::new(self.client().await?);
        let targets = wft::cancel_targets(&c.commands);
        let mut batch = Batch::default();
        let query = push_facts(&mut batch, Of::Workflow(&c.workflow_id), &targets, None);
        let existing = push_existing(&mut batch, child_engine::child_ids(&c.commands));
        let res = tx.run(batch, false, ctx).await?;
        let Some(mut facts) = query.workflow(&res)? else {
            return Ok(None);
        };
        if crate::engine::continue_as_new::continues(&c.commands) {
            // The row is locked: what the next run inherits cannot change before the commit.
            let mut batch = Batch::default();
            let i = batch.push(
                super::apply::SQL_NEXT_RUN_FACTS,
                vec![
                    p(c.workflow_id.clone()),
                    p(c.processed_through as i64),
                    p(crate::history::format::messages::SIGNAL_RECEIVED),
                    p(crate::engine::timer::EXECUTION_TIMEOUT_TIMER as i64),
                ],
            );
            let res = tx.run(batch, false, ctx).await?;
            let row = res.get(i).and_then(|r| r.first()).ok_or_else(|| {
                crate::Error::database("Postgres store: the next run's facts returned no row")
            })?;
            facts.next_run = Some(super::apply::next_run_facts(row, &c.workflow_id)?);
        }
        facts.existing_ids = read_existing(&res, existing)?;
        let Some((mut plan, outcome)) = wft::commit(&facts, &c, Vec::new(), now_ms()) else {
            return Ok(None);
        };
        self.commit_plan(&mut tx, &mut plan, ctx).await?;
        Ok(Some(outcome.applied(plan)))
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
        let mut batch = Batch::default();
        let query = push_facts(&mut batch, Of::Workflow(workflow_id), &[], None);
        let res = tx.run(batch, false, ctx).await?;
        let Some(facts) = query.workflow(&res)? else {
            return Ok(());
        };
        if let Some(mut plan) = wft::hold(&facts, token, reason, retry_at_ms, now_ms()) {
            self.commit_plan(&mut tx, &mut plan, ctx).await?;
        }
        Ok(())
    }

    async fn renew_local_lease(
        &self,
        workflow_id: &str,
        token: i64,
        seen_through: u64,
        request: LeaseRequest,
    ) -> Result<LeaseState> {
        let ctx = "renewing a workflow task's lease";
        let mut tx = Tx::new(self.client().await?);
        let mut batch = Batch::default();
        let query = push_facts(
            &mut batch,
            Of::Workflow(workflow_id),
            &[],
            Some(seen_through),
        );
        let res = tx.run(batch, false, ctx).await?;
        let Some(facts) = query.workflow(&res)? else {
            return Ok(LeaseState::Lost);
        };
        let (state, plan) = local_engine::renew(&facts, token, &request, now_ms());
        if let Some(mut plan) = plan {
            self.commit_plan(&mut tx, &mut plan, ctx).await?;
        }
        Ok(state)
    }

    async fn release_held(&self) -> Result<u64> {
        let ctx = "releasing held workflows";
        let client = self.client().await?;
        let st = client
            .prepare_cached(SQL_RELEASE_HELD)
            .await
            .map_err(|e| pg_error(ctx, e))?;
        let n = client
            .execute(&st, &[&now_ms()])
            .await
            .map_err(|e| pg_error(ctx, e))?;
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
        if !read::any_due_activity(&client, now, queues, types).await? {
            return Ok(Vec::new());
        }
        let mut tx = Tx::new(client);
        let mut batch = Batch::default();
        batch.push(
            sql_claim_activities(),
            vec![p(now), p(queues.to_vec()), p(types.to_vec()), p(max as i64)],
        );
        let res = tx.run(batch, false, ctx).await?;
        let mut due = Vec::new();
        for r in res.first().map(Vec::as_slice).unwrap_or_default() {
            let (task, _) = read_activity(r)?;
            due.push((col::<i64>(r, 16)?, task));
        }
        if due.is_empty() {
            // Nothing claimed, nothing written: the transaction is rolled back when dropped.
            return Ok(Vec::new());
        }
        // A locking read can return rows out of order when some changed meanwhile.
        due.sort_by_key(|(visible_at, t)| (*visible_at, t.task_id));
        let (tasks, plans): (Vec<_>, Vec<_>) = due
            .iter()
            .map(|(_, task)| activity_engine::start_attempt(task, worker_id, now))
            .unzip();
        let mut plans = Plan::merge_appends(plans);
        self.commit_plans(&mut tx, &mut plans, ctx).await?;
        Ok(tasks)
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
        let now = now_ms();
        let client = self.client().await?;
        let rows = query(
            &client,
            sql_claim_expired(),
            &[&now, &(max as i64), &(now + REAPER_LEASE_MS)],
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
        // Recorded with the outcomes of other attempts finishing meanwhile, in one transaction.
        let (answer, rx) = tokio::sync::oneshot::channel();
        self.finishes.push(
            &self.finish_ctx(),
            super::finish::Item {
                task_id,
                token,
                resolution,
                details: heartbeat_details,
                answer,
            },
        );
        rx.await.map_err(|_| {
            Error::database(
                "Postgres store: the task recording an attempt's outcome ended without an answer",
            )
        })?
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
        let mut tx = Tx::new(self.client().await?);
        // One round trip: the workflow row of the task, then (under its lock) the task row (with
        // the workflow task's state), the activity tasks the continuation cancels, and the events
        // the worker's instance has not seen.
        let targets = wft::cancel_targets(&cont.commit.commands);
        let mut batch = Batch::default();
        let query = push_facts(
            &mut batch,
            Of::Attempt(task_id),
            &targets,
            Some(cont.delivered_through),
        );
        let existing = push_existing(&mut batch, child_engine::child_ids(&cont.commit.commands));
        let res = tx.run(batch, false, ctx).await?;
        let Some(task) = query.attempt(&res)? else {
            return Ok(wft::ContinueDecision::Fenced.outcome());
        };
        let mut facts = query.workflow(&res)?;
        if let Some(f) = facts.as_mut() {
            f.existing_ids = read_existing(&res, existing)?;
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
            self.commit_plan(&mut tx, plan, ctx).await?;
        }
        Ok(decision.outcome())
    }

    async fn record_local_activity(
        &self,
        workflow_id: &str,
        activity_seq: u64,
        result: Result<Value, ActivityError>,
    ) -> Result<bool> {
        let ctx = "recording a local activity";
        let mut tx = Tx::new(self.client().await?);
        let mut batch = Batch::default();
        let query = push_facts(&mut batch, Of::Workflow(workflow_id), &[], None);
        let recorded = batch.push(
            SQL_LOCAL_RECORDED,
            vec![
                p(workflow_id.to_string()),
                p(activity_seq as i64),
                p(names::LOCAL_ACTIVITY_MARKER),
                p(names::ACTIVITY_CANCELLED),
            ],
        );
        let res = tx.run(batch, false, ctx).await?;
        let Some(facts) = query.workflow(&res)? else {
            return Ok(false);
        };
        let recorded = res.get(recorded).is_some_and(|r| !r.is_empty());
        match local_engine::record(&facts, recorded, activity_seq, result, now_ms()) {
            Some(mut plan) => {
                self.commit_plan(&mut tx, &mut plan, ctx).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn fire_due_timers(&self, max: usize) -> Result<usize> {
        let ctx = "firing timers";
        let now = now_ms();
        let client = self.client().await?;
        if !read::any_due_timer(&client, now).await? {
            return Ok(0);
        }
        let mut tx = Tx::new(client);
        let mut batch = Batch::default();
        batch.push(SQL_DUE_TIMERS, vec![p(now), p(max as i64)]);
        let res = tx.run(batch, false, ctx).await?;
        let (due, mut workflows) =
            read_due_timers(res.first().map(Vec::as_slice).unwrap_or_default())?;
        if due.is_empty() {
            return Ok(0);
        }
        let mut plans = Vec::with_capacity(due.len());
        for (wf, seq) in &due {
            let mut facts = workflows.get_mut(wf);
            let plan = timer_engine::fire(wf, facts.as_deref(), *seq, now);
            // A later timer of the same workflow is decided on the facts this plan leaves.
            if let Some(f) = facts.as_mut() {
                f.advance(&plan);
            }
            plans.push(plan);
        }
        self.commit_plans(&mut tx, &mut plans, ctx).await?;
        Ok(due.len())
    }

    async fn next_due_ms(
        &self,
        queues: &[String],
        workflow_types: &[String],
        activity_types: &[String],
    ) -> Result<Option<i64>> {
        let client = self.client().await?;
        read::next_due(&client, queues, workflow_types, activity_types).await
    }

    async fn request_cancel_workflow(&self, workflow_id: &str) -> Result<bool> {
        // Recorded with the other requests made meanwhile, in one transaction.
        let (answer, rx) = tokio::sync::oneshot::channel();
        self.cancels.push(
            &self.finish_ctx(),
            super::finish::CancelItem {
                workflow_id: workflow_id.to_string(),
                answer,
            },
        );
        rx.await.map_err(|_| {
            Error::database(
                "Postgres store: the task recording a cancel request ended without an answer",
            )
        })?
    }

    async fn signal_workflow(
        &self,
        workflow_id: &str,
        signal: NewSignal,
        direct: Option<DirectClaim>,
    ) -> Result<SignalOutcome> {
        self.signal_impl(workflow_id, signal, direct).await
    }

    async fn signal_with_start(&self, wf: NewWorkflow, signal: NewSignal) -> Result<bool> {
        self.signal_with_start_impl(wf, signal).await
    }

    async fn create_schedule(&self, plan: crate::store::SchedulePlan) -> Result<()> {
        self.create_schedule_impl(plan).await
    }

    async fn read_schedule(
        &self,
        schedule_id: &str,
    ) -> Result<Option<crate::schedule::ScheduleDescription>> {
        self.read_schedule_impl(schedule_id).await
    }

    async fn list_schedules(&self) -> Result<Vec<crate::schedule::ScheduleDescription>> {
        self.list_schedules_impl().await
    }

    async fn change_schedule(
        &self,
        schedule_id: &str,
        change: crate::store::ScheduleChange,
    ) -> Result<Option<crate::schedule::Triggered>> {
        self.change_schedule_impl(schedule_id, change).await
    }

    async fn fire_due_schedules(&self, max: usize) -> Result<usize> {
        self.fire_due_schedules_impl(max).await
    }

    async fn next_schedule_due_ms(&self) -> Result<Option<i64>> {
        self.next_schedule_due_ms_impl().await
    }

    async fn accept_update(&self, workflow_id: &str, update: NewUpdate) -> Result<Option<u64>> {
        self.accept_update_impl(workflow_id, update).await
    }

    async fn reset_workflow(
        &self,
        workflow_id: &str,
        request: crate::engine::reset::ResetRequest,
    ) -> Result<()> {
        let ctx = "resetting a workflow";
        let mut tx = Tx::new(self.client().await?);
        let mut batch = Batch::default();
        let query = push_facts(&mut batch, Of::Workflow(workflow_id), &[], None);
        let res = tx.run(batch, false, ctx).await?;
        let facts = query
            .workflow(&res)?
            .ok_or_else(|| Error::WorkflowNotFound(workflow_id.to_string()))?;
        // The row is locked: the history and the deadline read next are the ones reset.
        let mut batch = Batch::default();
        let h = batch.push(
            read::SQL_READ_HISTORY,
            vec![p(workflow_id.to_string()), p(1i64)],
        );
        let n = batch.push(
            super::apply::SQL_NEXT_RUN_FACTS,
            vec![
                p(workflow_id.to_string()),
                p(i64::MAX),
                p(crate::history::format::messages::SIGNAL_RECEIVED),
                p(crate::engine::timer::EXECUTION_TIMEOUT_TIMER as i64),
            ],
        );
        let res = tx.run(batch, false, ctx).await?;
        let history = read::events(
            res.get(h).map(Vec::as_slice).unwrap_or_default(),
            workflow_id,
        )?;
        let deadline = match res.get(n).and_then(|r| r.first()) {
            Some(row) => super::apply::next_run_facts(row, workflow_id)?.execution_deadline_ms,
            None => None,
        };
        let mut plan = crate::engine::reset::reset(&facts, &history, deadline, &request, now_ms())?;
        self.commit_plan(&mut tx, &mut plan, ctx).await
    }

    async fn terminate_workflow(&self, workflow_id: &str, reason: &str) -> Result<bool> {
        let ctx = "terminating a workflow";
        let mut tx = Tx::new(self.client().await?);
        let mut batch = Batch::default();
        let query = push_facts(&mut batch, Of::Workflow(workflow_id), &[], None);
        let res = tx.run(batch, false, ctx).await?;
        let facts = query
            .workflow(&res)?
            .ok_or_else(|| Error::WorkflowNotFound(workflow_id.to_string()))?;
        match crate::engine::terminate::terminate(&facts, reason, now_ms()) {
            Some(mut plan) => {
                self.commit_plan(&mut tx, &mut plan, ctx).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn earlier_runs(&self, workflow_id: &str) -> Result<Vec<crate::store::RunSummary>> {
        read::runs(&self.client().await?, workflow_id).await
    }

    async fn earlier_run_history(
        &self,
        workflow_id: &str,
        run_id: &str,
    ) -> Result<Vec<HistoryEvent>> {
        read::run_history(&self.client().await?, workflow_id, run_id).await
    }

    async fn describe(&self, workflow_id: &str) -> Result<Option<WorkflowDescription>> {
        read::describe(self.client().await?, workflow_id).await
    }

    async fn list(&self, filter: &ListFilter) -> Result<Vec<WorkflowSummary>> {
        read::list(&self.client().await?, filter).await
    }

    async fn count_by_status(&self, filter: &ListFilter) -> Result<StatusCounts> {
        read::count_by_status(&self.client().await?, filter).await
    }

    async fn record_polls(&self, worker_id: &str, polls: &[Poll], now: i64) -> Result<()> {
        read::record_polls(&self.client().await?, worker_id, polls, now).await
    }

    async fn pollers(&self, task_queue: &str) -> Result<Vec<PollerRecord>> {
        read::pollers(&self.client().await?, task_queue).await
    }

    async fn queue_depth(&self, queues: &[String], now: i64) -> Result<QueueDepth> {
        read::queue_depth(&self.client().await?, queues, now).await
    }

    fn external_wakeups(&self) -> Option<broadcast::Receiver<()>> {
        Some(self.wake_tx.subscribe())
    }

    fn attach_hub(&self, hub: std::sync::Weak<crate::store::LocalHub>) {
        let _ = self.hub.set(hub);
    }

    fn query_asks(&self) -> Option<broadcast::Receiver<crate::store::ask::QueryAsk>> {
        Some(self.query_asks_impl())
    }

    async fn ask_query(
        &self,
        workflow_id: &str,
        name: &str,
        input: &Value,
        wait: std::time::Duration,
    ) -> Result<Option<crate::store::ask::QueryReply>> {
        self.ask_query_impl(workflow_id, name, input, wait).await
    }

    async fn reply_query(
        &self,
        to: &crate::store::ask::QueryAsk,
        reply: crate::store::ask::QueryReply,
    ) -> Result<()> {
        self.reply_query_impl(to, reply).await
    }
}
