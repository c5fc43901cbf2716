//! Markers: the `PatchMarker` and `SideEffectMarker` commands (`ctx.patched`,
//! `ctx.deprecate_patch`, `ctx.side_effect`). They are facts the workflow's code records for its
//! own replay: appended to the history like every command, with no task, timer or wake-up.

use super::workflow_task::CommitState;
use crate::history::EventKind;

/// Whether a command is a marker.
pub(crate) fn is_marker(cmd: &EventKind) -> bool {
    matches!(
        cmd,
        EventKind::PatchMarker { .. } | EventKind::SideEffectMarker { .. }
    )
}

/// A marker command: the commit appends it (as it does every command) and plans nothing else. A
/// marker alone still ends the workflow task like any commit (the code ran and recorded it).
pub(crate) fn record(_st: &mut CommitState<'_>, cmd: &EventKind) {
    debug_assert!(is_marker(cmd));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan::{Effect, WorkflowTaskEffect};
    use crate::engine::testkit::*;
    use crate::engine::workflow_task::{commit, WorkflowTaskCommit};

    fn commit_of(commands: Vec<EventKind>) -> WorkflowTaskCommit {
        WorkflowTaskCommit {
            workflow_id: "wf".into(),
            token: 3,
            processed_through: 4,
            task_time_ms: NOW,
            commands,
            eager: None,
            local_lease: None,
        }
    }

    fn patch(id: &str) -> EventKind {
        EventKind::PatchMarker {
            patch_id: id.into(),
            deprecated: false,
        }
    }

    #[test]
    fn markers_are_appended_in_program_order_before_the_task_marker() {
        let side = EventKind::SideEffectMarker {
            side_effect_seq: 1,
            value: 7.into(),
        };
        let c = commit_of(vec![patch("p"), side.clone(), timer_started(2, NOW + 5)]);
        let (plan, outcome) = commit(&facts_running(5, 3), &c, vec![], NOW).unwrap();
        assert_eq!(plan.events[0], patch("p"));
        assert_eq!(plan.events[1], side);
        assert!(matches!(plan.events[2], EventKind::TimerStarted { .. }));
        assert!(matches!(
            plan.events[3],
            EventKind::WorkflowTaskCompleted { .. }
        ));
        assert_eq!(
            outcome.marker_seq, 8,
            "events 5, 6, 7, then the task's marker"
        );
    }

    #[test]
    fn a_marker_plans_no_task_timer_or_wake_up() {
        let c = commit_of(vec![patch("p")]);
        let (plan, outcome) = commit(&facts_running(5, 3), &c, vec![], NOW).unwrap();
        assert_eq!(
            plan.effects,
            vec![
                Effect::ClearHeld,
                Effect::WorkflowTask(WorkflowTaskEffect::Complete)
            ]
        );
        assert!(!plan.wake);
        assert!(!outcome.rerun);
    }

    #[test]
    fn only_patch_and_side_effect_markers_are_markers() {
        assert!(is_marker(&patch("p")));
        assert!(!is_marker(&timer_started(1, NOW)));
        assert!(!is_marker(&EventKind::WorkflowTaskCompleted {
            processed_through: 1,
            task_time_ms: NOW
        }));
    }
}
