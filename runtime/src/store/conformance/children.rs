//! Checks of child workflows (`engine::child`): a child started in its parent's commit, its end
//! appended to its parent's history (with a workflow task) in the transaction that closes it, a
//! start refused for a taken id, a parent's cancel request reaching its child, and the parent
//! close policies applied in the parent's close (by its own command, a termination, its
//! execution timeout).

use super::support::*;
use crate::engine::child::child_run_id;
use crate::engine::terminate::terminated_error;
use crate::engine::ClaimedWorkflowTask;
use crate::history::{EventKind, ParentClosePolicy};
use crate::store::{StoreBackend, WorkflowStatus};
use serde_json::json;

/// A child of type `WT2` on queue `Q2` (the parent's claims on `Q`/`WT` never take it).
fn child(seq: u64, id: &str, policy: ParentClosePolicy) -> EventKind {
    EventKind::ChildWorkflowInitiated {
        child_seq: seq,
        workflow_type: WT2.into(),
        workflow_id: id.into(),
        task_queue: Q2.into(),
        input: json!({ "child": seq }),
        parent_close_policy: policy,
        execution_timeout_ms: None,
    }
}

async fn claim_child(s: &dyn StoreBackend, id: &str) -> ClaimedWorkflowTask {
    let claimed = s
        .claim_workflow_tasks(WORKER, &v(&[Q2]), &v(&[WT2]), 10, LONG_LEASE)
        .await
        .unwrap();
    let c = claimed
        .into_iter()
        .find(|c| c.workflow_id == id)
        .unwrap_or_else(|| panic!("the task of child `{id}` is due"));
    assert_eq!(c.task_queue, Q2);
    c
}

async fn status(s: &dyn StoreBackend, id: &str) -> WorkflowStatus {
    describe(s, id).await.status
}

pub(super) async fn check_child_start_and_end(s: &dyn StoreBackend) {
    let p = start(s, "p").await;
    commit_ok(
        s,
        commit(&p, 1, vec![child(1, "c", ParentClosePolicy::default())]),
    )
    .await; // 2, marker 3, started 4
    let run = child_run_id("run-of-p", 1);
    assert_eq!(
        kinds_from(s, "p", 2).await,
        vec![
            child(1, "c", ParentClosePolicy::default()),
            marker(1),
            EventKind::ChildWorkflowStarted {
                child_seq: 1,
                workflow_id: "c".into(),
                run_id: run.clone()
            }
        ]
    );
    assert_no_wft(
        s,
        "seeing its child start is no reason for the parent to run",
    )
    .await;
    // The child: its own row, history and task.
    let d = describe(s, "c").await;
    assert_eq!(
        (d.run_id.as_str(), d.workflow_type.as_str()),
        (run.as_str(), WT2)
    );
    assert_eq!(
        kinds(s, "c").await,
        vec![EventKind::WorkflowStarted {
            workflow_type: WT2.into(),
            input: json!({ "child": 1 }),
            task_queue: Q2.into(),
            run_id: run.clone()
        }]
    );
    let c = claim_child(s, "c").await;
    commit_ok(
        s,
        commit(
            &c,
            1,
            vec![EventKind::WorkflowCompleted { result: json!(42) }],
        ),
    )
    .await;
    assert_eq!(status(s, "c").await, WorkflowStatus::Completed);
    // Its end, in the same transaction: the parent's event and task.
    assert_eq!(
        kinds_from(s, "p", 5).await,
        vec![EventKind::ChildWorkflowCompleted {
            child_seq: 1,
            result: json!(42)
        }]
    );
    let p = claim_wft(s, "p").await;
    commit_ok(
        s,
        commit(
            &p,
            5,
            vec![EventKind::WorkflowCompleted { result: json!(1) }],
        ),
    )
    .await;
    assert_eq!(status(s, "p").await, WorkflowStatus::Completed);
}

