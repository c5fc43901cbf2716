//! Workflow tasks: committing a task's commands (each handed to its kind's file), holding a task
//! whose replay does not match, and the one-commit step (an activity's outcome and the workflow's
//! next task committed together).

use super::activity::{self, ActivityResolution, ClaimedActivity, Finish};
use super::facts::{AttemptFacts, TaskState, WorkflowFacts};
use super::plan::{Effect, Guard, Plan, WorkflowTaskEffect};
use super::{close, timer};
use crate::error::Result;
use crate::history::{format, EventKind};
use serde_json::Value;
use std::collections::HashMap;

/// A workflow task a worker has taken.
#[derive(Clone, Debug)]
pub(crate) struct ClaimedWorkflowTask {
    pub workflow_id: String,
    pub run_id: String,
    pub workflow_type: String,
    pub task_queue: String,
    pub token: i64,
}

/// What a workflow task produced.
#[derive(Clone, Debug)]
pub(crate) struct WorkflowTaskCommit {
    pub workflow_id: String,
    pub token: i64,
    /// The last history event the task had seen.
    pub processed_through: u64,
    /// The task's clock, recorded in the `WorkflowTaskCompleted` marker.
    pub task_time_ms: i64,
    /// Command events, in order.
    pub commands: Vec<EventKind>,
    /// Take up to this many of the new activity tasks for this worker in the same transaction.
    pub eager: Option<EagerClaim>,
    /// The workflow has local activities this worker runs: keep its task leased to the worker
    /// instead of completing it (see [`LocalLease`]).
    pub local_lease: Option<LocalLease>,
}

/// A workflow task kept leased while its worker runs the workflow's local activities: they are
/// recorded nowhere until they end, so the lease is what brings the workflow back (replayed by
/// any worker, its local activities started again from attempt 1) should that worker stop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LocalLease {
    /// The worker that runs the local activities.
    pub worker_id: String,
    /// The lease ends here unless renewed.
    pub until_ms: i64,
}

/// Claim new activity tasks in the commit that creates them (this worker runs those types).
#[derive(Clone, Debug)]
pub(crate) struct EagerClaim {
    pub worker_id: String,
    pub activity_types: Vec<String>,
    pub queues: Vec<String>,
    pub max: usize,
}

/// The result of a workflow task commit.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct CommitOutcome {
    /// New events arrived meanwhile: the workflow task was put back as pending.
    pub rerun: bool,
    /// Activity tasks claimed for this worker in the same transaction.
    pub eager: Vec<ClaimedActivity>,
    /// The sequence number of the `WorkflowTaskCompleted` marker this commit appended: every command
    /// event up to it is this task's own.
    pub marker_seq: u64,
}

/// The next workflow task, computed in memory by the worker that ran an activity, to commit with the
/// activity's outcome when its instance saw everything else.
#[derive(Clone, Debug)]
pub(crate) struct Continuation {
    /// The commit; its `token` is unused and its `processed_through` is set to the new event's seq.
    pub commit: WorkflowTaskCommit,
    /// The last event the instance had seen.
    pub delivered_through: u64,
    /// The instance's own last marker.
    pub own_marker_seq: u64,
}

/// What `finish_activity_and_continue` did.
#[derive(Clone, Debug)]
pub(crate) struct FinishOutcome {
    /// False when the attempt's token no longer matched: nothing was written.
    pub recorded: bool,
    /// The continuation was committed: the activity event's seq (the task's `processed_through`)
    /// and the commit's outcome. `None`: a workflow task was enqueued instead.
    pub continued: Option<(u64, CommitOutcome)>,
}

/// The working state of one commit while its commands are planned.
pub(crate) struct CommitState<'a> {
    pub facts: &'a WorkflowFacts,
    pub plan: Plan,
    /// The activity tasks as they stand at this point of the commit.
    pub activities: HashMap<u64, (TaskState, Option<Value>)>,
    /// The workflow must run again: something it has not seen happened.
    pub rerun: bool,
}

/// The activity seqs whose task state a commit of `commands` needs in its facts.
pub(crate) fn cancel_targets(commands: &[EventKind]) -> Vec<u64> {
    commands
        .iter()
        .filter_map(|cmd| match cmd {
            EventKind::ActivityCancelRequested { activity_seq } => Some(*activity_seq),
            _ => None,
        })
        .collect()
}

