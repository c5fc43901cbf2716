//! Local activities: run by the workflow's own worker, their outcome recorded as a marker (or as
//! `ActivityCancelled`), once.

use super::facts::WorkflowFacts;
use super::plan::{Effect, Guard, Plan, WorkflowTaskEffect};
use crate::error::ActivityError;
use crate::history::EventKind;
use serde_json::Value;

/// Records a local activity's outcome; `None` when there is nothing to record: the workflow ended,
/// or the outcome of this activity is already in the history (`already_recorded`).
pub(crate) fn record(
    facts: &WorkflowFacts,
    already_recorded: bool,
    activity_seq: u64,
    result: Result<Value, ActivityError>,
    now: i64,
) -> Option<Plan> {
    if !facts.running() || already_recorded {
        return None;
    }
    let event = match result {
        Err(ActivityError::Cancelled { details }) => EventKind::ActivityCancelled {
            activity_seq,
            details,
        },
        result => EventKind::LocalActivityMarker {
            activity_seq,
            result,
        },
    };
    let mut plan = Plan::new(&facts.workflow_id, Guard::append_while_running(), now);
    plan.append(event);
    plan.effects
        .push(Effect::WorkflowTask(WorkflowTaskEffect::Enqueue {
            at_ms: now,
        }));
    plan.wake = true;
    Some(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testkit::*;

    #[test]
    fn an_outcome_is_a_marker_and_a_cancellation_is_cancelled() {
        let f = facts_running(6, 1);
        let plan = record(&f, false, 2, Ok(7.into()), NOW).unwrap();
        assert_eq!(
            plan.events,
            vec![EventKind::LocalActivityMarker {
                activity_seq: 2,
                result: Ok(7.into())
            }]
        );
        let plan = record(&f, false, 2, Err(ActivityError::cancelled()), NOW).unwrap();
        assert_eq!(
            plan.events,
            vec![EventKind::ActivityCancelled {
                activity_seq: 2,
                details: None
            }]
        );
    }

    #[test]
    fn recorded_once_and_never_after_the_end() {
        let f = facts_running(6, 1);
        assert!(record(&f, true, 2, Ok(7.into()), NOW).is_none());
        let mut ended = f;
        ended.status = crate::engine::WorkflowStatus::Failed;
        assert!(record(&ended, false, 2, Ok(7.into()), NOW).is_none());
    }
}