pub(super) async fn check_child_start_refused_for_a_taken_id(s: &dyn StoreBackend) {
    create(s, "taken").await;
    let _taken_task = claim_wft(s, "taken").await;
    create(s, "p").await;
    let p = claim_wft(s, "p").await;
    let out = commit_ok(
        s,
        commit(&p, 1, vec![child(1, "taken", ParentClosePolicy::default())]),
    )
    .await;
    assert!(out.rerun, "the parent runs again to see the refusal");
    assert_eq!(
        kinds_from(s, "p", 4).await,
        vec![EventKind::ChildWorkflowStartFailed {
            child_seq: 1,
            workflow_id: "taken".into()
        }]
    );
    assert_eq!(
        history(s, "taken").await.len(),
        1,
        "the other workflow is untouched"
    );
    assert_eq!(describe(s, "taken").await.run_id, "run-of-taken");
    claim_wft(s, "p").await;
}

pub(super) async fn check_child_cancel_request_and_termination(s: &dyn StoreBackend) {
    let p = start(s, "p").await;
    commit_ok(
        s,
        commit(
            &p,
            1,
            vec![
                child(1, "c1", ParentClosePolicy::default()),
                child(2, "c2", ParentClosePolicy::default()),
            ],
        ),
    )
    .await; // 2, 3, marker 4, started 5, 6
            // The parent's handle asks c1 to cancel: recorded in c1's history with the parent's commit.
    s.signal_workflow("p", nudge("n-1"), None).await.unwrap(); // 7
    let p = claim_wft(s, "p").await;
    commit_ok(
        s,
        commit(
            &p,
            7,
            vec![EventKind::ChildWorkflowCancelRequested {
                child_seq: 1,
                workflow_id: "c1".into(),
            }],
        ),
    )
    .await;
    assert_eq!(
        kinds_from(s, "c1", 2).await,
        vec![EventKind::WorkflowCancelRequested {}]
    );
    let c1 = claim_child(s, "c1").await;
    commit_ok(s, commit(&c1, 2, vec![EventKind::WorkflowCancelled {}])).await;
    assert_eq!(
        kinds_from(s, "p", 10).await,
        vec![EventKind::ChildWorkflowCancelled { child_seq: 1 }]
    );
    // A client terminates c2: the parent hears `Terminated`, with the reason.
    assert!(s.terminate_workflow("c2", "by hand").await.unwrap());
    assert_eq!(
        kinds_from(s, "p", 11).await,
        vec![EventKind::ChildWorkflowTerminated {
            child_seq: 2,
            reason: "terminated by a client: by hand".into()
        }]
    );
}

fn nudge(request_id: &str) -> crate::store::NewSignal {
    crate::store::NewSignal {
        name: "nudge".into(),
        input: json!(null),
        request_id: request_id.into(),
    }
}

/// Starts `parent` with three children (`<parent>-cancel`, `-terminate`, `-abandon`, one per
/// policy); each child's first task committed (it waits).
async fn parent_with_three_children(s: &dyn StoreBackend, parent: &str) {
    let p = start(s, parent).await;
    commit_ok(
        s,
        commit(
            &p,
            1,
            vec![
                child(
                    1,
                    &format!("{parent}-cancel"),
                    ParentClosePolicy::RequestCancel,
                ),
                child(
                    2,
                    &format!("{parent}-terminate"),
                    ParentClosePolicy::Terminate,
                ),
                child(3, &format!("{parent}-abandon"), ParentClosePolicy::Abandon),
            ],
        ),
    )
    .await;
    let claimed = s
        .claim_workflow_tasks(WORKER, &v(&[Q2]), &v(&[WT2]), 10, LONG_LEASE)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3, "each child has its task");
    for c in claimed {
        commit_ok(s, commit(&c, 1, vec![])).await;
    }
}

