//! What a store keeps about waiting work, for `describe` and the metrics: a workflow's pending
//! task, the workers' poller heartbeats, the depth of the task queues.

use crate::error::ActivityError;
use crate::history::format;
use serde::{Deserialize, Serialize};

/// A running workflow's workflow task, in a [`WorkflowDescription`](crate::WorkflowDescription):
/// the workflow has something new to run and waits for a worker, or a worker runs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PendingWorkflowTask {
    /// `pending` (waiting for a worker) or `running` (a worker has it).
    pub state: String,
    /// When it fell (or falls) due, in ms since the epoch: a pending task's age is now minus this.
    pub due_ms: i64,
    /// The worker that holds it, while it runs.
    pub worker: Option<String>,
}

/// When workers last polled for a task queue and type (their poller heartbeats, recorded in the
/// store at start and every 10 s while they run), in a description.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Pollers {
    /// When a worker last polled the task queue, for any type (ms since the epoch); `None`: never.
    pub queue_last_poll_ms: Option<i64>,
    /// When a worker that registers the type last polled the task queue; `None`: never.
    pub type_last_poll_ms: Option<i64>,
}

/// Which kind of definition a poll was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum PollKind {
    Workflow,
    Activity,
}

impl PollKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            PollKind::Workflow => "workflow",
            PollKind::Activity => "activity",
        }
    }
}

/// One task queue and type a worker serves.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Poll {
    pub task_queue: String,
    pub kind: PollKind,
    pub type_name: String,
}

/// A stored poller heartbeat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PollerRecord {
    pub kind: String,
    pub type_name: String,
    #[allow(dead_code)] // Read for completeness; `describe` shows times, not worker ids.
    pub worker_id: String,
    pub last_poll_ms: i64,
}

impl Pollers {
    /// The heartbeats of one task queue (`records`) seen for a type of this kind.
    pub(crate) fn of(records: &[PollerRecord], kind: PollKind, type_name: &str) -> Pollers {
        Pollers {
            queue_last_poll_ms: records.iter().map(|r| r.last_poll_ms).max(),
            type_last_poll_ms: records
                .iter()
                .filter(|r| r.kind == kind.as_str() && r.type_name == type_name)
                .map(|r| r.last_poll_ms)
                .max(),
        }
    }
}

/// Tasks due now in some task queues, and the workflows held, for the metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct QueueDepth {
    pub workflow_tasks: u64,
    pub activity_tasks: u64,
    pub held_workflows: u64,
}

/// A pending activity's stored last failure. It is only shown (`describe`), so one that cannot
/// be read (damaged, or written by a newer build) is left out with a warning: it must not make
/// `describe`, or a `result()` waiting through it, fail.
pub(crate) fn decode_last_failure(
    stored: Option<&str>,
    workflow_id: &str,
    activity_seq: u64,
) -> Option<ActivityError> {
    let stored = stored?;
    match format::decode_activity_error(stored) {
        Ok(e) => Some(e),
        Err(e) => {
            tracing::warn!(
                workflow_id,
                activity_seq,
                error = %e,
                "the stored last failure of a pending activity cannot be read; describe leaves it out"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::decode_last_failure;

    #[test]
    fn an_unreadable_last_failure_is_left_out_not_an_error() {
        assert!(decode_last_failure(Some("{not json"), "wf", 1).is_none());
        assert!(decode_last_failure(Some(r#"{"kind":"from_a_newer_build"}"#), "wf", 1).is_none());
        assert!(decode_last_failure(None, "wf", 1).is_none());
    }
}