/// Whether the worker's commit may go ahead: its token still holds the running task.
pub(crate) fn may_commit(facts: &WorkflowFacts, token: i64) -> bool {
    facts.running() && facts.wft_token == token && facts.task == Some(TaskState::Running)
}

/// Plans a workflow task's commit: the `lead` events (a continuation's activity outcome), the
/// commands in order (each handed to its kind's file), the marker, the eager claims' starts, and
/// the workflow task ended, or put back when the workflow must run again. `None`: the task's token
/// no longer holds it (nothing is written).
pub(crate) fn commit(
    facts: &WorkflowFacts,
    c: &WorkflowTaskCommit,
    lead: Vec<EventKind>,
    now: i64,
) -> Option<(Plan, CommitOutcome)> {
    if !may_commit(facts, c.token) {
        return None;
    }
    Some(plan_commit(facts, c, lead, false, now))
}

fn plan_commit(
    facts: &WorkflowFacts,
    c: &WorkflowTaskCommit,
    lead: Vec<EventKind>,
    continuation: bool,
    now: i64,
) -> (Plan, CommitOutcome) {
    let guard = Guard {
        next_event_seq: Some(facts.next_event_seq),
        wft_token: (!continuation).then_some(c.token),
        running: true,
    };
    let mut st = CommitState {
        facts,
        plan: Plan::new(&c.workflow_id, guard, now),
        activities: facts.activities.clone(),
        rerun: !continuation && facts.last_seq() > c.processed_through,
    };
    for e in lead {
        st.plan.append(e);
    }
    if continuation {
        st.plan.effects.push(Effect::BumpWorkflowTaskToken);
    }
    let closes = c.commands.iter().any(close::is_close);
    let cancelled = cancel_targets(&c.commands);
    // New tasks of a commit that closes the workflow are withdrawn by the close: none is claimed.
    let eager = c.eager.as_ref().filter(|_| !closes);
    for cmd in &c.commands {
        st.plan.append(cmd.clone());
        match cmd {
            EventKind::ActivityScheduled { activity_seq, .. } => {
                let cancelled_too = cancelled.contains(activity_seq);
                activity::schedule(&mut st, cmd, eager, cancelled_too)
            }
            EventKind::ActivityCancelRequested { activity_seq } => {
                activity::request_cancel(&mut st, *activity_seq)
            }
            EventKind::TimerStarted {
                timer_seq,
                fire_at_ms,
            } => timer::start(&mut st, *timer_seq, *fire_at_ms),
            EventKind::TimerCancelled { timer_seq } => timer::cancel(&mut st, *timer_seq),
            EventKind::WorkflowCompleted { .. }
            | EventKind::WorkflowFailed { .. }
            | EventKind::WorkflowCancelled {} => close::command(&mut st, cmd),
            _ => {}
        }
    }
    let marker_seq = st
        .plan
        .append(EventKind::WorkflowTaskCompleted {
            processed_through: c.processed_through,
            task_time_ms: c.task_time_ms,
        })
        .unwrap_or_default();
    if let Some(e) = eager {
        let started: Vec<EventKind> = st
            .plan
            .claimed
            .iter()
            .map(|t| EventKind::ActivityStarted {
                activity_seq: t.activity_seq,
                attempt: t.attempt,
                worker: e.worker_id.clone(),
            })
            .collect();
        for s in started {
            st.plan.append(s);
        }
    }
    let closed = st.plan.closes().is_some();
    let mut outcome = CommitOutcome {
        marker_seq,
        ..CommitOutcome::default()
    };
    if !closed {
        st.plan.effects.push(Effect::ClearHeld);
        if st.rerun {
            st.plan
                .effects
                .push(Effect::WorkflowTask(WorkflowTaskEffect::Requeue {
                    at_ms: now,
                }));
            st.plan.wake = true;
            outcome.rerun = true;
        } else if let Some(lease) = &c.local_lease {
            st.plan
                .effects
                .push(Effect::WorkflowTask(WorkflowTaskEffect::Lease {
                    owner: lease.worker_id.clone(),
                    until_ms: lease.until_ms,
                }));
        } else {
            st.plan
                .effects
                .push(Effect::WorkflowTask(WorkflowTaskEffect::Complete));
        }
    }
    outcome.eager = st.plan.claimed.clone();
    (st.plan, outcome)
}

