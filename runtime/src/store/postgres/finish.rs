//! Attempt outcomes and cancel requests recorded together: concurrent `finish_activity` calls of one store handle
//! (the attempts of a fan-out finishing at once, or of many workflows) share one transaction, one
//! commit and two round trips, instead of one transaction each, serialized on their workflow's
//! row lock. Likewise concurrent `request_cancel_workflow` calls (a client waking many
//! workflows at once).
//!
//! Nothing is decided here: each outcome is decided by the engine (`engine::activity::finish`)
//! on the facts read under the locks, as alone; outcomes of one workflow are decided in order,
//! each on the facts the plans before it leave (`WorkflowFacts::advance`). The workflow rows are
//! locked first, all in one statement, in workflow id order, so two such transactions (in two
//! processes) cannot deadlock, and every other transaction locks at most one workflow row. If
//! the shared transaction fails, every outcome in it is recorded again alone, and gets its own
//! answer.

use super::apply::{push_facts, push_plan, Of};
use super::{p, Batch, Tx};
use crate::engine::activity as activity_engine;
use crate::engine::cancel as cancel_engine;
use crate::engine::ActivityResolution;
use crate::error::{Error, Result};
use crate::store::now_ms;
use deadpool_postgres::Pool;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// The most outcomes one transaction records.
const MAX_BATCH: usize = 128;

/// Locks the workflow rows of these activity tasks, in workflow id order.
const SQL_LOCK_WORKFLOWS_OF_TASKS: &str = "
SELECT workflow_id FROM workflows
 WHERE workflow_id IN (SELECT workflow_id FROM activity_tasks WHERE id = ANY($1::BIGINT[]))
 ORDER BY workflow_id
   FOR UPDATE";

/// One attempt's outcome, waiting to be recorded.
pub(super) struct Item {
    pub task_id: i64,
    pub token: i64,
    pub resolution: ActivityResolution,
    pub details: Option<Value>,
    pub answer: oneshot::Sender<Result<bool>>,
}

/// A client's cancel request, waiting to be recorded.
pub(super) struct CancelItem {
    pub workflow_id: String,
    pub answer: oneshot::Sender<Result<bool>>,
}

/// What a transaction recording outcomes needs of the store.
#[derive(Clone)]
pub(super) struct Ctx {
    pub pool: Pool,
    pub channel: String,
    pub instance: String,
}

/// Something recorded with others of its kind in one transaction.
pub(super) trait Grouped: Send + Sized + 'static {
    /// Two items with one key never share a transaction (the second waits for the next one).
    type Key: std::hash::Hash + Eq;
    fn key(&self) -> Self::Key;
    /// Records `items` together, answering each.
    fn record(ctx: Ctx, items: Vec<Self>) -> futures::future::BoxFuture<'static, ()>;
}

impl Grouped for Item {
    type Key = i64;
    fn key(&self) -> i64 {
        self.task_id
    }
    fn record(ctx: Ctx, items: Vec<Self>) -> futures::future::BoxFuture<'static, ()> {
        Box::pin(async move { record(&ctx, items).await })
    }
}

impl Grouped for CancelItem {
    type Key = String;
    fn key(&self) -> String {
        self.workflow_id.clone()
    }
    fn record(ctx: Ctx, items: Vec<Self>) -> futures::future::BoxFuture<'static, ()> {
        Box::pin(async move { record_cancels(&ctx, items).await })
    }
}

/// The items waiting, and whether a task is recording them.
pub(super) struct Queue<I> {
    state: Mutex<(Vec<I>, bool)>,
}

impl<I> Default for Queue<I> {
    fn default() -> Self {
        Queue {
            state: Mutex::new((Vec::new(), false)),
        }
    }
}

