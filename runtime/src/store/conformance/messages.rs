//! Messages: `signal_workflow` (once per request id, a workflow task, refused once ended),
//! `signal_with_start` (one run, however many callers), `accept_update` (guarded by the history
//! the validator saw) and the commit of an update's answer.

use super::support::*;
use crate::store::{NewSignal, NewUpdate};

fn sig(request_id: &str, n: u32) -> NewSignal {
    NewSignal {
        name: "Approve".into(),
        input: json!({ "n": n }),
        request_id: request_id.into(),
    }
}

fn received(request_id: &str, n: u32) -> EventKind {
    EventKind::SignalReceived {
        signal_name: "Approve".into(),
        input: json!({ "n": n }),
        request_id: request_id.into(),
    }
}

pub(super) async fn check_signal_workflow(s: &dyn StoreBackend) {
    // Unknown workflow: an error, nothing written.
    match s.signal_workflow("nobody", sig("r-0", 0), None).await {
        Err(Error::WorkflowNotFound(id)) => assert_eq!(id, "nobody"),
        other => panic!("an unknown workflow must be WorkflowNotFound, got {other:?}"),
    }
    let c = start(s, "wf").await;
    commit_ok(s, commit(&c, 1, vec![])).await;
    assert_no_wft(s, "the first task completed").await;

    // A signal is appended and makes a workflow task due; a retry writes nothing.
    assert!(
        s.signal_workflow("wf", sig("r-1", 1), None)
            .await
            .unwrap()
            .recorded
    );
    assert!(
        !s.signal_workflow("wf", sig("r-1", 1), None)
            .await
            .unwrap()
            .recorded
    );
    assert!(
        s.signal_workflow("wf", sig("r-2", 2), None)
            .await
            .unwrap()
            .recorded
    );
    assert_eq!(
        kinds_from(s, "wf", 3).await,
        vec![received("r-1", 1), received("r-2", 2)],
        "in order, each once"
    );
    let c = claim_wft(s, "wf").await;
    // A signal during a running task: its commit puts the task back (the code must see it).
    assert!(
        s.signal_workflow("wf", sig("r-3", 3), None)
            .await
            .unwrap()
            .recorded
    );
    let out = commit_ok(s, commit(&c, 4, vec![])).await;
    assert!(out.rerun, "the task saw the history up to #4 only");
    let c = claim_wft(s, "wf").await;
    commit_ok(
        s,
        commit(
            &c,
            6,
            vec![EventKind::WorkflowCompleted { result: json!(1) }],
        ),
    )
    .await;

    // Ended: a new signal is refused and writes nothing; a retry of a recorded one is not.
    let len = last_seq(s, "wf").await;
    match s.signal_workflow("wf", sig("r-4", 4), None).await {
        Err(Error::WorkflowClosed {
            workflow_id,
            status,
        }) => assert_eq!((workflow_id.as_str(), status.as_str()), ("wf", "completed")),
        other => panic!("an ended workflow must be WorkflowClosed, got {other:?}"),
    }
    assert!(
        !s.signal_workflow("wf", sig("r-2", 2), None)
            .await
            .unwrap()
            .recorded
    );
    assert_eq!(last_seq(s, "wf").await, len);
    assert_no_wft(s, "an ended workflow has no task").await;
}

pub(super) async fn check_signal_during_closing_task(s: &dyn StoreBackend) {
    let c = start(s, "wf").await;
    commit_ok(s, commit(&c, 1, vec![])).await;
    assert!(
        s.signal_workflow("wf", sig("r-1", 1), None)
            .await
            .unwrap()
            .recorded
    );
    let c = claim_wft(s, "wf").await;
    // While the task that saw #3 decides to end the workflow, another signal is recorded.
    assert!(
        s.signal_workflow("wf", sig("r-2", 2), None)
            .await
            .unwrap()
            .recorded
    );
    let len = last_seq(s, "wf").await;
    let out = commit_ok(
        s,
        commit(
            &c,
            3,
            vec![EventKind::WorkflowCompleted { result: json!(1) }],
        ),
    )
    .await;
    assert!(
        out.discarded && out.rerun,
        "a close computed without the newest signal is dropped: {out:?}"
    );
    assert_eq!(
        last_seq(s, "wf").await,
        len,
        "nothing of the dropped commit is written"
    );
    // The code runs again with the signal, and may now end the workflow.
    let c = claim_wft(s, "wf").await;
    let out = commit_ok(
        s,
        commit(
            &c,
            len,
            vec![EventKind::WorkflowCompleted { result: json!(2) }],
        ),
    )
    .await;
    assert!(!out.discarded && !out.rerun);
    assert_no_wft(s, "the workflow ended").await;
    assert_eq!(
        kinds_from(s, "wf", len + 1).await.first(),
        Some(&EventKind::WorkflowCompleted { result: json!(2) }),
        "the close of the task that saw the signal is recorded"
    );
}

