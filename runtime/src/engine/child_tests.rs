//! Unit tests of `child.rs`, on canned facts (the cases of Temporal's
//! `child_workflow_state_machine.rs` that apply: started, start failed, completed, failed,
//! cancelled, terminated, cancel requested, and the parent close policies).

use super::*;
use crate::engine::testkit::*;
use crate::engine::workflow_task::{commit, WorkflowTaskCommit};
use crate::error::WorkflowError;

fn initiated(seq: u64, id: &str, policy: ParentClosePolicy) -> EventKind {
    EventKind::ChildWorkflowInitiated {
        child_seq: seq,
        workflow_type: "charge".into(),
        workflow_id: id.into(),
        task_queue: "default".into(),
        input: serde_json::json!(5),
        parent_close_policy: policy,
        execution_timeout_ms: Some(1_000),
    }
}

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

#[test]
fn a_child_starts_in_its_parents_commit_and_its_start_follows_the_marker() {
    let f = facts_running(5, 3);
    let cmd = initiated(1, "c-1", ParentClosePolicy::Terminate);
    let (plan, outcome) = commit(&f, &commit_of(vec![cmd.clone()]), vec![], NOW).unwrap();
    let run_id = child_run_id("run", 1);
    assert_eq!(
        plan.events,
        vec![
            cmd,
            EventKind::WorkflowTaskCompleted {
                processed_through: 4,
                task_time_ms: NOW
            },
            EventKind::ChildWorkflowStarted {
                child_seq: 1,
                workflow_id: "c-1".into(),
                run_id: run_id.clone()
            }
        ]
    );
    let start = plan
        .effects
        .iter()
        .find_map(|e| match e {
            Effect::StartChild(c) => Some(c),
            _ => None,
        })
        .unwrap();
    assert_eq!(start.workflow.run_id, run_id);
    assert_eq!(start.workflow.execution_deadline_ms, Some(NOW + 1_000));
    assert_eq!(
        (start.parent_id.as_str(), start.child_seq, start.policy),
        ("wf", 1, ParentClosePolicy::Terminate)
    );
    assert!(plan.wake);
    // Seeing its own child start is not a reason to run again.
    assert!(!outcome.rerun);
}

#[test]
fn a_taken_id_is_a_start_failure_the_parent_runs_again_to_see() {
    let mut f = facts_running(5, 3);
    f.existing_ids.insert("c-1".into());
    let (plan, outcome) = commit(
        &f,
        &commit_of(vec![initiated(1, "c-1", ParentClosePolicy::default())]),
        vec![],
        NOW,
    )
    .unwrap();
    assert!(!plan
        .effects
        .iter()
        .any(|e| matches!(e, Effect::StartChild(_))));
    assert_eq!(
        plan.events.last(),
        Some(&EventKind::ChildWorkflowStartFailed {
            child_seq: 1,
            workflow_id: "c-1".into()
        })
    );
    assert!(outcome.rerun);
    // Two children of one commit with one id: the second is refused.
    let f = facts_running(5, 3);
    let (plan, _) = commit(
        &f,
        &commit_of(vec![
            initiated(1, "same", ParentClosePolicy::default()),
            initiated(2, "same", ParentClosePolicy::default()),
        ]),
        vec![],
        NOW,
    )
    .unwrap();
    let starts = plan
        .effects
        .iter()
        .filter(|e| matches!(e, Effect::StartChild(_)))
        .count();
    assert_eq!(starts, 1);
    assert!(matches!(
        plan.events.last(),
        Some(EventKind::ChildWorkflowStartFailed { child_seq: 2, .. })
    ));
}

#[test]
fn a_cancel_request_targets_the_run_the_parent_started() {
    let f = facts_running(5, 3);
    let (plan, _) = commit(
        &f,
        &commit_of(vec![EventKind::ChildWorkflowCancelRequested {
            child_seq: 1,
            workflow_id: "c-1".into(),
        }]),
        vec![],
        NOW,
    )
    .unwrap();
    assert_eq!(
        followups(&plan),
        vec![Followup::RequestCancel {
            workflow_id: "c-1".into(),
            run_id: child_run_id("run", 1)
        }]
    );
    let mut child = facts_running(3, 1);
    child.run_id = child_run_id("run", 1);
    let p = request_cancel_of(Some(&child), &child.run_id.clone(), NOW).unwrap();
    assert_eq!(p.events, vec![EventKind::WorkflowCancelRequested {}]);
    // Another run of that id (or an ended one) is left alone.
    assert!(request_cancel_of(Some(&child), "other-run", NOW).is_none());
    child.status = crate::engine::WorkflowStatus::Completed;
    assert!(request_cancel_of(Some(&child), &child.run_id.clone(), NOW).is_none());
}

