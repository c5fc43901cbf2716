//! The Postgres store's message transitions: signals, signal-with-start, accepted updates. Each
//! locks the workflow row with its facts, asks the engine (`engine::signal`, `engine::update`),
//! and applies its plan, in one transaction.

use super::apply::{push_facts, push_plan, Of};
use super::{col, p, Batch, PostgresStore, Tx};
use crate::engine::signal::{self as signal_engine, DirectClaim, NewSignal};
use crate::engine::start as start_engine;
use crate::engine::update::{self as update_engine, NewUpdate};
use crate::error::{Error, Result};
use crate::history::format;
use crate::store::{closed, now_ms, to_json, NewWorkflow, SignalOutcome};
use tokio_postgres::Row;

/// The signals of a workflow whose request id hashes to `$2` (compared exactly afterwards).
const SQL_SIGNAL_RECORDED: &str = "
SELECT seq, payload FROM history WHERE workflow_id = $1::TEXT AND ref_seq = $2::BIGINT
   AND event_type = 'signal_received'";

/// A new workflow row, unless the id exists (`signal_with_start`).
const SQL_CREATE_IF_ABSENT: &str = "
INSERT INTO workflows(workflow_id, run_id, workflow_type, task_queue, status, input,
                      next_event_seq, created_ms)
VALUES ($1::TEXT, $2::TEXT, $3::TEXT, $4::TEXT, 'running', $5::TEXT, 1, $6::BIGINT)
ON CONFLICT (workflow_id) DO NOTHING
RETURNING 1";

fn signal_recorded(rows: &[Row], workflow_id: &str, request_id: &str) -> Result<bool> {
    let candidates = rows.iter().map(|r| Ok((col(r, 0)?, col(r, 1)?)));
    crate::store::signal_among(candidates, workflow_id, request_id)
}

impl PostgresStore {
    /// Reads the facts and the duplicate check of a signal in `tx`, decides, and commits.
    async fn record_signal(
        &self,
        tx: &mut Tx,
        workflow_id: &str,
        signal: &NewSignal,
        direct: Option<&DirectClaim>,
        ctx: &str,
    ) -> Result<SignalOutcome> {
        let mut batch = Batch::default();
        let query = push_facts(&mut batch, Of::Workflow(workflow_id), &[], None);
        let dup = batch.push(
            SQL_SIGNAL_RECORDED,
            vec![
                p(workflow_id.to_string()),
                p(format::messages::id_ref(&signal.request_id)),
            ],
        );
        let res = tx.run(batch, false, ctx).await?;
        let facts = query
            .workflow(&res)?
            .ok_or_else(|| Error::WorkflowNotFound(workflow_id.to_string()))?;
        let rows = res.get(dup).map(Vec::as_slice).unwrap_or_default();
        let recorded = signal_recorded(rows, workflow_id, &signal.request_id)?;
        let mut decision = signal_engine::send(&facts, signal, recorded, now_ms(), direct);
        match decision.plan_mut() {
            Some(plan) => self.commit_plan(tx, plan, ctx).await?,
            None => {
                tx.run(Batch::default(), true, ctx).await?;
            }
        }
        let recorded = decision.outcome().map_err(|s| closed(workflow_id, s))?;
        Ok(SignalOutcome {
            recorded,
            claimed: decision.claimed_token(),
        })
    }

    pub(super) async fn signal_impl(
        &self,
        workflow_id: &str,
        signal: NewSignal,
        direct: Option<DirectClaim>,
    ) -> Result<SignalOutcome> {
        let mut tx = Tx::new(self.client().await?);
        self.record_signal(
            &mut tx,
            workflow_id,
            &signal,
            direct.as_ref(),
            "recording a signal",
        )
        .await
    }

