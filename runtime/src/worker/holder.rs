//! The worker as its process's clients see it ([`crate::store::hub::CacheHolder`]): a signal to a
//! workflow whose instance it holds idle claims the workflow task in the signal's own transaction
//! and hands it here (no wake-up, no claim round trip), and a query is answered from the instance
//! (no replay).

use super::*;
use crate::engine::signal::DirectClaim;
use crate::engine::ClaimedWorkflowTask;
use crate::store::hub::CacheHolder;
use std::sync::Weak;

/// A running worker's entry in its store handle's hub; it does not keep the worker alive.
pub(super) struct Holder(pub(super) Weak<Shared>);

impl CacheHolder for Holder {
    fn gone(&self) -> bool {
        self.0.upgrade().is_none_or(|s| s.is_draining())
    }

    fn direct_claim(&self, workflow_id: &str) -> Option<(DirectClaim, ClaimedWorkflowTask)> {
        let shared = self.0.upgrade()?;
        if shared.is_draining() || shared.kill.is_cancelled() {
            return None;
        }
        let cache = lock(&shared.cache);
        let c = cache.get(workflow_id)?;
        let info = c.instance.info();
        let claim = DirectClaim {
            owner: shared.id.clone(),
            run_id: c.run_id.clone(),
            lease_ms: shared.opts.workflow_task_lease.as_millis() as i64,
        };
        let task = ClaimedWorkflowTask {
            workflow_id: workflow_id.to_string(),
            run_id: c.run_id.clone(),
            workflow_type: info.workflow_type,
            task_queue: info.task_queue,
            token: 0,
        };
        Some((claim, task))
    }

    fn run_claimed(&self, task: ClaimedWorkflowTask) {
        // A worker gone since the claim: the lease expires and any worker takes the task.
        let Some(shared) = self.0.upgrade() else {
            return;
        };
        let me = shared.clone();
        shared.tasks.spawn(async move {
            let Ok(permit) = me.wf_slots.clone().acquire_owned().await else {
                return;
            };
            me.process_workflow_task(task).await;
            drop(permit);
        });
    }

    fn query_cached(
        &self,
        workflow_id: &str,
        name: &str,
        input: &Value,
    ) -> Option<(u64, std::result::Result<Value, String>)> {
        let shared = self.0.upgrade()?;
        let cache = lock(&shared.cache);
        let c = cache.get(workflow_id)?;
        let answer = c.instance.query(name, input.clone());
        Some((c.instance.own_marker_seq, answer))
    }
}

/// Answers the queries other processes ask (Postgres): for each ask, if this worker holds the
/// workflow idle and no task was committed since elsewhere, its instance's answer goes back to the
/// asker. Ends when the worker stops.
pub(super) async fn answer_asks(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let Some(mut asks) = shared.store.backend.query_asks() else {
        return;
    };
    let holder = Holder(Arc::downgrade(&shared));
    loop {
        let ask = tokio::select! {
            a = asks.recv() => match a {
                Ok(a) => a,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!(missed = n, "query asks missed; their askers replay");
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            _ = stop.changed() => return,
        };
        if shared.is_draining() {
            return;
        }
        let Some((marker, answer)) = holder.query_cached(&ask.workflow_id, &ask.name, &ask.input)
        else {
            continue;
        };
        let store = &shared.store.backend;
        let current = match store.read_history(&ask.workflow_id, marker + 1).await {
            Ok(after) => !crate::store::hub::moved_on(&after),
            Err(e) => {
                tracing::debug!(error = %e, "could not check a cached instance for a query");
                false
            }
        };
        if current {
            let reply = crate::store::ask::QueryReply::Answer(answer);
            if let Err(e) = store.reply_query(&ask, reply).await {
                tracing::debug!(error = %e, "could not answer a query of another process");
            }
        }
    }
}
