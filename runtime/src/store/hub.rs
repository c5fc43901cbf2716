//! Process-local wake-ups and cancel flags, shared by the workers and clients of one store handle.

use crate::activity::context::CancelFlag;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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
}

impl LocalHub {
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

    pub(crate) fn cancel_running(&self, workflow_id: &str, seq: u64) {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, flag)) = running.get(&(workflow_id.to_string(), seq)) {
            flag.cancel();
        }
    }
}
