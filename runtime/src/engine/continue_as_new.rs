//! Continue-as-new: the `WorkflowContinuedAsNew` command ends the run and starts the next run of
//! the same workflow id, with a fresh history, in the same transaction.
//!
//! The commit's plan closes the run (status `continued_as_new`, its tasks and timers withdrawn),
//! moves its row and history into the archive of earlier runs ([`Effect::ArchiveRun`]), puts the
//! new run in the workflow row ([`Effect::ReplaceRun`]), and chains the new run's first plan
//! ([`Plan::then`]): `WorkflowStarted` with the new input, `RunContinued` naming the run before,
//! the signals the old run had not read (carried in the command, then those recorded after the
//! committing task's last seen event, read as facts), its first workflow task, and the execution
//! deadline, which spans the chain of runs as Temporal's workflow execution timeout does.

use super::facts::NextRunFacts;
use super::plan::{ClosedAs, Effect, Guard, NextRun, Plan};
use super::workflow_task::CommitState;
use crate::history::EventKind;

/// The `RunContinued` cause of a run started by continue-as-new.
pub(crate) const CAUSE: &str = "continue_as_new";

/// Whether a task's commands continue the workflow as new: the store then reads
/// [`NextRunFacts`] for the commit.
pub(crate) fn continues(commands: &[EventKind]) -> bool {
    commands
        .iter()
        .any(|c| matches!(c, EventKind::WorkflowContinuedAsNew { .. }))
}

/// Plans the command: the run ends, is archived, and the next run starts (chained plan).
pub(crate) fn command(st: &mut CommitState<'_>, cmd: &EventKind) {
    let EventKind::WorkflowContinuedAsNew {
        new_run_id,
        workflow_type,
        task_queue,
        input,
        carried_signals,
    } = cmd
    else {
        return;
    };
    let inherited = st.facts.next_run.clone().unwrap_or_default();
    let next = NextRun {
        run_id: new_run_id.clone(),
        workflow_type: workflow_type.clone(),
        task_queue: task_queue.clone(),
        input: input.clone(),
    };
    let mut signals: Vec<EventKind> = carried_signals
        .iter()
        .map(|s| EventKind::SignalReceived {
            signal_name: s.signal_name.clone(),
            input: s.input.clone(),
            request_id: s.request_id.clone(),
        })
        .collect();
    signals.extend(inherited.late_signals.iter().cloned());
    st.plan
        .effects
        .push(Effect::Close(ClosedAs::ContinuedAsNew(new_run_id.clone())));
    st.plan.effects.push(Effect::ArchiveRun {
        next_run_id: new_run_id.clone(),
    });
    st.plan.effects.push(Effect::ReplaceRun(next.clone()));
    st.plan.then = Some(Box::new(first_plan(
        &st.facts.workflow_id,
        &next,
        EventKind::RunContinued {
            previous_run_id: st.facts.run_id.clone(),
            cause: CAUSE.to_string(),
        },
        signals,
        &inherited,
        st.plan.time_ms,
    )));
    st.plan.wake = true;
}