async fn assert_policies(s: &dyn StoreBackend, parent: &str, parent_len: usize) {
    assert_eq!(
        kinds_from(s, &format!("{parent}-cancel"), 3).await,
        vec![EventKind::WorkflowCancelRequested {}],
        "RequestCancel: asked to cancel"
    );
    assert_eq!(
        status(s, &format!("{parent}-cancel")).await,
        WorkflowStatus::Running
    );
    let t = describe(s, &format!("{parent}-terminate")).await;
    assert_eq!(t.status, WorkflowStatus::Failed, "Terminate: ended at once");
    assert_eq!(
        t.error,
        Some(terminated_error(&format!(
            "its parent workflow `{parent}` ended (parent close policy: terminate)"
        )))
    );
    assert_eq!(
        history(s, &format!("{parent}-abandon")).await.len(),
        2,
        "Abandon: left alone"
    );
    assert_eq!(
        history(s, parent).await.len(),
        parent_len,
        "an ended parent hears nothing of its children's ends"
    );
}

pub(super) async fn check_parent_close_policies(s: &dyn StoreBackend) {
    // The parent completes.
    parent_with_three_children(s, "a").await;
    let p = claim_wft_any(s, "a").await;
    let seen = last_seq(s, "a").await;
    commit_ok(
        s,
        commit(
            &p,
            seen,
            vec![EventKind::WorkflowCompleted { result: json!(0) }],
        ),
    )
    .await;
    let len = history(s, "a").await.len();
    assert_policies(s, "a", len).await;
    // The abandoned child goes on and ends: its parent is not woken.
    s.signal_workflow("a-abandon", nudge("n-a"), None)
        .await
        .unwrap(); // 3
    let c = claim_child(s, "a-abandon").await;
    commit_ok(
        s,
        commit(
            &c,
            3,
            vec![EventKind::WorkflowCompleted { result: json!(1) }],
        ),
    )
    .await;
    assert_eq!(history(s, "a").await.len(), len);

    // A client terminates the parent.
    parent_with_three_children(s, "b").await;
    assert!(s.terminate_workflow("b", "by hand").await.unwrap());
    let len = history(s, "b").await.len();
    assert_policies(s, "b", len).await;
}

/// Claims the parent's task (after its children's first tasks).
async fn claim_wft_any(s: &dyn StoreBackend, id: &str) -> ClaimedWorkflowTask {
    // The parent has a task only if something woke it: nudge it.
    s.signal_workflow(id, nudge(&format!("wake-{id}")), None)
        .await
        .unwrap();
    claim_wft(s, id).await
}

/// The one-commit step closes a child: its activity's outcome, its end, and its parent's event
/// and task, in one transaction; the outcome says another workflow was written to.
pub(super) async fn check_child_closed_by_the_one_commit_step(s: &dyn StoreBackend) {
    use crate::engine::{ActivityResolution, Continuation, WorkflowTaskCommit};
    let p = start(s, "p").await;
    commit_ok(
        s,
        commit(&p, 1, vec![child(1, "c", ParentClosePolicy::default())]),
    )
    .await; // 2, marker 3, started 4
    let c = claim_child(s, "c").await;
    commit_ok(s, commit(&c, 1, vec![sched(1, AT)])).await; // c: 2, marker 3
    let a = claim_act(s, AT, 1).await; // c: 4
    let fo = s
        .finish_activity_and_continue(
            a.task_id,
            a.token,
            ActivityResolution::Completed(json!(7)),
            None,
            Continuation {
                commit: WorkflowTaskCommit {
                    workflow_id: "c".into(),
                    token: 0,
                    processed_through: 0,
                    task_time_ms: TASK_TIME,
                    commands: vec![EventKind::WorkflowCompleted { result: json!(7) }],
                    eager: None,
                    local_lease: None,
                },
                delivered_through: 1,
                own_marker_seq: 3,
            },
        )
        .await
        .unwrap();
    let (_, out) = fo.continued.expect("the continuation commits");
    assert!(out.woke_others, "the parent was written to");
    assert_eq!(status(s, "c").await, WorkflowStatus::Completed);
    assert_eq!(
        kinds_from(s, "p", 5).await,
        vec![EventKind::ChildWorkflowCompleted {
            child_seq: 1,
            result: json!(7)
        }]
    );
    claim_wft(s, "p").await;
}
