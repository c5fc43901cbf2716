//! A client's signal: recorded once (a retry with the same request id writes nothing) as
//! `SignalReceived`, and a workflow task to deliver it; and `signal_with_start`, which starts the
//! workflow first when it does not exist, in the same transaction.

use super::facts::{WorkflowFacts, WorkflowStatus};
use super::plan::{Effect, Guard, Plan, WorkflowTaskEffect};
use crate::history::EventKind;
use serde_json::Value;

/// A signal as a client sends it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct NewSignal {
    /// The signal's registered name.
    pub name: String,
    /// The signal, as JSON.
    pub input: Value,
    /// The id that makes retries deliver it once.
    pub request_id: String,
}

/// What a signal does.
#[derive(Debug)]
pub(crate) enum SignalDecision {
    /// A signal with this request id is already in the history: nothing new is written.
    Duplicate,
    /// The workflow ended: the signal is refused.
    Ended(WorkflowStatus),
    /// The plan recording the signal.
    Deliver(Plan),
}

impl SignalDecision {
    /// The plan the store applies, if the decision writes anything.
    pub(crate) fn plan_mut(&mut self) -> Option<&mut Plan> {
        match self {
            SignalDecision::Deliver(plan) => Some(plan),
            SignalDecision::Duplicate | SignalDecision::Ended(_) => None,
        }
    }

    /// What the client hears: `Err(status)` when the workflow had ended; `Ok(true)` when this
    /// call recorded the signal, `Ok(false)` when an earlier call with its request id had.
    pub(crate) fn outcome(&self) -> Result<bool, WorkflowStatus> {
        match self {
            SignalDecision::Deliver(_) => Ok(true),
            SignalDecision::Duplicate => Ok(false),
            SignalDecision::Ended(status) => Err(*status),
        }
    }
}

/// Decides a signal. `recorded`: the store found a `SignalReceived` with the same request id in
/// the workflow's history (a client's retry): it is not recorded twice, even after the workflow
/// ended.
pub(crate) fn send(
    facts: &WorkflowFacts,
    signal: &NewSignal,
    recorded: bool,
    now: i64,
) -> SignalDecision {
    if recorded {
        return SignalDecision::Duplicate;
    }
    if !facts.running() {
        return SignalDecision::Ended(facts.status);
    }
    let mut plan = Plan::new(&facts.workflow_id, Guard::append_while_running(), now);
    plan.append(EventKind::SignalReceived {
        signal_name: signal.name.clone(),
        input: signal.input.clone(),
        request_id: signal.request_id.clone(),
    });
    // A task running now sees the new event when it commits, and runs again (`rerun`).
    plan.effects
        .push(Effect::WorkflowTask(WorkflowTaskEffect::Enqueue {
            at_ms: now,
        }));
    plan.wake = true;
    SignalDecision::Deliver(plan)
}

/// Whether a stored `SignalReceived` (found by its `ref_seq`) is this request's.
pub(crate) fn same_request(event: &EventKind, request_id: &str) -> bool {
    matches!(event, EventKind::SignalReceived { request_id: r, .. } if r == request_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testkit::*;

    fn approve() -> NewSignal {
        NewSignal {
            name: "Approve".into(),
            input: serde_json::json!({"by": "ann"}),
            request_id: "r-1".into(),
        }
    }

    #[test]
    fn a_signal_is_appended_and_wakes_a_workflow_task() {
        let mut f = facts_running(7, 1);
        f.task = None;
        let SignalDecision::Deliver(plan) = send(&f, &approve(), false, NOW) else {
            panic!()
        };
        assert_eq!(plan.guard, Guard::append_while_running());
        assert_eq!(
            plan.events,
            vec![EventKind::SignalReceived {
                signal_name: "Approve".into(),
                input: serde_json::json!({"by": "ann"}),
                request_id: "r-1".into(),
            }]
        );
        assert_eq!(
            plan.effects,
            vec![Effect::WorkflowTask(WorkflowTaskEffect::Enqueue {
                at_ms: NOW
            })]
        );
        assert!(plan.wake);
        f.advance(&plan);
        assert_eq!(f.next_event_seq, 8);
        assert_eq!(f.task, Some(crate::engine::TaskState::Pending));
    }

    #[test]
    fn a_retry_writes_nothing_even_after_the_end() {
        let mut f = facts_running(7, 1);
        assert_eq!(send(&f, &approve(), true, NOW).outcome(), Ok(false));
        f.status = WorkflowStatus::Completed;
        assert_eq!(send(&f, &approve(), true, NOW).outcome(), Ok(false));
    }

    #[test]
    fn an_ended_workflow_refuses_a_new_signal() {
        let mut f = facts_running(7, 1);
        f.status = WorkflowStatus::Cancelled;
        let mut d = send(&f, &approve(), false, NOW);
        assert!(d.plan_mut().is_none());
        assert_eq!(d.outcome(), Err(WorkflowStatus::Cancelled));
    }

    #[test]
    fn only_the_same_request_id_is_a_duplicate() {
        let ev = EventKind::SignalReceived {
            signal_name: "Approve".into(),
            input: Value::Null,
            request_id: "r-1".into(),
        };
        assert!(same_request(&ev, "r-1"));
        assert!(!same_request(&ev, "r-2"));
        assert!(!same_request(&EventKind::WorkflowCancelRequested {}, "r-1"));
    }
}
