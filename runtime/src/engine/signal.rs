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

/// A worker of the client's process holds the workflow's instance in its cache: when no workflow
/// task is pending or running, the signal's transaction claims the task for it, so the worker runs
/// it at once (no wake-up, no claim round trip).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct DirectClaim {
    /// The worker that holds the instance.
    pub owner: String,
    /// The run the cached instance belongs to: another run is not claimed.
    pub run_id: String,
    /// How long the claim's lease lasts, in ms (the worker's workflow task lease).
    pub lease_ms: i64,
}

/// What a signal does.
#[derive(Debug)]
pub(crate) enum SignalDecision {
    /// A signal with this request id is already in the history: nothing new is written.
    Duplicate,
    /// The workflow ended: the signal is refused.
    Ended(WorkflowStatus),
    /// The plan recording the signal, and the token of the workflow task it claimed for the
    /// holder of a [`DirectClaim`], if it did.
    Deliver(Plan, Option<i64>),
}

impl SignalDecision {
    /// The plan the store applies, if the decision writes anything.
    pub(crate) fn plan_mut(&mut self) -> Option<&mut Plan> {
        match self {
            SignalDecision::Deliver(plan, _) => Some(plan),
            SignalDecision::Duplicate | SignalDecision::Ended(_) => None,
        }
    }

    /// What the client hears: `Err(status)` when the workflow had ended; `Ok(true)` when this
    /// call recorded the signal, `Ok(false)` when an earlier call with its request id had.
    pub(crate) fn outcome(&self) -> Result<bool, WorkflowStatus> {
        match self {
            SignalDecision::Deliver(..) => Ok(true),
            SignalDecision::Duplicate => Ok(false),
            SignalDecision::Ended(status) => Err(*status),
        }
    }

    /// The token of the workflow task this signal claimed for the [`DirectClaim`]'s worker.
    pub(crate) fn claimed_token(&self) -> Option<i64> {
        match self {
            SignalDecision::Deliver(_, token) => *token,
            SignalDecision::Duplicate | SignalDecision::Ended(_) => None,
        }
    }
}

/// Decides a signal. `recorded`: the store found a `SignalReceived` with the same request id in
/// the workflow's history (a client's retry): it is not recorded twice, even after the workflow
/// ended. `direct`: a worker of this process holds the workflow's instance (see [`DirectClaim`]).
pub(crate) fn send(
    facts: &WorkflowFacts,
    signal: &NewSignal,
    recorded: bool,
    now: i64,
    direct: Option<&DirectClaim>,
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
    // No task pending or running, and the holder's instance is of this run: the task is claimed
    // for the holder here, as a claim would (a new token fences any older lease).
    if let Some(d) = direct.filter(|d| facts.task.is_none() && d.run_id == facts.run_id) {
        plan.effects.push(Effect::BumpWorkflowTaskToken);
        plan.effects
            .push(Effect::WorkflowTask(WorkflowTaskEffect::Lease {
                owner: d.owner.clone(),
                until_ms: now.saturating_add(d.lease_ms),
            }));
        return SignalDecision::Deliver(plan, Some(facts.wft_token + 1));
    }
    // A task running now sees the new event when it commits, and runs again (`rerun`).
    plan.effects
        .push(Effect::WorkflowTask(WorkflowTaskEffect::Enqueue {
            at_ms: now,
        }));
    plan.wake = true;
    SignalDecision::Deliver(plan, None)
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
        let SignalDecision::Deliver(plan, None) = send(&f, &approve(), false, NOW, None) else {
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
        assert_eq!(send(&f, &approve(), true, NOW, None).outcome(), Ok(false));
        f.status = WorkflowStatus::Completed;
        assert_eq!(send(&f, &approve(), true, NOW, None).outcome(), Ok(false));
    }

    #[test]
    fn an_ended_workflow_refuses_a_new_signal() {
        let mut f = facts_running(7, 1);
        f.status = WorkflowStatus::Cancelled;
        let mut d = send(&f, &approve(), false, NOW, None);
        assert!(d.plan_mut().is_none());
        assert_eq!(d.outcome(), Err(WorkflowStatus::Cancelled));
    }

    fn holder(run_id: &str) -> DirectClaim {
        DirectClaim {
            owner: "w-1".into(),
            run_id: run_id.into(),
            lease_ms: 30_000,
        }
    }

    #[test]
    fn an_idle_workflow_is_claimed_for_the_worker_that_holds_it() {
        let mut f = facts_running(7, 1);
        f.task = None;
        let run = f.run_id.clone();
        let d = send(&f, &approve(), false, NOW, Some(&holder(&run)));
        assert_eq!(d.claimed_token(), Some(f.wft_token + 1));
        let SignalDecision::Deliver(plan, _) = d else {
            panic!()
        };
        assert!(!plan.wake, "the holder runs the task: nobody else is woken");
        assert_eq!(
            plan.effects,
            vec![
                Effect::BumpWorkflowTaskToken,
                Effect::WorkflowTask(WorkflowTaskEffect::Lease {
                    owner: "w-1".into(),
                    until_ms: NOW + 30_000
                })
            ]
        );
        let token = f.wft_token;
        f.advance(&plan);
        assert_eq!(f.wft_token, token + 1);
        assert_eq!(f.task, Some(crate::engine::TaskState::Running));
    }

    #[test]
    fn a_pending_or_running_task_or_another_run_is_not_claimed() {
        let mut f = facts_running(7, 1);
        let run = f.run_id.clone();
        for task in [
            Some(crate::engine::TaskState::Pending),
            Some(crate::engine::TaskState::Running),
        ] {
            f.task = task;
            let d = send(&f, &approve(), false, NOW, Some(&holder(&run)));
            assert_eq!(d.claimed_token(), None);
        }
        f.task = None;
        let d = send(&f, &approve(), false, NOW, Some(&holder("another-run")));
        assert_eq!(d.claimed_token(), None);
        let SignalDecision::Deliver(plan, None) = d else {
            panic!()
        };
        assert!(plan.wake);
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