impl<I: Grouped> Queue<I> {
    /// Queues `item`; starts a task recording the queue unless one runs.
    pub(super) fn push(self: &Arc<Self>, ctx: &Ctx, item: I) {
        let start = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.0.push(item);
            !std::mem::replace(&mut st.1, true)
        };
        if start {
            tokio::spawn(self.clone().drain(ctx.clone()));
        }
    }

    /// Records the queued items, a batch per transaction, until none is left.
    async fn drain(self: Arc<Self>, ctx: Ctx) {
        loop {
            let items = {
                let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                if st.0.is_empty() {
                    st.1 = false;
                    return;
                }
                take_batch(&mut st.0)
            };
            I::record(ctx.clone(), items).await;
        }
    }
}

/// Up to [`MAX_BATCH`] items, at most one per key (a second outcome of one task, a retry after
/// a lost answer, waits for the next batch, so it is decided on what the first one wrote).
fn take_batch<I: Grouped>(queue: &mut Vec<I>) -> Vec<I> {
    let mut seen = std::collections::HashSet::new();
    let mut taken = Vec::new();
    let mut kept = Vec::new();
    for item in queue.drain(..) {
        if taken.len() < MAX_BATCH && seen.insert(item.key()) {
            taken.push(item);
        } else {
            kept.push(item);
        }
    }
    *queue = kept;
    taken
}

/// Records `items` in one transaction; if it fails, each alone.
async fn record(ctx: &Ctx, items: Vec<Item>) {
    if items.len() == 1 {
        let answer = record_together(ctx, &items).await.map(|mut r| r.remove(0));
        if let Some(item) = items.into_iter().next() {
            let _ = item.answer.send(answer);
        }
        return;
    }
    match record_together(ctx, &items).await {
        Ok(recorded) => {
            for (item, r) in items.into_iter().zip(recorded) {
                let _ = item.answer.send(Ok(r));
            }
        }
        Err(e) => {
            tracing::debug!(error = %e, n = items.len(), "recording attempt outcomes together failed; recording each alone");
            for item in items {
                let answer = record_together(ctx, std::slice::from_ref(&item))
                    .await
                    .map(|mut r| r.remove(0));
                let _ = item.answer.send(answer);
            }
        }
    }
}

/// One transaction: lock, read the facts of every item, decide each, apply every plan, commit.
/// Whether each item's outcome was recorded (false: fenced).
async fn record_together(ctx: &Ctx, items: &[Item]) -> Result<Vec<bool>> {
    let what = "finishing an activity";
    let client = ctx.pool.get().await.map_err(|e| {
        Error::database_from(format!("Postgres store: cannot get a connection: {e}"), e)
    })?;
    let mut tx = Tx::new(client);
    let mut batch = Batch::default();
    if items.len() > 1 {
        let ids: Vec<i64> = items.iter().map(|i| i.task_id).collect();
        batch.push(SQL_LOCK_WORKFLOWS_OF_TASKS, vec![p(ids)]);
    }
    let queries: Vec<_> = items
        .iter()
        .map(|i| push_facts(&mut batch, Of::Attempt(i.task_id), &[], None))
        .collect();
    let res = tx.run(batch, false, what).await?;
    let now = now_ms();
    let mut facts_now = HashMap::new();
    let mut plans = Vec::new();
    let mut recorded = Vec::with_capacity(items.len());
    for (item, q) in items.iter().zip(&queries) {
        let Some(task) = q.attempt(&res)? else {
            recorded.push(false);
            continue;
        };
        let workflow = match q.workflow(&res)? {
            Some(read) => Some(
                facts_now
                    .entry(read.workflow_id.clone())
                    .or_insert(read)
                    .clone(),
            ),
            None => None,
        };
        let mut decision = activity_engine::finish(
            &task,
            item.token,
            item.resolution.clone(),
            item.details.clone(),
            workflow.as_ref(),
            true,
            now,
        )?;
        recorded.push(decision.recorded());
        if let Some(plan) = decision.plan_mut() {
            if let Some(f) = facts_now.get_mut(&plan.workflow_id) {
                f.advance(plan);
            }
            plans.push(plan.clone());
        }
    }
    if plans.is_empty() {
        // Nothing to write: the transaction is rolled back when dropped.
        return Ok(recorded);
    }
    let mut batch = Batch::default();
    let applied: Vec<_> = plans
        .iter()
        .map(|plan| push_plan(&mut batch, plan, Some(&ctx.channel)))
        .collect();
    if plans.iter().any(|plan| plan.wake) {
        batch.wake = Some((ctx.channel.clone(), ctx.instance.clone()));
    }
    let res = tx.run(batch, true, what).await?;
    for (a, plan) in applied.into_iter().zip(plans.iter_mut()) {
        a.complete(plan, &res)?;
    }
    Ok(recorded)
}

