//! A client's reset of a workflow (Temporal's reset): a new run whose history is the current
//! run's up to (not including) the chosen workflow task's decisions, followed by a
//! `WorkflowReset` event; the current code replays the tasks before it and makes that task's
//! decisions again, from the same events. The run that is reset ends at once (failed
//! `Terminated`, with the reason) if it still ran, and is archived like any earlier run.
//!
//! Work the copied history started and did not see end is started again in the new run: its
//! activity tasks (pending, from attempt 1) and its timers (same firing time). Events after the
//! cut (outcomes the old run saw later, signals it received later) are not copied: the old run's
//! history keeps them.

use super::activity::pending_deadline;
use super::continue_as_new::first_plan;
use super::facts::{NextRunFacts, WorkflowFacts};
use super::plan::{ClosedAs, Effect, Guard, NewActivityTask, NextRun, Plan};
use crate::error::{Error, Result};
use crate::history::{EventKind, HistoryEvent};
use std::collections::BTreeMap;

/// A client's reset.
#[derive(Clone, Debug)]
pub(crate) struct ResetRequest {
    /// The workflow task (counted from 1, as the history's `workflow_task_completed` markers
    /// number them) whose decisions the current code makes again.
    pub workflow_task: u64,
    /// The new run's id.
    pub new_run_id: String,
    /// Why, as the client says: recorded in both runs.
    pub reason: String,
}

/// Where the copy of `history` ends for a reset to `task`: the number of events before the
/// task's first decision (its first command, or its marker when it had none).
fn cut(history: &[HistoryEvent], task: u64, workflow_id: &str) -> Result<usize> {
    let markers: Vec<usize> = history
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e.kind, EventKind::WorkflowTaskCompleted { .. }))
        .map(|(i, _)| i)
        .collect();
    if task == 0 || task as usize > markers.len() {
        return Err(Error::InvalidOption(format!(
            "workflow `{workflow_id}` has {} completed workflow task(s); reset to one of 1..={} \
             (`duraflow history {workflow_id}` shows them: each `workflow_task_completed` event \
             ends one, numbered from 1)",
            markers.len(),
            markers.len().max(1)
        )));
    }
    let marker = markers[task as usize - 1];
    let after_previous = if task == 1 {
        0
    } else {
        markers[task as usize - 2] + 1
    };
    // The task's decisions: its commands, which directly precede its marker.
    let mut first = marker;
    while first > after_previous && history[first - 1].kind.is_command() {
        first -= 1;
    }
    Ok(first)
}

