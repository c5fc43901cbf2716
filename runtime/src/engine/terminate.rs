//! A client's termination of a workflow: it ends at once, failed with `Terminated` and the
//! reason, recorded in its history; its code does not run again (no cleanup), its tasks and
//! timers are withdrawn. The way out for a workflow held because its code no longer replays.

use super::facts::WorkflowFacts;
use super::plan::{ClosedAs, Effect, Guard, Plan};
use super::timer::EXECUTION_TIMEOUT_TIMER;
use crate::error::WorkflowError;
use crate::history::EventKind;

/// The error type a terminated workflow ends with.
pub(crate) const TERMINATED: &str = "Terminated";

/// The error a workflow terminated for `reason` ends with.
pub(crate) fn terminated_error(reason: &str) -> WorkflowError {
    WorkflowError::application(TERMINATED, format!("terminated by a client: {reason}"))
}

/// Decides a termination: `None` when the workflow already ended (nothing is written), else the
/// plan that ends it.
pub(crate) fn terminate(facts: &WorkflowFacts, reason: &str, now: i64) -> Option<Plan> {
    if !facts.running() {
        return None;
    }
    let error = terminated_error(reason);
    let mut plan = Plan::new(&facts.workflow_id, Guard::append_while_running(), now);
    plan.append(EventKind::WorkflowFailed {
        error: error.clone(),
    });
    plan.effects.push(Effect::DeleteTimer {
        timer_seq: EXECUTION_TIMEOUT_TIMER,
    });
    plan.effects.push(Effect::Close(ClosedAs::Failed(error)));
    plan.wake = true;
    plan.linked = facts.linked;
    Some(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testkit::*;

    #[test]
    fn a_running_workflow_ends_failed_with_the_reason() {
        let plan = terminate(&facts_running(7, 2), "stuck on v1 code", NOW).unwrap();
        let error = terminated_error("stuck on v1 code");
        assert_eq!(
            plan.events,
            vec![EventKind::WorkflowFailed {
                error: error.clone()
            }]
        );
        assert_eq!(plan.closes(), Some(&ClosedAs::Failed(error)));
        assert!(plan.guard.running, "only while it runs");
        assert!(plan.wake);
    }

    #[test]
    fn an_ended_workflow_is_left_alone() {
        let mut f = facts_running(7, 2);
        f.status = crate::engine::WorkflowStatus::Completed;
        assert!(terminate(&f, "late", NOW).is_none());
    }

    #[test]
    fn a_held_workflow_is_terminated_like_any_other() {
        // Held or not, the facts say running: the task's state does not matter.
        let mut f = facts_running(7, 2);
        f.task = Some(crate::engine::TaskState::Pending);
        assert!(terminate(&f, "held", NOW).is_some());
    }
}