pub(super) async fn check_signal_direct_claim(s: &dyn StoreBackend) {
    use crate::store::DirectClaim;
    let holder = |run: &str| DirectClaim {
        owner: "holder".into(),
        run_id: run.into(),
        lease_ms: LONG_LEASE,
    };
    let c = start(s, "wf").await;
    commit_ok(s, commit(&c, 1, vec![])).await;
    // Another run's instance: recorded, not claimed; the task is due for any worker.
    let out = s
        .signal_workflow("wf", sig("r-1", 1), Some(holder("an-older-run")))
        .await
        .unwrap();
    assert_eq!((out.recorded, out.claimed), (true, None));
    let c = claim_wft(s, "wf").await;
    // A task running: recorded, not claimed; the running task's commit reruns it.
    let out = s
        .signal_workflow("wf", sig("r-2", 2), Some(holder("run-of-wf")))
        .await
        .unwrap();
    assert_eq!((out.recorded, out.claimed), (true, None));
    assert!(commit_ok(s, commit(&c, 3, vec![])).await.rerun);
    let c = claim_wft(s, "wf").await;
    commit_ok(s, commit(&c, 5, vec![])).await;
    assert_no_wft(s, "the task completed").await;

    // Idle: the signal's transaction claims the task for the holder, with a new token.
    let out = s
        .signal_workflow("wf", sig("r-3", 3), Some(holder("run-of-wf")))
        .await
        .unwrap();
    assert!(out.recorded);
    let token = out
        .claimed
        .expect("an idle workflow's task is claimed for its holder");
    assert!(token > c.token, "a new token fences the older lease");
    assert_no_wft(s, "the task is leased to the holder").await;
    assert_eq!(kinds_from(s, "wf", 7).await, vec![received("r-3", 3)]);
    // The older token cannot commit; the holder's can.
    let stale = s.commit_workflow_task(commit(&c, 7, vec![])).await.unwrap();
    assert!(stale.is_none(), "the older token is fenced off");
    let mine = ClaimedWorkflowTask { token, ..c.clone() };
    let out = commit_ok(
        s,
        commit(
            &mine,
            7,
            vec![EventKind::WorkflowCompleted { result: json!(3) }],
        ),
    )
    .await;
    assert!(!out.rerun);
    // A retry of a recorded signal claims nothing, even on an ended workflow.
    let out = s
        .signal_workflow("wf", sig("r-3", 3), Some(holder("run-of-wf")))
        .await
        .unwrap();
    assert_eq!((out.recorded, out.claimed), (false, None));
    assert_no_wft(s, "an ended workflow has no task").await;
}

pub(super) async fn check_signal_with_start(s: &dyn StoreBackend) {
    // The first call starts the run and signals it; the second only signals.
    assert!(s
        .signal_with_start(new_wf("wf", WT, Q, None), sig("r-1", 1))
        .await
        .unwrap());
    let mut again = new_wf("wf", WT, Q, None);
    again.run_id = "another-run".into();
    assert!(!s.signal_with_start(again, sig("r-2", 2)).await.unwrap());
    let h = kinds(s, "wf").await;
    assert!(matches!(&h[0], EventKind::WorkflowStarted { run_id, .. } if run_id == "run-of-wf"));
    assert_eq!(h[1..], [received("r-1", 1), received("r-2", 2)]);
    assert_eq!(describe(s, "wf").await.run_id, "run-of-wf");
    let c = claim_wft(s, "wf").await;
    commit_ok(s, commit(&c, 3, vec![EventKind::WorkflowCancelled {}])).await;
    // Ended: the signal is refused, and no new run starts.
    assert!(matches!(
        s.signal_with_start(new_wf("wf", WT, Q, None), sig("r-3", 3))
            .await,
        Err(Error::WorkflowClosed { .. })
    ));
    assert_eq!(kinds(s, "wf").await.len(), 5);
}

pub(super) async fn check_accept_update(s: &dyn StoreBackend) {
    let update = |validated_at| NewUpdate {
        update_id: "u-1".into(),
        name: "SetLimit".into(),
        input: json!({ "limit": 5 }),
        validated_at,
    };
    assert!(matches!(
        s.accept_update("nobody", update(2)).await,
        Err(Error::WorkflowNotFound(_))
    ));
    let c = start(s, "wf").await;
    commit_ok(s, commit(&c, 1, vec![])).await;
    // Validated on a history that moved on: nothing written.
    assert_eq!(s.accept_update("wf", update(2)).await.unwrap(), None);
    assert_eq!(last_seq(s, "wf").await, 2);
    // On the current one: recorded at #3, with a workflow task.
    assert_eq!(s.accept_update("wf", update(3)).await.unwrap(), Some(3));
    assert_eq!(
        kinds_from(s, "wf", 3).await,
        vec![EventKind::UpdateAccepted {
            update_id: "u-1".into(),
            update_name: "SetLimit".into(),
            input: json!({ "limit": 5 }),
        }]
    );
    // The answer is the task's command, before its marker.
    let c = claim_wft(s, "wf").await;
    let answer = EventKind::UpdateCompleted {
        update_id: "u-1".into(),
        outcome: Ok(json!(10)),
    };
    commit_ok(s, commit(&c, 3, vec![answer.clone()])).await;
    assert_eq!(kinds_from(s, "wf", 4).await, vec![answer, marker(3)]);
    let c = claim_wft_after_signal(s).await;
    commit_ok(
        s,
        commit(
            &c,
            6,
            vec![EventKind::WorkflowCompleted { result: json!(0) }],
        ),
    )
    .await;
    assert!(matches!(
        s.accept_update("wf", update(last_seq(s, "wf").await + 1))
            .await,
        Err(Error::WorkflowClosed { .. })
    ));
}

/// Wakes `wf` with a signal and claims its task.
async fn claim_wft_after_signal(s: &dyn StoreBackend) -> ClaimedWorkflowTask {
    s.signal_workflow("wf", sig("wake", 0), None).await.unwrap();
    claim_wft(s, "wf").await
}
