//! Local activities: run by the workflow's own worker, their outcome recorded as a marker (or as
//! `ActivityCancelled`), once.

use super::facts::{TaskState, WorkflowFacts};
use super::plan::{Effect, Guard, Plan, WorkflowTaskEffect};
use super::workflow_task::LocalLease;
use crate::error::ActivityError;
use crate::history::format::names;
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

/// What the worker running a workflow's local activities asks of the task it keeps leased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LeaseRequest {
    /// Only look for events the workflow has not seen.
    Check,
    /// Extend the lease, unless the workflow has events it has not seen.
    Extend(LocalLease),
    /// Give the task up now (its local activities stopped here): any worker may take it.
    Release,
}

/// What became of a lease kept for local activities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LeaseState {
    /// Still the worker's: nothing new happened to the workflow.
    Held,
    /// The task is pending again, due now: the workflow has events it has not seen (an outcome of
    /// its local activities, a fired timer, an activity's outcome, a cancel request), or the
    /// worker gave it up.
    Released,
    /// The worker's token no longer holds the task (another task was claimed, or the workflow
    /// ended): nothing is written.
    Lost,
}

/// Decides a [`LeaseRequest`] on the workflow task leased with `token` to a worker whose workflow
/// saw the history through `facts.unseen` (the events after what it saw, read by the store). An
/// attempt's start is not delivered to workflow code, so it does not count.
pub(crate) fn renew(
    facts: &WorkflowFacts,
    token: i64,
    request: &LeaseRequest,
    now: i64,
) -> (LeaseState, Option<Plan>) {
    if !facts.running() || facts.wft_token != token || facts.task != Some(TaskState::Running) {
        return (LeaseState::Lost, None);
    }
    let unseen = facts
        .unseen
        .iter()
        .any(|(_, name)| name != names::ACTIVITY_STARTED && name != names::CHILD_WORKFLOW_STARTED);
    let effect = match request {
        _ if unseen => WorkflowTaskEffect::Requeue { at_ms: now },
        LeaseRequest::Release => WorkflowTaskEffect::Requeue { at_ms: now },
        LeaseRequest::Check => return (LeaseState::Held, None),
        LeaseRequest::Extend(lease) => WorkflowTaskEffect::Lease {
            owner: lease.worker_id.clone(),
            until_ms: lease.until_ms,
        },
    };
    let released = matches!(effect, WorkflowTaskEffect::Requeue { .. });
    let mut plan = Plan::new(
        &facts.workflow_id,
        Guard {
            next_event_seq: None,
            wft_token: Some(token),
            running: true,
        },
        now,
    );
    plan.effects.push(Effect::WorkflowTask(effect));
    plan.wake = released;
    let state = if released {
        LeaseState::Released
    } else {
        LeaseState::Held
    };
    (state, Some(plan))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testkit::*;

    fn lease() -> LeaseRequest {
        LeaseRequest::Extend(LocalLease {
            worker_id: "w".into(),
            until_ms: NOW + 9_000,
        })
    }

    #[test]
    fn a_lease_with_nothing_new_is_extended_or_only_checked() {
        let f = facts_running(6, 3);
        let (state, plan) = renew(&f, 3, &lease(), NOW);
        assert_eq!(state, LeaseState::Held);
        let plan = plan.unwrap();
        assert_eq!(plan.guard.wft_token, Some(3));
        assert_eq!(
            plan.effects,
            vec![Effect::WorkflowTask(WorkflowTaskEffect::Lease {
                owner: "w".into(),
                until_ms: NOW + 9_000
            })]
        );
        assert_eq!(
            renew(&f, 3, &LeaseRequest::Check, NOW),
            (LeaseState::Held, None)
        );
    }

    #[test]
    fn unseen_events_or_a_release_put_the_task_back_due_now() {
        let mut f = facts_running(8, 3);
        // An attempt's start is not news to the workflow.
        f.unseen = vec![(6, names::ACTIVITY_STARTED.into())];
        assert_eq!(renew(&f, 3, &LeaseRequest::Check, NOW).0, LeaseState::Held);
        f.unseen.push((7, names::LOCAL_ACTIVITY_MARKER.into()));
        for request in [LeaseRequest::Check, lease()] {
            let (state, plan) = renew(&f, 3, &request, NOW);
            assert_eq!(state, LeaseState::Released);
            let plan = plan.unwrap();
            assert_eq!(
                plan.effects,
                vec![Effect::WorkflowTask(WorkflowTaskEffect::Requeue {
                    at_ms: NOW
                })]
            );
            assert!(plan.wake);
        }
        f.unseen.clear();
        assert_eq!(
            renew(&f, 3, &LeaseRequest::Release, NOW).0,
            LeaseState::Released
        );
    }

    #[test]
    fn another_token_a_pending_task_or_an_ended_workflow_is_lost() {
        let f = facts_running(6, 3);
        assert_eq!(renew(&f, 2, &lease(), NOW), (LeaseState::Lost, None));
        let mut pending = f.clone();
        pending.task = Some(TaskState::Pending);
        assert_eq!(renew(&pending, 3, &lease(), NOW), (LeaseState::Lost, None));
        let mut ended = f;
        ended.status = crate::engine::WorkflowStatus::Completed;
        assert_eq!(
            renew(&ended, 3, &LeaseRequest::Release, NOW),
            (LeaseState::Lost, None)
        );
    }

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