/// Locks these workflow rows, in id order.
const SQL_LOCK_WORKFLOWS: &str = "
SELECT workflow_id FROM workflows WHERE workflow_id = ANY($1::TEXT[]) ORDER BY workflow_id FOR UPDATE";

/// Records cancel requests in one transaction; if it fails, each alone.
async fn record_cancels(ctx: &Ctx, items: Vec<CancelItem>) {
    if items.len() > 1 {
        match cancels_together(ctx, &items).await {
            Ok(accepted) => {
                for (item, r) in items.into_iter().zip(accepted) {
                    let _ = item.answer.send(r);
                }
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, n = items.len(), "recording cancel requests together failed; recording each alone");
            }
        }
    }
    for item in items {
        let answer = cancels_together(ctx, std::slice::from_ref(&item))
            .await
            .and_then(|mut r| r.remove(0));
        let _ = item.answer.send(answer);
    }
}

/// One transaction: lock the workflow rows, read their facts, decide each request
/// (`engine::cancel::request`), apply the plans, commit. Each request's answer: accepted, or
/// not (the workflow ended), or the workflow is unknown.
async fn cancels_together(ctx: &Ctx, items: &[CancelItem]) -> Result<Vec<Result<bool>>> {
    let what = "requesting a cancel";
    let client = ctx.pool.get().await.map_err(|e| {
        Error::database_from(format!("Postgres store: cannot get a connection: {e}"), e)
    })?;
    let mut tx = Tx::new(client);
    let mut batch = Batch::default();
    if items.len() > 1 {
        let ids: Vec<String> = items.iter().map(|i| i.workflow_id.clone()).collect();
        batch.push(SQL_LOCK_WORKFLOWS, vec![p(ids)]);
    }
    let queries: Vec<_> = items
        .iter()
        .map(|i| push_facts(&mut batch, Of::Workflow(&i.workflow_id), &[], None))
        .collect();
    let res = tx.run(batch, false, what).await?;
    let now = now_ms();
    let mut plans = Vec::new();
    let mut answers = Vec::with_capacity(items.len());
    for (item, q) in items.iter().zip(&queries) {
        let Some(facts) = q.workflow(&res)? else {
            answers.push(Err(Error::WorkflowNotFound(item.workflow_id.clone())));
            continue;
        };
        let mut decision = cancel_engine::request(&facts, now);
        answers.push(Ok(decision.accepted()));
        if let Some(plan) = decision.plan_mut() {
            plans.push(plan.clone());
        }
    }
    if plans.is_empty() {
        return Ok(answers);
    }
    let mut batch = Batch::default();
    let applied: Vec<_> = plans
        .iter()
        .map(|plan| push_plan(&mut batch, plan, Some(&ctx.channel)))
        .collect();
    if plans.iter().any(|plan| plan.wake) {
        batch.wake = Some((ctx.channel.clone(), ctx.instance.clone()));
    }
    let res = tx.run(batch, true, what).await?;
    for (a, plan) in applied.into_iter().zip(plans.iter_mut()) {
        a.complete(plan, &res)?;
    }
    Ok(answers)
}
