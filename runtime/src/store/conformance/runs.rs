//! Checks of the transitions between runs of one workflow id: continue-as-new ends the run,
//! archives it (row and history) and starts the next run with a fresh history, in one commit.

use super::support::*;
use crate::engine::signal::NewSignal;
use crate::history::CarriedSignal;

fn can(new_run_id: &str, carried: Vec<CarriedSignal>) -> EventKind {
    EventKind::WorkflowContinuedAsNew {
        new_run_id: new_run_id.into(),
        workflow_type: WT.into(),
        task_queue: Q.into(),
        input: json!({ "next": 2 }),
        carried_signals: carried,
    }
}

fn signal_event(request_id: &str) -> EventKind {
    EventKind::SignalReceived {
        signal_name: "Add".into(),
        input: json!(request_id),
        request_id: request_id.into(),
    }
}

pub(super) async fn check_continue_as_new(s: &dyn StoreBackend) {
    let t = now_ms();
    let deadline = t + 300_000;
    s.create_workflow(new_wf("wf", WT, Q, Some(deadline)))
        .await
        .unwrap();
    let c = claim_wft(s, "wf").await;
    commit_ok(s, commit(&c, 1, vec![sched(2, AT), timer(3, t + 60_000)])).await; // 2, 3, marker 4
    let attempt = claim_act(s, AT, 2).await; // 5
                                             // A signal the next task does not see (it read the history before the signal came).
    let late = NewSignal {
        name: "Add".into(),
        input: json!("late"),
        request_id: "late".into(),
    };
    assert!(s.signal_workflow("wf", late, None).await.unwrap().recorded); // 6
    let c = claim_wft_after(s, "wf", "run-of-wf").await;
    let unread = CarriedSignal {
        signal_name: "Add".into(),
        input: json!("unread"),
        request_id: "unread".into(),
    };
    // A continue-as-new computed without the signal is dropped, and the task runs again.
    let out = commit_ok(s, commit(&c, 5, vec![can("run-2", vec![unread.clone()])])).await;
    assert!(
        out.rerun,
        "the late signal is not lost: the code runs again with it"
    );
    assert_eq!(
        history(s, "wf").await.len(),
        6,
        "nothing of the dropped commit is written"
    );
    let c = claim_wft_after(s, "wf", "run-of-wf").await;
    let late = CarriedSignal {
        signal_name: "Add".into(),
        input: json!("late"),
        request_id: "late".into(),
    };
    // The code did not read either: both go to the next run, in order.
    let out = commit_ok(s, commit(&c, 6, vec![can("run-2", vec![unread, late])])).await; // 7, marker 8
    assert!(!out.rerun);

    // The new run: a fresh history, numbered from 1, linked, with both signals.
    assert_eq!(
        kinds(s, "wf").await,
        vec![
            EventKind::WorkflowStarted {
                workflow_type: WT.into(),
                input: json!({ "next": 2 }),
                task_queue: Q.into(),
                run_id: "run-2".into()
            },
            EventKind::RunContinued {
                previous_run_id: "run-of-wf".into(),
                cause: "continue_as_new".into()
            },
            signal_event("unread"),
            signal_event("late"),
        ]
    );
    let d = describe(s, "wf").await;
    assert_eq!(
        (d.run_id.as_str(), d.status, d.history_length),
        ("run-2", WorkflowStatus::Running, 4)
    );
    assert!(
        d.pending_activities.is_empty(),
        "the old run's work is gone"
    );

    // The old run, archived whole.
    let runs = s.earlier_runs("wf").await.unwrap();
    assert_eq!(runs.len(), 1);
    let old = &runs[0];
    assert_eq!(old.run_id, "run-of-wf");
    assert_eq!(old.status, WorkflowStatus::ContinuedAsNew);
    assert_eq!(old.next_run_id.as_deref(), Some("run-2"));
    assert_eq!(old.history_length, 8);
    assert!(old.closed_ms.is_some());
    let h = s.earlier_run_history("wf", "run-of-wf").await.unwrap();
    assert_eq!(h.len(), 8);
    assert_eq!(h[6].kind, can("run-2", h_carried(&h[6].kind)));
    assert!(matches!(
        h[7].kind,
        EventKind::WorkflowTaskCompleted {
            processed_through: 6,
            ..
        }
    ));
    assert!(s
        .earlier_run_history("wf", "nope")
        .await
        .unwrap()
        .is_empty());

    // The old run's running attempt is fenced: its result reaches nobody.
    assert_eq!(heartbeat(s, &attempt, attempt.token, None).await, None);
    assert!(
        !finish(
            s,
            &attempt,
            attempt.token,
            ActivityResolution::Completed(json!(1)),
            None
        )
        .await
    );
    assert_eq!(history(s, "wf").await.len(), 4);
    assert!(claim_acts(s, &[Q], &[AT], 10).await.is_empty());
    // The old run's task token is fenced too.
    assert!(s
        .commit_workflow_task(commit(&c, 5, vec![]))
        .await
        .unwrap()
        .is_none());

    // The new run's first task is due; its old timer is gone, the chain's deadline stays.
    let next = claim_wft_after(s, "wf", "run-2").await;
    assert_eq!(next_due(s, &[Q], &[WT], &[AT]).await, Some(deadline));
    commit_ok(
        s,
        commit(
            &next,
            4,
            vec![EventKind::WorkflowCompleted { result: json!(2) }],
        ),
    )
    .await;
    let d = describe(s, "wf").await;
    assert_eq!(d.status, WorkflowStatus::Completed);
    assert_eq!(d.result, Some(json!(2)));
    assert_eq!(next_due(s, &[Q], &[WT], &[AT]).await, None);
    assert_eq!(s.earlier_runs("wf").await.unwrap().len(), 1);
}