    /// `StoreBackend::start_workflow`: the row inserted when the id is free, else (the row
    /// locked) the engine's decision applied.
    pub(super) async fn start_workflow_impl(
        &self,
        wf: NewWorkflow,
        policy: start_engine::StartPolicy,
    ) -> Result<start_engine::StartOutcome> {
        let ctx = "starting a workflow";
        let now = now_ms();
        let mut tx = Tx::new(self.client().await?);
        let mut batch = Batch::default();
        let insert = batch.push(
            SQL_CREATE_IF_ABSENT,
            vec![
                p(wf.workflow_id.clone()),
                p(wf.run_id.clone()),
                p(wf.workflow_type.clone()),
                p(wf.task_queue.clone()),
                p(to_json(&wf.input)),
                p(now),
            ],
        );
        let res = tx.run(batch, false, ctx).await?;
        let started = start_engine::StartOutcome {
            started: true,
            run_id: wf.run_id.clone(),
        };
        if res.get(insert).is_some_and(|r| !r.is_empty()) {
            let mut plan = start_engine::start(&wf, now);
            self.commit_plan(&mut tx, &mut plan, ctx).await?;
            return Ok(started);
        }
        let mut batch = Batch::default();
        let query = push_facts(&mut batch, Of::Workflow(&wf.workflow_id), &[], None);
        let res = tx.run(batch, false, ctx).await?;
        let facts = query
            .workflow(&res)?
            .ok_or_else(|| Error::WorkflowNotFound(wf.workflow_id.clone()))?;
        let outcome = match start_engine::decide(&facts, &wf, policy, now) {
            start_engine::StartDecision::Replace(mut plan) => {
                self.commit_plan(&mut tx, &mut plan, ctx).await?;
                return Ok(started);
            }
            start_engine::StartDecision::Existing { run_id } => Ok(start_engine::StartOutcome {
                started: false,
                run_id,
            }),
            start_engine::StartDecision::Refused(e) => Err(e),
        };
        // Nothing to write: end the transaction now, so that the row lock is gone when this
        // returns (a worker's claim right after does not skip the workflow).
        tx.run(Batch::default(), true, ctx).await?;
        outcome
    }

    pub(super) async fn signal_with_start_impl(
        &self,
        wf: NewWorkflow,
        signal: NewSignal,
    ) -> Result<bool> {
        let ctx = "signal-with-start";
        let now = now_ms();
        let mut tx = Tx::new(self.client().await?);
        // A concurrent insert of the same id waits for ours to commit, then inserts nothing.
        let mut batch = Batch::default();
        let insert = batch.push(
            SQL_CREATE_IF_ABSENT,
            vec![
                p(wf.workflow_id.clone()),
                p(wf.run_id.clone()),
                p(wf.workflow_type.clone()),
                p(wf.task_queue.clone()),
                p(to_json(&wf.input)),
                p(now),
            ],
        );
        let res = tx.run(batch, false, ctx).await?;
        let started = res.get(insert).is_some_and(|r| !r.is_empty());
        if started {
            let plan = start_engine::start(&wf, now);
            let mut batch = Batch::default();
            let _ = push_plan(&mut batch, &plan, Some(&self.channel));
            if plan.wake {
                self.notify(&mut batch);
            }
            tx.run(batch, false, ctx).await?;
        }
        self.record_signal(&mut tx, &wf.workflow_id, &signal, None, ctx)
            .await?;
        Ok(started)
    }

    pub(super) async fn accept_update_impl(
        &self,
        workflow_id: &str,
        update: NewUpdate,
    ) -> Result<Option<u64>> {
        let ctx = "accepting an update";
        let mut tx = Tx::new(self.client().await?);
        let mut batch = Batch::default();
        let query = push_facts(&mut batch, Of::Workflow(workflow_id), &[], None);
        let res = tx.run(batch, false, ctx).await?;
        let facts = query
            .workflow(&res)?
            .ok_or_else(|| Error::WorkflowNotFound(workflow_id.to_string()))?;
        let mut decision = update_engine::accept(&facts, &update, now_ms());
        if let Some(plan) = decision.plan_mut() {
            self.commit_plan(&mut tx, plan, ctx).await?;
        }
        decision.outcome().map_err(|s| closed(workflow_id, s))
    }
}