#[test]
fn each_end_of_a_child_reaches_its_parent_as_its_own_event() {
    let cases = [
        (
            ClosedAs::Completed(7.into()),
            EventKind::ChildWorkflowCompleted {
                child_seq: 4,
                result: 7.into(),
            },
        ),
        (
            ClosedAs::Failed(WorkflowError::application("Declined", "no")),
            EventKind::ChildWorkflowFailed {
                child_seq: 4,
                error: WorkflowError::application("Declined", "no"),
            },
        ),
        (
            ClosedAs::Failed(crate::engine::terminate::terminated_error("x")),
            EventKind::ChildWorkflowTerminated {
                child_seq: 4,
                reason: "terminated by a client: x".into(),
            },
        ),
        (
            ClosedAs::Cancelled,
            EventKind::ChildWorkflowCancelled { child_seq: 4 },
        ),
    ];
    let links = Links {
        parent: Some(("p".into(), "prun".into(), 4)),
        open_children: vec![],
    };
    for (closed, event) in cases {
        let f = on_close(&closed, &links, "c");
        assert_eq!(
            f,
            vec![Followup::Deliver {
                parent_id: "p".into(),
                parent_run_id: "prun".into(),
                event: event.clone()
            }]
        );
        let mut parent = facts_running(9, 2);
        parent.run_id = "prun".into();
        parent.task = None;
        let plan = deliver(Some(&parent), "prun", event.clone(), NOW).unwrap();
        assert_eq!(plan.events, vec![event.clone()]);
        assert!(plan.guard.running);
        assert_eq!(
            plan.effects,
            vec![Effect::WorkflowTask(WorkflowTaskEffect::Enqueue {
                at_ms: NOW
            })]
        );
        // A parent that ended (or another run of its id) records nothing.
        assert!(deliver(Some(&parent), "older-run", event.clone(), NOW).is_none());
        parent.status = crate::engine::WorkflowStatus::Failed;
        assert!(deliver(Some(&parent), "prun", event, NOW).is_none());
        assert!(deliver(
            None,
            "prun",
            EventKind::ChildWorkflowCancelled { child_seq: 4 },
            NOW
        )
        .is_none());
    }
}

#[test]
fn the_parent_close_policies() {
    let links = Links {
        parent: None,
        open_children: vec![
            ("a".into(), "ra".into(), ParentClosePolicy::RequestCancel),
            ("b".into(), "rb".into(), ParentClosePolicy::Terminate),
            ("c".into(), "rc".into(), ParentClosePolicy::Abandon),
        ],
    };
    for closed in [
        ClosedAs::Completed(1.into()),
        ClosedAs::Failed(WorkflowError::application("E", "m")),
        ClosedAs::Cancelled,
    ] {
        let f = on_close(&closed, &links, "p");
        assert_eq!(f.len(), 2, "abandon does nothing");
        assert_eq!(
            f[0],
            Followup::RequestCancel {
                workflow_id: "a".into(),
                run_id: "ra".into()
            }
        );
        let Followup::Terminate {
            workflow_id,
            reason,
            ..
        } = &f[1]
        else {
            panic!("{f:?}")
        };
        assert_eq!(workflow_id, "b");
        assert!(reason.contains("parent workflow `p`"), "{reason}");
    }
    let mut child = facts_running(3, 1);
    child.run_id = "rb".into();
    let plan = terminate_of(Some(&child), "rb", "why", NOW).unwrap();
    assert!(matches!(plan.closes(), Some(ClosedAs::Failed(_))));
    assert!(terminate_of(Some(&child), "other", "why", NOW).is_none());
}

#[test]
fn a_closing_plan_is_followed_by_its_links() {
    let mut f = facts_running(5, 3);
    // A workflow with no parent and no children: nothing follows its end.
    let (plan, _) = commit(
        &f,
        &commit_of(vec![EventKind::WorkflowCompleted { result: 1.into() }]),
        vec![],
        NOW,
    )
    .unwrap();
    assert!(followups(&plan).is_empty());
    // One that starts a child in its closing commit has links.
    let (plan, _) = commit(
        &f,
        &commit_of(vec![
            initiated(1, "c", ParentClosePolicy::default()),
            EventKind::WorkflowCompleted { result: 1.into() },
        ]),
        vec![],
        NOW,
    )
    .unwrap();
    assert_eq!(followups(&plan).len(), 1);
    f.linked = true;
    let (plan, _) = commit(
        &f,
        &commit_of(vec![EventKind::WorkflowCompleted { result: 1.into() }]),
        vec![],
        NOW,
    )
    .unwrap();
    assert_eq!(
        followups(&plan),
        vec![Followup::Closed {
            workflow_id: "wf".into(),
            closed: ClosedAs::Completed(1.into())
        }]
    );
}

#[test]
fn child_run_ids_are_stable_and_distinct() {
    assert_eq!(child_run_id("r", 1), child_run_id("r", 1));
    assert_ne!(child_run_id("r", 1), child_run_id("r", 2));
    assert_ne!(child_run_id("r", 1), child_run_id("s", 1));
    assert!(uuid::Uuid::parse_str(&child_run_id("r", 1)).is_ok());
}