/// The first plan of a run that follows another in the same transaction: its events are numbered
/// from 1 (the row was just replaced): `WorkflowStarted`, the `link` to the run before, then
/// `rest` (carried signals, or a reset's copied events); its execution deadline and first
/// workflow task.
pub(crate) fn first_plan(
    workflow_id: &str,
    next: &NextRun,
    link: EventKind,
    rest: Vec<EventKind>,
    inherited: &NextRunFacts,
    now: i64,
) -> Plan {
    let mut plan = Plan::new(
        workflow_id,
        Guard {
            next_event_seq: Some(1),
            wft_token: None,
            running: true,
        },
        now,
    );
    plan.append(EventKind::WorkflowStarted {
        workflow_type: next.workflow_type.clone(),
        input: next.input.clone(),
        task_queue: next.task_queue.clone(),
        run_id: next.run_id.clone(),
    });
    plan.append(link);
    for e in rest {
        plan.append(e);
    }
    super::start::begin_run(&mut plan, inherited.execution_deadline_ms, now);
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testkit::*;
    use crate::engine::workflow_task::{commit, WorkflowTaskCommit};
    use crate::history::CarriedSignal;
    use serde_json::json;

    fn can(carried: Vec<CarriedSignal>) -> EventKind {
        EventKind::WorkflowContinuedAsNew {
            new_run_id: "r2".into(),
            workflow_type: "loop".into(),
            task_queue: "q".into(),
            input: json!([100, 4950]),
            carried_signals: carried,
        }
    }

    fn commit_of(cmds: Vec<EventKind>, processed_through: u64) -> WorkflowTaskCommit {
        WorkflowTaskCommit {
            workflow_id: "wf".into(),
            token: 3,
            processed_through,
            task_time_ms: NOW,
            commands: cmds,
            eager: None,
            local_lease: None,
        }
    }

    fn signal(name: &str, req: &str) -> EventKind {
        EventKind::SignalReceived {
            signal_name: name.into(),
            input: json!(1),
            request_id: req.into(),
        }
    }

    #[test]
    fn the_run_ends_is_archived_and_the_next_starts_in_one_plan() {
        let mut f = facts_running(9, 3);
        f.run_id = "r1".into();
        f.next_run = Some(NextRunFacts {
            late_signals: vec![signal("Add", "late")],
            execution_deadline_ms: Some(NOW + 60_000),
        });
        let carried = vec![CarriedSignal {
            signal_name: "Add".into(),
            input: json!(1),
            request_id: "unread".into(),
        }];
        let (plan, outcome) = commit(&f, &commit_of(vec![can(carried)], 8), vec![], NOW).unwrap();
        assert!(!outcome.rerun);
        // The old run: the command, its marker, closed continued-as-new, archived, replaced.
        assert_eq!(plan.events.len(), 2);
        assert_eq!(plan.closes(), Some(&ClosedAs::ContinuedAsNew("r2".into())));
        let pos = |e: &Effect| plan.effects.iter().position(|x| x == e).unwrap();
        let close = pos(&Effect::Close(ClosedAs::ContinuedAsNew("r2".into())));
        let archive = pos(&Effect::ArchiveRun {
            next_run_id: "r2".into(),
        });
        assert!(close < archive, "the row is closed before it is archived");
        assert!(matches!(plan.effects.last(), Some(Effect::ReplaceRun(n)) if n.run_id == "r2"));
        // The new run: numbered from 1, linked, the unread then the late signal, a task, the
        // chain's deadline.
        let next = plan.then.as_deref().unwrap();
        assert_eq!(next.guard.next_event_seq, Some(1));
        assert!(next.guard.running);
        assert_eq!(
            next.events[1],
            EventKind::RunContinued {
                previous_run_id: "r1".into(),
                cause: CAUSE.into()
            }
        );
        assert_eq!(
            &next.events[2..],
            &[signal("Add", "unread"), signal("Add", "late")]
        );
        assert!(
            matches!(next.events[0], EventKind::WorkflowStarted { ref run_id, ref input, .. } if run_id == "r2" && *input == json!([100, 4950]))
        );
        assert!(next.effects.contains(&Effect::UpsertTimer {
            timer_seq: 0,
            fire_at_ms: NOW + 60_000
        }));
        assert!(next.effects.contains(&Effect::WorkflowTask(
            crate::engine::plan::WorkflowTaskEffect::Enqueue { at_ms: NOW }
        )));
        assert!(next.then.is_none());
    }

    #[test]
    fn a_stale_token_continues_nothing() {
        let f = facts_running(9, 4);
        assert!(commit(&f, &commit_of(vec![can(vec![])], 8), vec![], NOW).is_none());
    }

    #[test]
    fn only_the_command_asks_for_next_run_facts() {
        assert!(continues(&[can(vec![])]));
        assert!(!continues(&[EventKind::WorkflowCompleted {
            result: json!(1)
        }]));
    }
}
