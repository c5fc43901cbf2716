//! Canned facts and commands for the engine's unit tests.

use super::activity::ClaimedActivity;
use super::facts::{TaskState, WorkflowFacts, WorkflowStatus};
use crate::definition::ActivityOptions;
use crate::history::{CancellationType, EventKind};
use std::collections::HashMap;

/// The clock of every canned decision.
pub(crate) const NOW: i64 = 1_700_000_000_000;

/// A running workflow `wf` whose history ends at `next_event_seq - 1`, its task claimed with
/// `token`.
pub(crate) fn facts_running(next_event_seq: u64, token: i64) -> WorkflowFacts {
    WorkflowFacts {
        workflow_id: "wf".into(),
        run_id: "run".into(),
        status: WorkflowStatus::Running,
        next_event_seq,
        wft_token: token,
        task: Some(TaskState::Running),
        cancel_requested: false,
        activities: HashMap::new(),
        unseen: Vec::new(),
        next_run: None,
        existing_ids: Default::default(),
        linked: false,
    }
}

pub(crate) fn scheduled(activity_seq: u64, activity_type: &str) -> EventKind {
    EventKind::ActivityScheduled {
        activity_seq,
        activity_type: activity_type.into(),
        input: serde_json::Value::Null,
        options: ActivityOptions::default(),
        task_queue: "default".into(),
        local: false,
        cancellation_type: CancellationType::TryCancel,
    }
}

pub(crate) fn cancel_requested(activity_seq: u64) -> EventKind {
    EventKind::ActivityCancelRequested { activity_seq }
}

pub(crate) fn timer_started(timer_seq: u64, fire_at_ms: i64) -> EventKind {
    EventKind::TimerStarted {
        timer_seq,
        fire_at_ms,
    }
}

pub(crate) fn claimed(activity_seq: u64) -> ClaimedActivity {
    ClaimedActivity {
        task_id: 1,
        workflow_id: "wf".into(),
        run_id: "run".into(),
        activity_seq,
        activity_type: "act".into(),
        task_queue: "default".into(),
        input: serde_json::Value::Null,
        options: ActivityOptions::default(),
        attempt: 0,
        token: 0,
        scheduled_ms: NOW,
        started_ms: NOW,
        deadline_ms: None,
        heartbeat_details: None,
        cancel_requested: false,
    }
}
