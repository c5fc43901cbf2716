//! What a worker says: the line at start (what it serves), a line per failed attempt, its poller
//! heartbeat in the store, and the sampled metrics.

use super::*;
use crate::store::{Poll, PollKind};

/// How often a worker records its poller heartbeat and samples the queue depths.
pub(crate) const POLLER_HEARTBEAT: Duration = Duration::from_secs(10);

/// Logs, at `WARN`, an attempt that failed and will run again.
pub(super) fn attempt_will_retry(
    workflow_id: &str,
    activity_type: &str,
    activity_id: u64,
    attempt: u32,
    error: Option<&ActivityError>,
    retry_at_ms: i64,
    now_ms: i64,
) {
    let Some(error) = error else {
        // Interrupted by its worker's shutdown: not a failure, handed on at once.
        return;
    };
    let retry_in = Duration::from_millis((retry_at_ms - now_ms).max(0) as u64);
    // The attempt's span carries the ids too; the line says them for subscribers that hide spans.
    tracing::warn!(
        workflow_id,
        activity_id,
        next_attempt_in = ?retry_in,
        "activity attempt {attempt} of `{activity_type}` failed: {error}; attempt {} in {retry_in:?}",
        attempt + 1
    );
}

/// Logs at `WARN` an attempt's failure that ends its activity (no attempt follows), and at `WARN`
/// a failure that is retried; says nothing of a success or a cancellation.
pub(super) fn attempt_outcome(
    task: &ClaimedActivity,
    resolution: &ActivityResolution,
    now_ms: i64,
) {
    match resolution {
        ActivityResolution::Retry {
            retry_at_ms,
            last_failure,
        } => attempt_will_retry(
            &task.workflow_id,
            &task.activity_type,
            task.activity_seq,
            task.attempt,
            last_failure.as_ref(),
            *retry_at_ms,
            now_ms,
        ),
        ActivityResolution::Failed(error) | ActivityResolution::TimedOut(error) => {
            tracing::warn!(
                workflow_id = %task.workflow_id,
                activity_id = task.activity_seq,
                "activity `{}` failed for good after attempt {}: {error}; no attempt follows",
                task.activity_type,
                task.attempt
            );
        }
        ActivityResolution::Completed(_) | ActivityResolution::Cancelled { .. } => {}
    }
}

impl Shared {
    /// What this worker serves, as poller heartbeats: each task queue with each registered type.
    pub(super) fn served_polls(&self) -> Vec<Poll> {
        let mut polls = Vec::new();
        for q in &self.queues {
            for (kind, names) in [
                (PollKind::Workflow, &self.wf_types),
                (PollKind::Activity, &self.act_types),
            ] {
                polls.extend(names.iter().map(|t| Poll {
                    task_queue: q.clone(),
                    kind,
                    type_name: t.clone(),
                }));
            }
        }
        polls.sort();
        polls
    }

    /// The line a worker logs once at start.
    pub(super) fn log_start(&self) {
        tracing::info!(
            worker_id = %self.id,
            task_queues = ?self.queues,
            workflows = ?self.wf_types,
            activities = ?self.act_types,
            "worker {} started: task queues [{}], workflows [{}], activities [{}]",
            self.id,
            self.queues.join(", "),
            self.wf_types.join(", "),
            self.act_types.join(", "),
        );
        if self.wf_types.is_empty() && self.act_types.is_empty() {
            tracing::warn!(worker_id = %self.id, "this worker registers no workflow and no activity: it runs nothing");
        }
    }

    /// Records the poller heartbeat and samples the queue metrics, if `POLLER_HEARTBEAT` passed
    /// since the last time (`last`).
    /// On the store's clock: on a virtual one, a skip of the clock is followed by a heartbeat, so
    /// `describe` does not see the worker as gone.
    /// (The real clock's monotonic time counts too: a wall clock set back does not stop it.)
    pub(super) async fn heartbeat_if_due(&self, last: &mut Option<(tokio::time::Instant, i64)>) {
        let (now, now_ms) = (tokio::time::Instant::now(), self.now_ms());
        let every_ms = POLLER_HEARTBEAT.as_millis() as i64;
        if last.is_some_and(|(t, t_ms)| {
            now.duration_since(t) < POLLER_HEARTBEAT && now_ms.saturating_sub(t_ms) < every_ms
        }) {
            return;
        }
        *last = Some((now, now_ms));
        let store = &self.store.backend;
        if let Err(e) = store
            .record_polls(&self.id, &self.polls, self.now_ms())
            .await
        {
            tracing::warn!(error = %e, "could not record the worker's poller heartbeat");
        }
        match store.queue_depth(&self.queues, self.now_ms()).await {
            Ok(depth) => crate::telemetry::queue_depth(&depth),
            Err(e) => tracing::debug!(error = %e, "could not sample the queue depths"),
        }
    }
}
