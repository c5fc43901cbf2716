//! The instance cache, and the hold a one-commit step takes on an instance.

use super::*;

/// Marks a workflow's instance as taken by a one-commit step; dropping it wakes waiting tasks.
pub(super) struct BusyGuard {
    shared: Arc<Shared>,
    workflow_id: String,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        if let Some(n) = lock(&self.shared.busy).remove(&self.workflow_id) {
            n.notify_waiters();
        }
    }
}

pub(super) struct CachedWorkflow {
    pub(super) instance: WorkflowInstance,
    pub(super) run_id: String,
    pub(super) last_used: u64,
}

impl Shared {
    /// Takes a workflow's cached instance out of the cache for a one-commit step, if it is there for
    /// this run, and marks the workflow busy until the returned guard drops.
    pub(super) fn cache_take_busy(
        self: &Arc<Self>,
        workflow_id: &str,
        run_id: &str,
    ) -> Option<(WorkflowInstance, BusyGuard)> {
        let mut cache = lock(&self.cache);
        let inst = match cache.get(workflow_id) {
            Some(c) if c.run_id == run_id => cache.remove(workflow_id).map(|c| c.instance),
            _ => None,
        }?;
        lock(&self.busy).insert(
            workflow_id.to_string(),
            Arc::new(tokio::sync::Notify::new()),
        );
        Some((
            inst,
            BusyGuard {
                shared: self.clone(),
                workflow_id: workflow_id.to_string(),
            },
        ))
    }

    /// Waits while a one-commit step holds the workflow's instance.
    pub(super) async fn wait_not_busy(&self, workflow_id: &str) {
        loop {
            let Some(n) = lock(&self.busy).get(workflow_id).cloned() else {
                return;
            };
            let released = n.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            let still = lock(&self.busy)
                .get(workflow_id)
                .is_some_and(|m| Arc::ptr_eq(m, &n));
            if !still {
                continue;
            }
            released.await;
        }
    }

    pub(super) fn cache_put(&self, workflow_id: &str, run_id: &str, instance: WorkflowInstance) {
        let mut cache = lock(&self.cache);
        let tick = self.cache_clock.fetch_add(1, Ordering::Relaxed);
        if cache.len() >= self.opts.max_cached_workflows {
            // Evict the least recently used tenth.
            let mut ages: Vec<(u64, String)> = cache
                .iter()
                .map(|(k, v)| (v.last_used, k.clone()))
                .collect();
            ages.sort_unstable();
            let n = (self.opts.max_cached_workflows / 10).max(1);
            for (_, k) in ages.into_iter().take(n) {
                cache.remove(&k);
            }
        }
        if self.opts.max_cached_workflows > 0 {
            cache.insert(
                workflow_id.to_string(),
                CachedWorkflow {
                    instance,
                    run_id: run_id.to_string(),
                    last_used: tick,
                },
            );
        }
    }
}
