//! The stored format of events (placeholder: replaced by the versioned format module).

use super::EventKind;

/// The stored name of `ActivityStarted`.
pub(crate) const ACTIVITY_STARTED: &str = "activity_started";

/// The names of command events and of the workflow-task marker, as stored.
pub(crate) fn is_command_or_marker_name(event_type: &str) -> bool {
    matches!(
        event_type,
        "activity_scheduled"
            | "activity_cancel_requested"
            | "timer_started"
            | "timer_cancelled"
            | "workflow_completed"
            | "workflow_failed"
            | "workflow_cancelled"
            | "workflow_task_completed"
    )
}

/// The activity or timer number an event concerns, stored beside it for lookups.
pub(crate) fn ref_seq(kind: &EventKind) -> Option<i64> {
    match kind {
        EventKind::ActivityScheduled { activity_seq, .. }
        | EventKind::ActivityStarted { activity_seq, .. }
        | EventKind::ActivityCompleted { activity_seq, .. }
        | EventKind::ActivityFailed { activity_seq, .. }
        | EventKind::ActivityTimedOut { activity_seq, .. }
        | EventKind::ActivityCancelRequested { activity_seq }
        | EventKind::ActivityCancelled { activity_seq, .. }
        | EventKind::LocalActivityMarker { activity_seq, .. } => Some(*activity_seq as i64),
        EventKind::TimerStarted { timer_seq, .. }
        | EventKind::TimerFired { timer_seq }
        | EventKind::TimerCancelled { timer_seq } => Some(*timer_seq as i64),
        _ => None,
    }
}