fn h_carried(kind: &EventKind) -> Vec<CarriedSignal> {
    match kind {
        EventKind::WorkflowContinuedAsNew {
            carried_signals, ..
        } => carried_signals.clone(),
        _ => Vec::new(),
    }
}

/// Claims `id`'s workflow task, which must be of run `run_id`.
pub(super) async fn claim_wft_after(
    s: &dyn StoreBackend,
    id: &str,
    run_id: &str,
) -> ClaimedWorkflowTask {
    let claimed = s
        .claim_workflow_tasks(WORKER, &v(&[Q]), &v(&[WT]), 10, LONG_LEASE)
        .await
        .expect("claim_workflow_tasks");
    assert_eq!(claimed.len(), 1, "exactly one workflow task is due");
    let c = claimed.into_iter().next().unwrap();
    assert_eq!((c.workflow_id.as_str(), c.run_id.as_str()), (id, run_id));
    c
}

fn policy(
    reuse: crate::WorkflowIdReusePolicy,
    conflict: crate::WorkflowIdConflictPolicy,
) -> crate::store::StartPolicy {
    crate::store::StartPolicy { reuse, conflict }
}

fn run_of(id: &str, run_id: &str) -> NewWorkflow {
    let mut wf = new_wf(id, WT, Q, None);
    wf.run_id = run_id.into();
    wf
}

pub(super) async fn check_start_policies(s: &dyn StoreBackend) {
    use crate::WorkflowIdConflictPolicy::{Fail, UseExisting};
    use crate::WorkflowIdReusePolicy::{AllowDuplicate, AllowDuplicateFailedOnly, RejectDuplicate};
    // A free id starts.
    let out = s
        .start_workflow(
            new_wf("wf", WT, Q, None),
            policy(AllowDuplicate, UseExisting),
        )
        .await
        .unwrap();
    assert_eq!((out.started, out.run_id.as_str()), (true, "run-of-wf"));
    // Running: its handle, or a refusal; nothing is written either way.
    let out = s
        .start_workflow(run_of("wf", "other"), policy(AllowDuplicate, UseExisting))
        .await
        .unwrap();
    assert_eq!((out.started, out.run_id.as_str()), (false, "run-of-wf"));
    assert!(matches!(
        s.start_workflow(run_of("wf", "other"), policy(AllowDuplicate, Fail)).await,
        Err(Error::DuplicateWorkflowId(id)) if id == "wf"
    ));
    assert_eq!(history(s, "wf").await.len(), 1);
    let c = claim_wft(s, "wf").await;
    commit_ok(
        s,
        commit(
            &c,
            1,
            vec![EventKind::WorkflowCompleted { result: json!(1) }],
        ),
    )
    .await;

    // Ended completed: only AllowDuplicate starts again.
    assert!(matches!(
        s.start_workflow(run_of("wf", "other"), policy(AllowDuplicateFailedOnly, UseExisting)).await,
        Err(Error::WorkflowIdReuseRefused { status, .. }) if status == "completed"
    ));
    assert!(matches!(
        s.start_workflow(run_of("wf", "other"), policy(RejectDuplicate, UseExisting))
            .await,
        Err(Error::DuplicateWorkflowId(_))
    ));
    let out = s
        .start_workflow(run_of("wf", "run-2"), policy(AllowDuplicate, Fail))
        .await
        .unwrap();
    assert_eq!((out.started, out.run_id.as_str()), (true, "run-2"));
    let h = history(s, "wf").await;
    assert_eq!(h.len(), 1, "a fresh history");
    assert!(matches!(&h[0].kind, EventKind::WorkflowStarted { run_id, .. } if run_id == "run-2"));
    let d = describe(s, "wf").await;
    assert_eq!(
        (d.run_id.as_str(), d.status),
        ("run-2", WorkflowStatus::Running)
    );
    assert_eq!(d.result, None);
    let runs = s.earlier_runs("wf").await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, WorkflowStatus::Completed);
    assert_eq!(runs[0].result, Some(json!(1)));
    assert_eq!(runs[0].next_run_id.as_deref(), Some("run-2"));
    assert_eq!(
        s.earlier_run_history("wf", "run-of-wf")
            .await
            .unwrap()
            .len(),
        3
    );
    claim_wft_after(s, "wf", "run-2").await;

    // Terminated (failed): AllowDuplicateFailedOnly starts again.
    assert!(s.terminate_workflow("wf", "retry it").await.unwrap());
    let out = s
        .start_workflow(
            run_of("wf", "run-3"),
            policy(AllowDuplicateFailedOnly, Fail),
        )
        .await
        .unwrap();
    assert!(out.started);
    let runs = s.earlier_runs("wf").await.unwrap();
    assert_eq!(
        runs.iter()
            .map(|r| (r.run_id.as_str(), r.status))
            .collect::<Vec<_>>(),
        vec![
            ("run-of-wf", WorkflowStatus::Completed),
            ("run-2", WorkflowStatus::Failed)
        ]
    );
    claim_wft_after(s, "wf", "run-3").await;
}

