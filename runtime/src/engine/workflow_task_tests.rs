//! Unit tests of `workflow_task.rs`, on canned facts.

use super::*;
use crate::engine::facts::LazyOptions;
use crate::engine::plan::NewActivityTask;
use crate::engine::testkit::*;
use crate::engine::ClosedAs;

fn commit_of(token: i64, processed_through: u64, commands: Vec<EventKind>) -> WorkflowTaskCommit {
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

fn continuation(delivered_through: u64, own_marker_seq: u64, cmds: Vec<EventKind>) -> Continuation {
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
        ActivityResolution::Retry {
            retry_at_ms: NOW,
            last_failure: None,
        },
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
