//! A workflow's end: the `WorkflowCompleted`, `WorkflowFailed` and `WorkflowCancelled` commands,
//! and the execution timeout.

use super::facts::WorkflowFacts;
use super::plan::{ClosedAs, Effect, Guard, Plan};
use super::workflow_task::CommitState;
use crate::error::WorkflowError;
use crate::history::EventKind;

/// Whether a command ends the run (continue-as-new ends it too: another run follows).
pub(crate) fn is_close(cmd: &EventKind) -> bool {
    closed_as(cmd).is_some() || matches!(cmd, EventKind::WorkflowContinuedAsNew { .. })
}

fn closed_as(cmd: &EventKind) -> Option<ClosedAs> {
    match cmd {
        EventKind::WorkflowCompleted { result } => Some(ClosedAs::Completed(result.clone())),
        EventKind::WorkflowFailed { error } => Some(ClosedAs::Failed(error.clone())),
        EventKind::WorkflowCancelled {} => Some(ClosedAs::Cancelled),
        _ => None,
    }
}

/// A closing command: the workflow's status and result, and everything it still had withdrawn
/// (its running attempts hear a cancel).
pub(crate) fn command(st: &mut CommitState<'_>, cmd: &EventKind) {
    if let Some(c) = closed_as(cmd) {
        st.plan.effects.push(Effect::Close(c));
        st.plan.wake = true;
        st.plan.linked = st.facts.linked || !st.children_started.is_empty();
    }
}

/// The error a workflow ends with when it runs past its execution timeout.
pub(crate) fn execution_timeout_error() -> WorkflowError {
    WorkflowError::application(
        "ExecutionTimeout",
        "the workflow ran past its execution_timeout",
    )
}

/// The execution-timeout timer fired on a running workflow: it ends failed, whatever it was doing.
pub(crate) fn execution_timeout(facts: &WorkflowFacts, now: i64) -> Plan {
    let error = execution_timeout_error();
    let mut plan = Plan::new(&facts.workflow_id, Guard::append_while_running(), now);
    plan.append(EventKind::WorkflowFailed {
        error: error.clone(),
    });
    plan.effects.push(Effect::DeleteTimer {
        timer_seq: super::timer::EXECUTION_TIMEOUT_TIMER,
    });
    plan.effects.push(Effect::Close(ClosedAs::Failed(error)));
    plan.wake = true;
    plan.linked = facts.linked;
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testkit::*;
    use crate::engine::workflow_task::{commit, WorkflowTaskCommit};

    #[test]
    fn each_closing_command_closes_with_its_result() {
        for (cmd, closed) in [
            (
                EventKind::WorkflowCompleted { result: 3.into() },
                ClosedAs::Completed(3.into()),
            ),
            (
                EventKind::WorkflowFailed {
                    error: WorkflowError::application("E", "m"),
                },
                ClosedAs::Failed(WorkflowError::application("E", "m")),
            ),
            (EventKind::WorkflowCancelled {}, ClosedAs::Cancelled),
        ] {
            let f = facts_running(5, 3);
            let c = WorkflowTaskCommit {
                workflow_id: "wf".into(),
                token: 3,
                processed_through: 4,
                task_time_ms: NOW,
                commands: vec![cmd.clone()],
                eager: None,
                local_lease: None,
            };
            let (plan, outcome) = commit(&f, &c, vec![], NOW).unwrap();
            assert_eq!(plan.closes(), Some(&closed));
            assert_eq!(plan.events[0], cmd);
            assert!(!outcome.rerun);
            assert!(plan.wake);
        }
    }

    #[test]
    fn the_execution_timeout_ends_the_run_failed() {
        let plan = execution_timeout(&facts_running(9, 1), NOW);
        assert_eq!(
            plan.events,
            vec![EventKind::WorkflowFailed {
                error: execution_timeout_error()
            }]
        );
        assert!(plan.guard.running);
    }
}