fn reset_req(task: u64, run_id: &str) -> crate::engine::reset::ResetRequest {
    crate::engine::reset::ResetRequest {
        workflow_task: task,
        new_run_id: run_id.into(),
        reason: "bad deploy".into(),
    }
}

pub(super) async fn check_reset(s: &dyn StoreBackend) {
    let t = now_ms();
    let c = start(s, "wf").await;
    commit_ok(s, commit(&c, 1, vec![sched(2, AT), sched(3, AT)])).await; // 2, 3, marker 4
    let a = claim_acts(s, &[Q], &[AT], 1).await; // 5: #2 started
    assert_eq!(seqs(&a), vec![2]);
    assert!(
        finish(
            s,
            &a[0],
            a[0].token,
            ActivityResolution::Completed(json!(2)),
            None
        )
        .await
    ); // 6
    let c = claim_wft_after(s, "wf", "run-of-wf").await;
    commit_ok(s, commit(&c, 6, vec![timer(4, t + 60_000)])).await; // 7, marker 8

    // Bad task numbers say which there are; nothing is written.
    for bad in [0, 3] {
        let e = s
            .reset_workflow("wf", reset_req(bad, "x"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("1..=2"), "{e}");
    }
    assert!(matches!(
        s.reset_workflow("nobody", reset_req(1, "x")).await,
        Err(Error::WorkflowNotFound(_))
    ));
    assert_eq!(history(s, "wf").await.len(), 8);

    // Reset to task 2: the copy ends before its decision (the timer).
    s.reset_workflow("wf", reset_req(2, "run-2")).await.unwrap();
    let h = kinds(s, "wf").await;
    assert_eq!(
        h.iter().map(|k| k.name()).collect::<Vec<_>>(),
        vec![
            "workflow_started",
            "activity_scheduled",
            "activity_scheduled",
            "workflow_task_completed",
            "activity_started",
            "activity_completed",
            "workflow_reset"
        ]
    );
    assert_eq!(
        h[6],
        EventKind::WorkflowReset {
            previous_run_id: "run-of-wf".into(),
            workflow_task: 2,
            reason: "bad deploy".into()
        }
    );
    let d = describe(s, "wf").await;
    assert_eq!(
        (d.run_id.as_str(), d.status),
        ("run-2", WorkflowStatus::Running)
    );
    // The old run ended terminated, with the reason, and is kept whole.
    let runs = s.earlier_runs("wf").await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, WorkflowStatus::Failed);
    let error = runs[0].error.as_ref().unwrap().to_string();
    assert!(
        error.contains("Terminated") && error.contains("bad deploy"),
        "{error}"
    );
    assert_eq!(
        s.earlier_run_history("wf", "run-of-wf")
            .await
            .unwrap()
            .len(),
        9
    );
    // #3 never ended in the copy: it is pending again, for the new run; the timer of task 2
    // is gone (the task decides again).
    let again = claim_act(s, AT, 3).await;
    assert_eq!((again.run_id.as_str(), again.attempt), ("run-2", 1));
    let next = claim_wft_after(s, "wf", "run-2").await;
    commit_ok(
        s,
        commit(
            &next,
            last_seq(s, "wf").await,
            vec![EventKind::WorkflowCompleted {
                result: json!("v2"),
            }],
        ),
    )
    .await;
    assert_eq!(describe(s, "wf").await.status, WorkflowStatus::Completed);

    // An ended run resets too: no event is added to it.
    s.reset_workflow("wf", reset_req(1, "run-3")).await.unwrap();
    assert_eq!(
        kinds(s, "wf")
            .await
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>(),
        vec!["workflow_started", "workflow_reset"]
    );
    let runs = s.earlier_runs("wf").await.unwrap();
    assert_eq!(runs[1].status, WorkflowStatus::Completed);
    assert_eq!(
        s.earlier_run_history("wf", "run-2").await.unwrap().len(),
        10
    );
}