/// Plans a reset of the run `facts` (its `history`, its execution `deadline`) to
/// `req.workflow_task`.
pub(crate) fn reset(
    facts: &WorkflowFacts,
    history: &[HistoryEvent],
    deadline: Option<i64>,
    req: &ResetRequest,
    now: i64,
) -> Result<Plan> {
    let id = &facts.workflow_id;
    let Some(EventKind::WorkflowStarted {
        workflow_type,
        input,
        task_queue,
        ..
    }) = history.first().map(|e| &e.kind)
    else {
        return Err(crate::error::corrupt(format!(
            "workflow `{id}`: its history does not begin with `workflow_started`"
        )));
    };
    let cut = cut(history, req.workflow_task, id)?;
    let mut plan = Plan::new(
        id,
        Guard {
            next_event_seq: Some(facts.next_event_seq),
            wft_token: None,
            running: facts.running(),
        },
        now,
    );
    if facts.running() {
        let error = super::terminate::terminated_error(&format!(
            "reset to workflow task {} (new run {}): {}",
            req.workflow_task, req.new_run_id, req.reason
        ));
        plan.append(EventKind::WorkflowFailed {
            error: error.clone(),
        });
        plan.effects.push(Effect::Close(ClosedAs::Failed(error)));
    }
    let next = NextRun {
        run_id: req.new_run_id.clone(),
        workflow_type: workflow_type.clone(),
        task_queue: task_queue.clone(),
        input: input.clone(),
    };
    plan.effects.push(Effect::ArchiveRun {
        next_run_id: next.run_id.clone(),
    });
    plan.effects.push(Effect::ReplaceRun(next.clone()));

    // The copy: everything before the cut but its first event (the new run's own start, with
    // the original input and run id, comes first).
    let copied: Vec<EventKind> = history[..cut].iter().map(|e| e.kind.clone()).collect();
    let mut first = first_plan(
        id,
        &next,
        EventKind::WorkflowReset {
            previous_run_id: facts.run_id.clone(),
            workflow_task: req.workflow_task,
            reason: req.reason.clone(),
        },
        Vec::new(),
        &NextRunFacts {
            late_signals: Vec::new(),
            execution_deadline_ms: deadline,
        },
        now,
    );
    // `first_plan` wrote [start, link]: the copy replaces the start (it begins with the
    // original one), and the link goes after it.
    let link = first.events.pop();
    first.events = copied.clone();
    first.events.extend(link);
    // Work the copy started and did not see end starts again.
    let mut activities: BTreeMap<u64, &EventKind> = BTreeMap::new();
    let mut timers: BTreeMap<u64, i64> = BTreeMap::new();
    let mut cancel_requested = false;
    for e in &copied {
        match e {
            EventKind::ActivityScheduled {
                activity_seq,
                local: false,
                ..
            } => {
                activities.insert(*activity_seq, e);
            }
            EventKind::ActivityCompleted { activity_seq, .. }
            | EventKind::ActivityFailed { activity_seq, .. }
            | EventKind::ActivityTimedOut { activity_seq, .. }
            | EventKind::ActivityCancelled { activity_seq, .. } => {
                activities.remove(activity_seq);
            }
            EventKind::TimerStarted {
                timer_seq,
                fire_at_ms,
            } => {
                timers.insert(*timer_seq, *fire_at_ms);
            }
            EventKind::TimerFired { timer_seq } | EventKind::TimerCancelled { timer_seq } => {
                timers.remove(timer_seq);
            }
            EventKind::WorkflowCancelRequested {} => cancel_requested = true,
            _ => {}
        }
    }
    let mut effects = Vec::new();
    if cancel_requested {
        effects.push(Effect::SetCancelRequested);
    }
    for (seq, e) in activities {
        if let EventKind::ActivityScheduled {
            activity_type,
            input,
            options,
            task_queue,
            ..
        } = e
        {
            effects.push(Effect::InsertActivityTask(NewActivityTask {
                run_id: next.run_id.clone(),
                activity_seq: seq,
                activity_type: activity_type.clone(),
                task_queue: task_queue.clone(),
                input: input.clone(),
                options: options.clone(),
                scheduled_ms: now,
                pending_deadline: pending_deadline(options, now, now, true),
                claimed_by: None,
            }));
        }
    }
    for (timer_seq, fire_at_ms) in timers {
        effects.push(Effect::UpsertTimer {
            timer_seq,
            fire_at_ms,
        });
    }
    effects.append(&mut first.effects);
    first.effects = effects;
    plan.then = Some(Box::new(first));
    plan.wake = true;
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testkit::*;
    use crate::engine::{WorkflowStatus, WorkflowTaskEffect};
    use crate::history::CancellationType;
    use serde_json::json;

    fn ev(seq: u64, kind: EventKind) -> HistoryEvent {
        HistoryEvent {
            seq,
            time_ms: NOW,
            kind,
        }
    }

    fn sched(seq: u64) -> EventKind {
        EventKind::ActivityScheduled {
            activity_seq: seq,
            activity_type: "charge".into(),
            input: json!(seq),
            options: Default::default(),
            task_queue: "q".into(),
            local: false,
            cancellation_type: CancellationType::TryCancel,
        }
    }

    fn marker(p: u64) -> EventKind {
        EventKind::WorkflowTaskCompleted {
            processed_through: p,
            task_time_ms: NOW,
        }
    }

    /// Task 1 schedules #1 and a timer #2; #1 completes; task 2 schedules #3; #3 completes;
    /// task 3 fails the workflow.
    fn history() -> Vec<HistoryEvent> {
        vec![
            ev(
                1,
                EventKind::WorkflowStarted {
                    workflow_type: "order".into(),
                    input: json!(7),
                    task_queue: "q".into(),
                    run_id: "r1".into(),
                },
            ),
            ev(2, sched(1)),
            ev(
                3,
                EventKind::TimerStarted {
                    timer_seq: 2,
                    fire_at_ms: NOW + 5_000,
                },
            ),
            ev(4, marker(1)),
            ev(
                5,
                EventKind::ActivityCompleted {
                    activity_seq: 1,
                    result: json!(1),
                },
            ),
            ev(6, sched(3)),
            ev(7, marker(5)),
            ev(
                8,
                EventKind::ActivityCompleted {
                    activity_seq: 3,
                    result: json!(3),
                },
            ),
            ev(
                9,
                EventKind::WorkflowFailed {
                    error: crate::error::WorkflowError::application("E", "m"),
                },
            ),
            ev(10, marker(8)),
        ]
    }

    fn req(task: u64) -> ResetRequest {
        ResetRequest {
            workflow_task: task,
            new_run_id: "r2".into(),
            reason: "bad deploy".into(),
        }
    }

    #[test]
    fn the_copy_ends_before_the_chosen_tasks_decisions() {
        let h = history();
        assert_eq!(cut(&h, 1, "wf").unwrap(), 1, "task 1: only the start");
        assert_eq!(cut(&h, 2, "wf").unwrap(), 5, "task 2: through #1's outcome");
        assert_eq!(cut(&h, 3, "wf").unwrap(), 8, "task 3: through #3's outcome");
        for bad in [0, 4] {
            let e = cut(&h, bad, "wf").unwrap_err().to_string();
            assert!(e.contains("1..=3"), "{e}");
        }
    }

    #[test]
    fn a_failed_run_resets_to_a_new_run_that_redoes_the_task() {
        let mut f = facts_running(11, 2);
        f.status = WorkflowStatus::Failed;
        f.run_id = "r1".into();
        let plan = reset(&f, &history(), None, &req(2), NOW).unwrap();
        assert!(plan.events.is_empty(), "an ended run gets no event");
        assert!(plan.closes().is_none());
        assert!(
            matches!(&plan.effects[..], [Effect::ArchiveRun { next_run_id }, Effect::ReplaceRun(n)] if next_run_id == "r2" && n.input == json!(7))
        );
        let next = plan.then.as_deref().unwrap();
        assert_eq!(next.guard.next_event_seq, Some(1));
        let kinds: Vec<&str> = next.events.iter().map(|e| e.name()).collect();
        assert_eq!(
            kinds,
            vec![
                "workflow_started",
                "activity_scheduled",
                "timer_started",
                "workflow_task_completed",
                "activity_completed",
                "workflow_reset"
            ]
        );
        // The timer the copy started and did not see fire is set again; #1 ended; a task is due.
        assert!(next.effects.contains(&Effect::UpsertTimer {
            timer_seq: 2,
            fire_at_ms: NOW + 5_000
        }));
        assert!(!next
            .effects
            .iter()
            .any(|e| matches!(e, Effect::InsertActivityTask(_))));
        assert!(next
            .effects
            .contains(&Effect::WorkflowTask(WorkflowTaskEffect::Enqueue {
                at_ms: NOW
            })));
    }

    #[test]
    fn a_running_run_is_terminated_and_its_pending_activity_starts_again() {
        let mut f = facts_running(11, 2);
        f.run_id = "r1".into();
        // Reset to task 2 of a history cut after task 1: #1 has not ended in the copy.
        let h: Vec<HistoryEvent> = history().into_iter().take(4).collect();
        let h = [h, vec![ev(5, marker(4))]].concat();
        let plan = reset(&f, &h, Some(NOW + 60_000), &req(2), NOW).unwrap();
        assert!(
            matches!(plan.closes(), Some(ClosedAs::Failed(e)) if e.to_string().contains("bad deploy"))
        );
        assert_eq!(plan.guard.next_event_seq, Some(11));
        let next = plan.then.as_deref().unwrap();
        assert!(next.effects.iter().any(
            |e| matches!(e, Effect::InsertActivityTask(t) if t.activity_seq == 1 && t.run_id == "r2")
        ));
        assert!(next.effects.contains(&Effect::UpsertTimer {
            timer_seq: 0,
            fire_at_ms: NOW + 60_000
        }));
    }
}
