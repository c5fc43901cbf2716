//! Process-local wake-ups and cancel flags, shared by the workers and clients of one store handle.

use crate::activity::context::CancelFlag;
use crate::engine::signal::DirectClaim;
use crate::engine::ClaimedWorkflowTask;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A worker of this process, as the clients of its store handle see it: it may hold workflows'
/// instances in its cache, and then takes a signal's workflow task without a claim round trip and
/// answers queries without a replay.
pub(crate) trait CacheHolder: Send + Sync {
    /// Whether the holder is gone (its worker stopped): it is forgotten.
    fn gone(&self) -> bool;
    /// If this worker holds `workflow_id`'s instance idle in its cache and takes work: the claim a
    /// signal's transaction may make for it, and the task it then runs (its token to be filled).
    fn direct_claim(&self, workflow_id: &str) -> Option<(DirectClaim, ClaimedWorkflowTask)>;
    /// Runs a workflow task a signal's transaction claimed for this worker.
    fn run_claimed(&self, task: ClaimedWorkflowTask);
    /// Answers a query from the cached instance of `workflow_id`, if this worker holds it idle:
    /// the marker seq of the instance's last task, and the answer.
    fn query_cached(
        &self,
        workflow_id: &str,
        name: &str,
        input: &Value,
    ) -> Option<(u64, std::result::Result<Value, String>)>;
}

/// Process-local state shared by every worker and client of one [`Store`] handle: wake-ups and the
/// cancel flags of attempts running here, so a cancel reaches them at once.
#[derive(Default)]
pub(crate) struct LocalHub {
    pub wake: tokio::sync::Notify,
    /// Clients waiting for a workflow to end, by workflow id: a close wakes only its own waiters.
    closed: Mutex<HashMap<String, Arc<tokio::sync::Notify>>>,
    /// Clients waiting for a workflow's next commit (an update's answer), by workflow id.
    progress: Mutex<HashMap<String, Arc<tokio::sync::Notify>>>,
    /// Attempts running in this process, by (workflow id, activity seq): their token and cancel flag.
    pub running: Mutex<HashMap<(String, u64), (i64, CancelFlag)>>,
    /// The workers of this process (see [`CacheHolder`]).
    holders: Mutex<Vec<Arc<dyn CacheHolder>>>,
}

/// Whether events read after a cached instance's last marker show that the workflow moved on
/// elsewhere (a command or a task committed by another worker): the instance is then stale and
/// must not answer a query.
pub(crate) fn moved_on(after_marker: &[crate::history::HistoryEvent]) -> bool {
    after_marker.iter().any(|e| {
        e.kind.is_command()
            || matches!(
                e.kind,
                crate::history::EventKind::WorkflowTaskCompleted { .. }
            )
    })
}

impl LocalHub {
    /// A worker of this process starts: it may hold instances from now on.
    pub(crate) fn add_holder(&self, holder: Arc<dyn CacheHolder>) {
        let mut holders = self.holders.lock().unwrap_or_else(|e| e.into_inner());
        holders.retain(|h| !h.gone());
        holders.push(holder);
    }

    /// The workers of this process (those still running).
    pub(crate) fn holders(&self) -> Vec<Arc<dyn CacheHolder>> {
        let mut holders = self.holders.lock().unwrap_or_else(|e| e.into_inner());
        holders.retain(|h| !h.gone());
        holders.clone()
    }

    /// The worker of this process that holds `workflow_id`'s instance idle, with the claim a
    /// signal may make for it.
    pub(crate) fn holder_of(
        &self,
        workflow_id: &str,
    ) -> Option<(Arc<dyn CacheHolder>, DirectClaim, ClaimedWorkflowTask)> {
        self.holders().into_iter().find_map(|h| {
            let (claim, task) = h.direct_claim(workflow_id)?;
            Some((h, claim, task))
        })
    }

    pub(crate) fn wake_workers(&self) {
        self.wake.notify_waiters();
    }

    /// What a client waiting for `workflow_id` to end waits on.
    pub(crate) fn closed_waiter(&self, workflow_id: &str) -> Arc<tokio::sync::Notify> {
        let mut map = self.closed.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(workflow_id.to_string()).or_default().clone()
    }

    /// A waiter is done: forget the entry if nobody else waits on it.
    pub(crate) fn forget_closed_waiter(&self, workflow_id: &str, waiter: Arc<tokio::sync::Notify>) {
        let mut map = self.closed.lock().unwrap_or_else(|e| e.into_inner());
        let ours = map
            .get(workflow_id)
            .is_some_and(|n| Arc::ptr_eq(n, &waiter));
        if ours && Arc::strong_count(&waiter) <= 2 {
            map.remove(workflow_id);
        }
    }

    /// `workflow_id` ended in this process: wake its waiters.
    pub(crate) fn notify_closed(&self, workflow_id: &str) {
        let waiter = self
            .closed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(workflow_id);
        if let Some(n) = waiter {
            n.notify_waiters();
        }
    }

    /// What a client waiting for `workflow_id`'s next commit waits on.
    pub(crate) fn progress_waiter(&self, workflow_id: &str) -> Arc<tokio::sync::Notify> {
        let mut map = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(workflow_id.to_string()).or_default().clone()
    }

    /// A progress waiter is done: forget the entry if nobody else waits on it.
    pub(crate) fn forget_progress_waiter(
        &self,
        workflow_id: &str,
        waiter: Arc<tokio::sync::Notify>,
    ) {
        let mut map = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        let ours = map
            .get(workflow_id)
            .is_some_and(|n| Arc::ptr_eq(n, &waiter));
        if ours && Arc::strong_count(&waiter) <= 2 {
            map.remove(workflow_id);
        }
    }

    /// A workflow task of `workflow_id` committed in this process: wake its progress waiters.
    pub(crate) fn notify_progress(&self, workflow_id: &str) {
        let map = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get(workflow_id) {
            n.notify_waiters();
        }
    }

    pub(crate) fn cancel_running(&self, workflow_id: &str, seq: u64) {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, flag)) = running.get(&(workflow_id.to_string(), seq)) {
            flag.cancel();
        }
    }
}
