//! Durable timers: the `TimerStarted` and `TimerCancelled` commands, and a timer's firing.

use super::facts::WorkflowFacts;
use super::plan::{Effect, Guard, Plan, WorkflowTaskEffect};
use super::workflow_task::CommitState;
use crate::history::EventKind;

/// The timer number reserved for the workflow's execution timeout (workflow timers count from 1).
pub(crate) const EXECUTION_TIMEOUT_TIMER: u64 = 0;

/// `TimerStarted`: a timer row that fires at `fire_at_ms`.
pub(crate) fn start(st: &mut CommitState<'_>, timer_seq: u64, fire_at_ms: i64) {
    st.plan.effects.push(Effect::UpsertTimer {
        timer_seq,
        fire_at_ms,
    });
    st.plan.wake = true;
}

/// `TimerCancelled`: the workflow dropped the timer before it fired.
pub(crate) fn cancel(st: &mut CommitState<'_>, timer_seq: u64) {
    st.plan.effects.push(Effect::DeleteTimer { timer_seq });
}

/// A due timer: removed, and if the workflow still runs, `TimerFired` and a workflow task (the
/// execution-timeout timer ends the workflow instead: see [`super::close::execution_timeout`]).
/// `workflow`: the workflow's facts, `None` when it no longer exists.
pub(crate) fn fire(
    workflow_id: &str,
    workflow: Option<&WorkflowFacts>,
    timer_seq: u64,
    now: i64,
) -> Plan {
    if timer_seq == EXECUTION_TIMEOUT_TIMER {
        if let Some(plan) = workflow
            .filter(|w| w.running())
            .map(|w| super::close::execution_timeout(w, now))
        {
            return plan;
        }
    }
    let mut plan = Plan::new(workflow_id, Guard::append(), now);
    plan.effects.push(Effect::DeleteTimer { timer_seq });
    if workflow.is_some_and(|w| w.running()) && timer_seq != EXECUTION_TIMEOUT_TIMER {
        plan.append(EventKind::TimerFired { timer_seq });
        plan.effects
            .push(Effect::WorkflowTask(WorkflowTaskEffect::Enqueue {
                at_ms: now,
            }));
        plan.wake = true;
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testkit::*;
    use crate::engine::ClosedAs;

    #[test]
    fn a_fired_timer_appends_and_wakes_the_workflow() {
        let f = facts_running(5, 1);
        let plan = fire("wf", Some(&f), 2, NOW);
        assert_eq!(plan.events, vec![EventKind::TimerFired { timer_seq: 2 }]);
        assert_eq!(
            plan.effects,
            vec![
                Effect::DeleteTimer { timer_seq: 2 },
                Effect::WorkflowTask(WorkflowTaskEffect::Enqueue { at_ms: NOW })
            ]
        );
    }

    #[test]
    fn a_timer_of_an_ended_workflow_is_only_removed() {
        let mut f = facts_running(5, 1);
        f.status = crate::engine::WorkflowStatus::Cancelled;
        for plan in [fire("wf", Some(&f), 2, NOW), fire("wf", None, 2, NOW)] {
            assert!(plan.events.is_empty());
            assert_eq!(plan.effects, vec![Effect::DeleteTimer { timer_seq: 2 }]);
        }
    }

    #[test]
    fn the_execution_timeout_timer_fails_the_workflow() {
        let f = facts_running(5, 1);
        let plan = fire("wf", Some(&f), EXECUTION_TIMEOUT_TIMER, NOW);
        assert!(matches!(
            plan.events.as_slice(),
            [EventKind::WorkflowFailed { .. }]
        ));
        assert!(matches!(plan.closes(), Some(ClosedAs::Failed(_))));
    }

    #[test]
    fn commands_start_and_cancel_timers() {
        let f = facts_running(5, 3);
        let c = crate::engine::WorkflowTaskCommit {
            workflow_id: "wf".into(),
            token: 3,
            processed_through: 4,
            task_time_ms: NOW,
            commands: vec![
                timer_started(1, NOW + 5),
                EventKind::TimerCancelled { timer_seq: 1 },
            ],
            eager: None,
            local_lease: None,
        };
        let (plan, _) = crate::engine::workflow_task::commit(&f, &c, vec![], NOW).unwrap();
        assert_eq!(
            plan.effects[..2],
            [
                Effect::UpsertTimer {
                    timer_seq: 1,
                    fire_at_ms: NOW + 5
                },
                Effect::DeleteTimer { timer_seq: 1 }
            ]
        );
    }
}