/// Puts a workflow task back because its replay does not match the history (or its stored data
/// cannot be read): held with `reason`, retried at `retry_at_ms`. `None` if the token no longer
/// holds the task.
pub(crate) fn hold(
    facts: &WorkflowFacts,
    token: i64,
    reason: &str,
    retry_at_ms: i64,
    now: i64,
) -> Option<Plan> {
    if facts.wft_token != token {
        return None;
    }
    let mut plan = Plan::new(
        &facts.workflow_id,
        Guard {
            next_event_seq: None,
            wft_token: Some(token),
            running: false,
        },
        now,
    );
    plan.effects
        .push(Effect::WorkflowTask(WorkflowTaskEffect::Hold {
            reason: reason.to_string(),
            retry_at_ms,
        }));
    plan.wake = true;
    Some(plan)
}

/// What ending an attempt with a continuation decided.
#[derive(Debug)]
pub(crate) enum ContinueDecision {
    /// The token no longer matches: nothing is written.
    Fenced,
    /// The outcome is recorded the ordinary way (a workflow task is enqueued, if the workflow
    /// runs): the continuation does not apply.
    Recorded(Plan),
    /// The outcome and the continuation's commit, in one plan; the outcome event's seq.
    Continued {
        plan: Plan,
        event_seq: u64,
        outcome: CommitOutcome,
    },
}

/// Whether a worker's instance that has seen the history up to `delivered_through` and wrote
/// everything up to `own_marker_seq` saw every event of the history: its commands, computed with
/// the new event, can then be the workflow's next task. An attempt's start is not delivered to
/// workflow code, so it does not count.
pub(crate) fn saw_everything(facts: &WorkflowFacts, cont: &Continuation) -> bool {
    facts.task.is_none()
        && facts.unseen.iter().all(|(seq, name)| {
            (*seq <= cont.own_marker_seq && format::is_command_or_marker_name(name))
                || name == format::names::ACTIVITY_STARTED
        })
}

