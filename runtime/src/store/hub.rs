//! Process-local wake-ups and cancel flags, shared by the workers and clients of one store handle.

use crate::activity::context::CancelFlag;
use crate::engine::signal::DirectClaim;
use crate::engine::ClaimedWorkflowTask;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

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
    /// On a virtual clock only: what the workers of this store must do before time skips on
    /// (see [`TimeHold`]), by a key naming the party (its worker and what it keeps).
    time_holds: Mutex<HashMap<String, TimeHold>>,
    /// On a virtual clock only: the workers of this store, asked whether they run anything before
    /// the clock skips (a skip waits for every one of them, not only the one that skips).
    workers: Mutex<HashMap<String, Weak<dyn IdleProbe>>>,
    /// The workers of this process (see [`CacheHolder`]).
    holders: Mutex<Vec<Arc<dyn CacheHolder>>>,
}

/// A worker, as a virtual clock's skip asks it whether it runs anything.
pub(crate) trait IdleProbe: Send + Sync {
    /// Nothing of it runs (see `Shared::idle`).
    fn idle(&self) -> bool;
}

/// On a virtual clock, a party of a worker that must act at a point of time before the clock
/// skips past it: a liveness lease to renew, a workflow task lease to extend, a local activity's
/// retry to start. The clock's skip goes at most to `cap_ms` and never skips on while `due_ms`
/// has come and the party has not acted (moved or dropped its hold).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimeHold {
    /// When the party must act; the clock does not skip on once it reads this, until it has.
    pub due_ms: i64,
    /// How far a skip may go at most (`None`: any distance; a skip past `due_ms` is fine).
    pub cap_ms: Option<i64>,
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

    /// Cancels the attempt of `seq` of `workflow_id` running here, or (`None`) every attempt of
    /// that workflow running here.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn cancel_running_of(&self, workflow_id: &str, seq: Option<u64>) {
        match seq {
            Some(seq) => self.cancel_running(workflow_id, seq),
            None => {
                let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
                for ((wf, _), (_, flag)) in running.iter() {
                    if wf == workflow_id {
                        flag.cancel();
                    }
                }
            }
        }
    }

    /// Sets (or moves) the time hold `key` (virtual clocks only: callers check).
    pub(crate) fn hold_time(&self, key: String, hold: TimeHold) {
        let mut holds = self.time_holds.lock().unwrap_or_else(|e| e.into_inner());
        holds.insert(key, hold);
    }

    /// Counts `worker` among the workers a skip waits for (virtual clocks only: callers check).
    pub(crate) fn watch_worker(&self, id: &str, worker: Weak<dyn IdleProbe>) {
        let mut w = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        w.insert(id.to_string(), worker);
    }

    /// Stops counting the worker `id`.
    pub(crate) fn forget_worker(&self, id: &str) {
        let mut w = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        w.remove(id);
    }

    /// Whether no worker of this store runs anything.
    pub(crate) fn workers_idle(&self) -> bool {
        let w = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        w.values().all(|p| p.upgrade().is_none_or(|p| p.idle()))
    }

    /// Drops the time hold `key`.
    pub(crate) fn release_time(&self, key: &str) {
        let mut holds = self.time_holds.lock().unwrap_or_else(|e| e.into_inner());
        holds.remove(key);
    }

    /// How far the virtual clock may skip from `now_ms`: `None` while a hold is due (its party
    /// has to act first), else the nearest cap (`Some(None)`: no cap).
    pub(crate) fn skip_limit(&self, now_ms: i64) -> Option<Option<i64>> {
        let holds = self.time_holds.lock().unwrap_or_else(|e| e.into_inner());
        let mut cap: Option<i64> = None;
        for h in holds.values() {
            if h.due_ms <= now_ms {
                return None;
            }
            if let Some(c) = h.cap_ms {
                cap = Some(cap.map_or(c, |x| x.min(c)));
            }
        }
        Some(cap)
    }

    pub(crate) fn cancel_running(&self, workflow_id: &str, seq: u64) {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, flag)) = running.get(&(workflow_id.to_string(), seq)) {
            flag.cancel();
        }
    }
}
