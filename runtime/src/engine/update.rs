//! Updates: a client's update that the workflow's validator accepted is recorded as
//! `UpdateAccepted`, guarded by the history the validation saw (so the validator judged the
//! workflow's current state); the workflow's answer is its `UpdateCompleted` command, whose
//! commit wakes the waiting client (in other processes too). A rejected update writes nothing:
//! the validator runs before this decision.

use super::facts::{WorkflowFacts, WorkflowStatus};
use super::plan::{Effect, Guard, Plan, WorkflowTaskEffect};
use super::workflow_task::CommitState;
use crate::history::EventKind;
use serde_json::Value;

/// An update a client requested and the validator accepted.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct NewUpdate {
    /// Its id: a repeated request with the same id gets the same answer.
    pub update_id: String,
    /// The update's registered name.
    pub name: String,
    /// The update, as JSON.
    pub input: Value,
    /// The next event number of the history the validator ran against.
    pub validated_at: u64,
}

/// What accepting an update does.
#[derive(Debug)]
pub(crate) enum UpdateAdmission {
    /// The workflow ended.
    Ended(WorkflowStatus),
    /// The history moved on since the validation: validate again (nothing written).
    Stale,
    /// The plan recording the update.
    Accept(Plan),
}

impl UpdateAdmission {
    /// The plan the store applies, if the decision writes anything.
    pub(crate) fn plan_mut(&mut self) -> Option<&mut Plan> {
        match self {
            UpdateAdmission::Accept(plan) => Some(plan),
            UpdateAdmission::Ended(_) | UpdateAdmission::Stale => None,
        }
    }

    /// What the client hears: the seq of `UpdateAccepted` once the plan is applied, `Ok(None)` to
    /// validate again, `Err(status)` when the workflow ended.
    pub(crate) fn outcome(&self) -> Result<Option<u64>, WorkflowStatus> {
        match self {
            UpdateAdmission::Accept(plan) => Ok(plan.guard.next_event_seq),
            UpdateAdmission::Stale => Ok(None),
            UpdateAdmission::Ended(status) => Err(*status),
        }
    }
}

/// Decides an update whose validator passed against the history up to `validated_at - 1`.
pub(crate) fn accept(facts: &WorkflowFacts, update: &NewUpdate, now: i64) -> UpdateAdmission {
    if !facts.running() {
        return UpdateAdmission::Ended(facts.status);
    }
    if facts.next_event_seq != update.validated_at {
        return UpdateAdmission::Stale;
    }
    let guard = Guard {
        next_event_seq: Some(update.validated_at),
        wft_token: None,
        running: true,
    };
    let mut plan = Plan::new(&facts.workflow_id, guard, now);
    plan.append(EventKind::UpdateAccepted {
        update_id: update.update_id.clone(),
        update_name: update.name.clone(),
        input: update.input.clone(),
    });
    plan.effects
        .push(Effect::WorkflowTask(WorkflowTaskEffect::Enqueue {
            at_ms: now,
        }));
    plan.wake = true;
    UpdateAdmission::Accept(plan)
}

/// A workflow task answers an update (`UpdateCompleted`): the client waiting for the answer may
/// be in another process, so the commit wakes it.
pub(crate) fn complete(st: &mut CommitState) {
    st.plan.wake = true;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testkit::*;

    fn set_limit(validated_at: u64) -> NewUpdate {
        NewUpdate {
            update_id: "u-1".into(),
            name: "SetLimit".into(),
            input: serde_json::json!({"limit": 5}),
            validated_at,
        }
    }

    #[test]
    fn an_update_validated_on_the_current_history_is_accepted() {
        let f = facts_running(9, 1);
        let d = accept(&f, &set_limit(9), NOW);
        assert_eq!(d.outcome(), Ok(Some(9)));
        let UpdateAdmission::Accept(plan) = d else {
            panic!()
        };
        assert_eq!(plan.guard.next_event_seq, Some(9));
        assert!(plan.guard.running);
        assert_eq!(
            plan.events,
            vec![EventKind::UpdateAccepted {
                update_id: "u-1".into(),
                update_name: "SetLimit".into(),
                input: serde_json::json!({"limit": 5}),
            }]
        );
        assert!(plan.wake);
    }

    #[test]
    fn a_history_that_moved_on_asks_for_a_new_validation() {
        let f = facts_running(10, 1);
        let mut d = accept(&f, &set_limit(9), NOW);
        assert!(d.plan_mut().is_none());
        assert_eq!(d.outcome(), Ok(None));
    }

    #[test]
    fn an_ended_workflow_takes_no_update() {
        let mut f = facts_running(9, 1);
        f.status = WorkflowStatus::Failed;
        assert_eq!(
            accept(&f, &set_limit(9), NOW).outcome(),
            Err(WorkflowStatus::Failed)
        );
    }

    #[test]
    fn a_commit_that_answers_an_update_wakes_its_client() {
        let f = facts_running(5, 3);
        let c = crate::engine::WorkflowTaskCommit {
            workflow_id: "wf".into(),
            token: 3,
            processed_through: 4,
            task_time_ms: NOW,
            commands: vec![EventKind::UpdateCompleted {
                update_id: "u-1".into(),
                outcome: Ok(serde_json::json!(10)),
            }],
            eager: None,
            local_lease: None,
        };
        let (plan, _) = crate::engine::workflow_task::commit(&f, &c, vec![], NOW).unwrap();
        assert!(plan.wake);
        assert_eq!(plan.events.len(), 2); // the answer, then the marker
    }
}
