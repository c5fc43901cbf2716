//! A client's request to cancel a workflow: recorded once as `WorkflowCancelRequested`; the
//! workflow runs to see it (its code decides what cancelling means).

use super::facts::WorkflowFacts;
use super::plan::{Effect, Guard, Plan, WorkflowTaskEffect};
use crate::history::EventKind;

/// What a cancel request does.
#[derive(Debug)]
pub(crate) enum CancelDecision {
    /// The workflow already ended: nothing to cancel.
    Ended,
    /// Already requested: nothing new is written.
    AlreadyRequested,
    /// The plan recording the request.
    Request(Plan),
}

impl CancelDecision {
    /// The plan the store applies, if the decision writes anything.
    pub(crate) fn plan_mut(&mut self) -> Option<&mut Plan> {
        match self {
            CancelDecision::Request(plan) => Some(plan),
            CancelDecision::Ended | CancelDecision::AlreadyRequested => None,
        }
    }

    /// What the client hears: false when the workflow already ended.
    pub(crate) fn accepted(&self) -> bool {
        !matches!(self, CancelDecision::Ended)
    }
}

/// Decides a client's cancel request on a workflow.
pub(crate) fn request(facts: &WorkflowFacts, now: i64) -> CancelDecision {
    if !facts.running() {
        return CancelDecision::Ended;
    }
    if facts.cancel_requested {
        return CancelDecision::AlreadyRequested;
    }
    let mut plan = Plan::new(&facts.workflow_id, Guard::append_while_running(), now);
    plan.append(EventKind::WorkflowCancelRequested {});
    plan.effects.push(Effect::SetCancelRequested);
    plan.effects
        .push(Effect::WorkflowTask(WorkflowTaskEffect::Enqueue {
            at_ms: now,
        }));
    plan.wake = true;
    CancelDecision::Request(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testkit::*;

    #[test]
    fn the_first_request_is_recorded_and_wakes_the_workflow() {
        let CancelDecision::Request(plan) = request(&facts_running(4, 1), NOW) else {
            panic!()
        };
        assert_eq!(plan.events, vec![EventKind::WorkflowCancelRequested {}]);
        assert_eq!(
            plan.effects,
            vec![
                Effect::SetCancelRequested,
                Effect::WorkflowTask(WorkflowTaskEffect::Enqueue { at_ms: NOW })
            ]
        );
    }

    #[test]
    fn a_second_request_or_an_ended_workflow_writes_nothing() {
        let mut f = facts_running(4, 1);
        f.cancel_requested = true;
        assert!(matches!(request(&f, NOW), CancelDecision::AlreadyRequested));
        f.cancel_requested = false;
        f.status = crate::engine::WorkflowStatus::Completed;
        assert!(matches!(request(&f, NOW), CancelDecision::Ended));
    }
}