/// The one-commit step: ends an attempt and, when the worker's instance saw every other event,
/// commits its next task (with the token bumped, fencing out any claim in flight) in the same
/// plan; else records the outcome and enqueues a workflow task.
#[allow(clippy::too_many_arguments)]
pub(crate) fn finish_and_continue(
    task: &AttemptFacts,
    workflow: Option<&WorkflowFacts>,
    token: i64,
    resolution: ActivityResolution,
    heartbeat_details: Option<Value>,
    cont: &Continuation,
    now: i64,
) -> Result<ContinueDecision> {
    let running = workflow.is_some_and(|w| w.running());
    // A continuation is computed with the attempt's outcome: a retry has none (even when it
    // becomes a cancellation here, the instance did not see that).
    let retry = matches!(resolution, ActivityResolution::Retry { .. });
    let eligible = workflow.filter(|w| {
        !retry
            && w.running()
            && task.workflow_id == cont.commit.workflow_id
            && saw_everything(w, cont)
    });
    let Some(facts) = eligible else {
        return Ok(
            match activity::finish(
                task,
                token,
                resolution,
                heartbeat_details,
                running,
                true,
                now,
            )? {
                Finish::Fenced => ContinueDecision::Fenced,
                Finish::Recorded { plan, .. } => ContinueDecision::Recorded(plan),
            },
        );
    };
    let (finished, event) =
        match activity::finish(task, token, resolution, heartbeat_details, true, false, now)? {
            Finish::Fenced => return Ok(ContinueDecision::Fenced),
            Finish::Recorded {
                plan,
                event: Some(event),
            } => (plan, event),
            // A retry has no outcome event for the instance to see: the ordinary way.
            Finish::Recorded { plan, event: None } => return Ok(ContinueDecision::Recorded(plan)),
        };
    let event_seq = facts.next_event_seq;
    let mut facts = facts.clone();
    // The finished attempt's task is deleted by this plan.
    facts.activities.remove(&task.activity_seq);
    let mut commit = cont.commit.clone();
    commit.processed_through = event_seq;
    let (mut plan, outcome) = plan_commit(&facts, &commit, vec![event], true, now);
    let mut effects = finished.effects;
    effects.append(&mut plan.effects);
    plan.effects = effects;
    Ok(ContinueDecision::Continued {
        plan,
        event_seq,
        outcome,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::facts::LazyOptions;
    use crate::engine::plan::NewActivityTask;
    use crate::engine::testkit::*;
    use crate::engine::ClosedAs;

    fn commit_of(
        token: i64,
        processed_through: u64,
        commands: Vec<EventKind>,
    ) -> WorkflowTaskCommit {
        WorkflowTaskCommit {
            workflow_id: "wf".into(),
            token,
            processed_through,
            task_time_ms: NOW,
            commands,
            eager: None,
            local_lease: None,
        }
    }

    #[test]
    fn a_task_with_local_activities_running_stays_leased_to_their_worker() {
        let f = facts_running(5, 3);
        let mut c = commit_of(3, 4, vec![]);
        c.local_lease = Some(LocalLease {
            worker_id: "w".into(),
            until_ms: NOW + 10_000,
        });
        let (plan, outcome) = commit(&f, &c, vec![], NOW).unwrap();
        assert!(!outcome.rerun);
        assert_eq!(
            plan.effects.last(),
            Some(&Effect::WorkflowTask(WorkflowTaskEffect::Lease {
                owner: "w".into(),
                until_ms: NOW + 10_000
            }))
        );
        // Events it did not see: put back as pending (the next task leases it again).
        let f = facts_running(7, 3);
        let (plan, _) = commit(&f, &c, vec![], NOW).unwrap();
        assert_eq!(
            plan.effects.last(),
            Some(&Effect::WorkflowTask(WorkflowTaskEffect::Requeue {
                at_ms: NOW
            }))
        );
        // A closing commit leaves no task at all.
        let mut closing = c.clone();
        closing.commands = vec![EventKind::WorkflowCompleted { result: 1.into() }];
        let (plan, _) = commit(&facts_running(5, 3), &closing, vec![], NOW).unwrap();
        assert!(!plan
            .effects
            .iter()
            .any(|e| matches!(e, Effect::WorkflowTask(_))));
    }

    #[test]
    fn a_stale_token_or_an_ended_workflow_commits_nothing() {
        let f = facts_running(5, 3);
        assert!(commit(&f, &commit_of(2, 4, vec![]), vec![], NOW).is_none());
        let mut ended = f.clone();
        ended.status = crate::engine::WorkflowStatus::Completed;
        assert!(commit(&ended, &commit_of(3, 4, vec![]), vec![], NOW).is_none());
        let mut pending = f;
        pending.task = Some(TaskState::Pending);
        assert!(commit(&pending, &commit_of(3, 4, vec![]), vec![], NOW).is_none());
    }

    #[test]
    fn commands_then_the_marker_numbered_from_the_next_event() {
        let f = facts_running(5, 3);
        let cmds = vec![scheduled(1, "charge"), timer_started(2, NOW + 60_000)];
        let (plan, outcome) = commit(&f, &commit_of(3, 4, cmds.clone()), vec![], NOW).unwrap();
        assert_eq!(
            plan.guard,
            Guard {
                next_event_seq: Some(5),
                wft_token: Some(3),
                running: true
            }
        );
        let mut expected = cmds;
        expected.push(EventKind::WorkflowTaskCompleted {
            processed_through: 4,
            task_time_ms: NOW,
        });
        assert_eq!(plan.events, expected);
        assert_eq!(outcome.marker_seq, 7);
        assert!(!outcome.rerun);
        assert!(matches!(
            plan.effects[0],
            Effect::InsertActivityTask(NewActivityTask {
                activity_seq: 1,
                claimed_by: None,
                ..
            })
        ));
        assert_eq!(
            plan.effects[1],
            Effect::UpsertTimer {
                timer_seq: 2,
                fire_at_ms: NOW + 60_000
            }
        );
        assert_eq!(
            &plan.effects[2..],
            &[
                Effect::ClearHeld,
                Effect::WorkflowTask(WorkflowTaskEffect::Complete)
            ]
        );
        assert!(plan.wake);
    }

    #[test]
    fn events_the_task_did_not_see_put_it_back() {
        // History up to #6, the task saw up to #4: a timer fired meanwhile.
        let f = facts_running(7, 3);
        let (plan, outcome) = commit(&f, &commit_of(3, 4, vec![]), vec![], NOW).unwrap();
        assert!(outcome.rerun);
        assert_eq!(
            plan.effects.last(),
            Some(&Effect::WorkflowTask(WorkflowTaskEffect::Requeue {
                at_ms: NOW
            }))
        );
    }

    #[test]
    fn eager_claims_take_matching_new_tasks_up_to_the_limit() {
        let f = facts_running(5, 3);
        let mut c = commit_of(
            3,
            4,
            vec![
                scheduled(1, "charge"),
                scheduled(2, "ship"),
                scheduled(3, "charge"),
                scheduled(4, "charge"),
            ],
        );
        c.eager = Some(EagerClaim {
            worker_id: "w".into(),
            activity_types: vec!["charge".into()],
            queues: vec!["default".into()],
            max: 2,
        });
        let (plan, outcome) = commit(&f, &c, vec![], NOW).unwrap();
        let seqs: Vec<u64> = outcome.eager.iter().map(|t| t.activity_seq).collect();
        assert_eq!(seqs, vec![1, 3]);
        // The starts come after the marker.
        assert_eq!(outcome.marker_seq, 9);
        assert_eq!(
            &plan.events[5..],
            &[
                EventKind::ActivityStarted {
                    activity_seq: 1,
                    attempt: 1,
                    worker: "w".into()
                },
                EventKind::ActivityStarted {
                    activity_seq: 3,
                    attempt: 1,
                    worker: "w".into()
                },
            ]
        );
        let claimed: Vec<bool> = plan
            .effects
            .iter()
            .filter_map(|e| match e {
                Effect::InsertActivityTask(t) => Some(t.claimed_by.is_some()),
                _ => None,
            })
            .collect();
        assert_eq!(claimed, vec![true, false, true, false]);
    }

    #[test]
    fn cancelling_a_pending_activity_withdraws_it_and_reruns() {
        let mut f = facts_running(5, 3);
        f.activities.insert(1, (TaskState::Pending, None));
        let (plan, outcome) =
            commit(&f, &commit_of(3, 4, vec![cancel_requested(1)]), vec![], NOW).unwrap();
        assert_eq!(
            plan.events[..2],
            [
                cancel_requested(1),
                EventKind::ActivityCancelled {
                    activity_seq: 1,
                    details: None
                }
            ]
        );
        assert_eq!(
            plan.effects[0],
            Effect::DeleteActivityTask { activity_seq: 1 }
        );
        assert!(outcome.rerun);
    }

    #[test]
    fn cancelling_a_running_activity_flags_it() {
        let mut f = facts_running(5, 3);
        f.activities.insert(1, (TaskState::Running, None));
        let (plan, outcome) =
            commit(&f, &commit_of(3, 4, vec![cancel_requested(1)]), vec![], NOW).unwrap();
        assert_eq!(
            plan.effects[0],
            Effect::FlagActivityCancel { activity_seq: 1 }
        );
        assert_eq!(plan.events.len(), 2);
        assert!(!outcome.rerun);
    }

    #[test]
    fn an_activity_scheduled_and_cancelled_in_one_task_is_withdrawn_unclaimed() {
        let f = facts_running(5, 3);
        let mut c = commit_of(3, 4, vec![scheduled(1, "charge"), cancel_requested(1)]);
        c.eager = Some(EagerClaim {
            worker_id: "w".into(),
            activity_types: vec!["charge".into()],
            queues: vec!["default".into()],
            max: 5,
        });
        let (plan, outcome) = commit(&f, &c, vec![], NOW).unwrap();
        assert!(outcome.eager.is_empty());
        assert!(plan
            .effects
            .contains(&Effect::DeleteActivityTask { activity_seq: 1 }));
    }

    #[test]
    fn closing_ends_the_task_without_claims() {
        let f = facts_running(5, 3);
        let mut c = commit_of(
            3,
            4,
            vec![
                scheduled(1, "charge"),
                EventKind::WorkflowCompleted { result: 1.into() },
            ],
        );
        c.eager = Some(EagerClaim {
            worker_id: "w".into(),
            activity_types: vec!["charge".into()],
            queues: vec!["default".into()],
            max: 5,
        });
        let (plan, outcome) = commit(&f, &c, vec![], NOW).unwrap();
        assert!(outcome.eager.is_empty());
        assert_eq!(plan.closes(), Some(&ClosedAs::Completed(1.into())));
        assert!(!plan
            .effects
            .iter()
            .any(|e| matches!(e, Effect::WorkflowTask(_) | Effect::ClearHeld)));
    }

    #[test]
    fn holding_needs_the_current_token() {
        let f = facts_running(5, 3);
        assert!(hold(&f, 2, "x", NOW, NOW).is_none());
        let plan = hold(&f, 3, "changed", NOW + 10, NOW).unwrap();
        assert_eq!(
            plan.effects,
            vec![Effect::WorkflowTask(WorkflowTaskEffect::Hold {
                reason: "changed".into(),
                retry_at_ms: NOW + 10
            })]
        );
    }

    fn attempt_of(seq: u64) -> AttemptFacts {
        AttemptFacts {
            task_id: 11,
            workflow_id: "wf".into(),
            activity_seq: seq,
            token: 1,
            scheduled_ms: NOW,
            cancel_requested: false,
            heartbeat_details: None,
            options: LazyOptions::Stored("{}".into()),
        }
    }

    fn continuation(
        delivered_through: u64,
        own_marker_seq: u64,
        cmds: Vec<EventKind>,
    ) -> Continuation {
        Continuation {
            commit: commit_of(0, 0, cmds),
            delivered_through,
            own_marker_seq,
        }
    }

    #[test]
    fn a_continuation_commits_the_outcome_and_the_next_task_together() {
        // #5 scheduled, #6 marker, #7 started: the instance saw through #6.
        let mut f = facts_running(8, 3);
        f.task = None;
        f.unseen = vec![(7, "activity_started".into())];
        let d = finish_and_continue(
            &attempt_of(1),
            Some(&f),
            1,
            ActivityResolution::Completed(5.into()),
            None,
            &continuation(6, 6, vec![scheduled(2, "next")]),
            NOW,
        )
        .unwrap();
        let ContinueDecision::Continued {
            plan,
            event_seq,
            outcome,
        } = d
        else {
            panic!("{d:?}")
        };
        assert_eq!(event_seq, 8);
        assert_eq!(outcome.marker_seq, 10);
        assert_eq!(
            plan.events,
            vec![
                EventKind::ActivityCompleted {
                    activity_seq: 1,
                    result: 5.into()
                },
                scheduled(2, "next"),
                EventKind::WorkflowTaskCompleted {
                    processed_through: 8,
                    task_time_ms: NOW
                },
            ]
        );
        assert_eq!(plan.guard.wft_token, None);
        assert_eq!(plan.effects[0], Effect::EndActivityTask { task_id: 11 });
        assert!(plan.effects.contains(&Effect::BumpWorkflowTaskToken));
    }

    #[test]
    fn an_unseen_event_or_a_queued_task_falls_back_to_a_workflow_task() {
        let mut f = facts_running(9, 3);
        f.task = None;
        f.unseen = vec![(7, "activity_started".into()), (8, "timer_fired".into())];
        let cont = continuation(6, 6, vec![]);
        let d = finish_and_continue(
            &attempt_of(1),
            Some(&f),
            1,
            ActivityResolution::Completed(5.into()),
            None,
            &cont,
            NOW,
        )
        .unwrap();
        let ContinueDecision::Recorded(plan) = d else {
            panic!("{d:?}")
        };
        assert!(plan
            .effects
            .contains(&Effect::WorkflowTask(WorkflowTaskEffect::Enqueue {
                at_ms: NOW
            })));
        f.unseen.clear();
        f.task = Some(TaskState::Pending);
        let d = finish_and_continue(
            &attempt_of(1),
            Some(&f),
            1,
            ActivityResolution::Completed(5.into()),
            None,
            &cont,
            NOW,
        )
        .unwrap();
        assert!(matches!(d, ContinueDecision::Recorded(_)));
        // A retry that a cancel request turns into a cancellation is not what the instance saw.
        f.task = None;
        let mut cancelled = attempt_of(1);
        cancelled.cancel_requested = true;
        let d = finish_and_continue(
            &cancelled,
            Some(&f),
            1,
            ActivityResolution::Retry { retry_at_ms: NOW },
            None,
            &cont,
            NOW,
        )
        .unwrap();
        let ContinueDecision::Recorded(plan) = d else {
            panic!("{d:?}")
        };
        assert!(matches!(
            plan.events.as_slice(),
            [EventKind::ActivityCancelled { .. }]
        ));
        // A stale attempt writes nothing either way.
        let d = finish_and_continue(
            &attempt_of(1),
            Some(&f),
            9,
            ActivityResolution::Completed(5.into()),
            None,
            &cont,
            NOW,
        )
        .unwrap();
        assert!(matches!(d, ContinueDecision::Fenced));
    }
}
