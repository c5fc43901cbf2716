//! A new run: `create_workflow` and its execution deadline.

use super::support::*;

// create_workflow

pub(super) async fn check_create_workflow(s: &dyn StoreBackend) {
    let before = now_ms();
    create(s, "wf").await;
    let after = now_ms();

    let h = history(s, "wf").await;
    assert_eq!(h.len(), 1, "a new run has one event");
    assert_eq!(
        h[0].kind,
        EventKind::WorkflowStarted {
            workflow_type: WT.into(),
            input: json!({ "input-of": "wf" }),
            task_queue: Q.into(),
            run_id: "run-of-wf".into(),
        }
    );
    assert!(
        (before..=after).contains(&h[0].time_ms),
        "event time is the store's clock"
    );

    let d = describe(s, "wf").await;
    assert_eq!(d.workflow_id, "wf");
    assert_eq!(d.run_id, "run-of-wf");
    assert_eq!(d.workflow_type, WT);
    assert_eq!(d.task_queue, Q);
    assert_eq!(d.status, WorkflowStatus::Running);
    assert_eq!(d.result, None);
    assert_eq!(d.error, None);
    assert!((before..=after).contains(&d.started_ms));
    assert_eq!(d.closed_ms, None);
    assert_eq!(d.history_length, 1);
    assert_eq!(d.held_reason, None);
    assert!(!d.cancel_requested);
    assert!(d.pending_activities.is_empty());

    // Its first workflow task is pending and due at once.
    assert_eq!(next_due(s, &[Q], &[WT], &[]).await, Some(d.started_ms));

    // A duplicate id is refused and writes nothing: no event, no row change, no task, no timer.
    let mut dup = new_wf("wf", WT2, Q2, Some(now_ms() - 1));
    dup.run_id = "another-run".into();
    dup.input = json!("another input");
    match s.create_workflow(dup).await {
        Err(Error::DuplicateWorkflowId(id)) => assert_eq!(id, "wf"),
        other => panic!("a duplicate id must be Error::DuplicateWorkflowId, got {other:?}"),
    }
    assert_eq!(history(s, "wf").await, h);
    assert_eq!(describe(s, "wf").await, d);
    assert_eq!(s.list(&ListFilter::all()).await.unwrap().len(), 1);
    fire(s, 0).await;
    let claimed = s
        .claim_workflow_tasks(WORKER, &v(&[Q, Q2]), &v(&[WT, WT2]), 10, LONG_LEASE)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "one workflow task, the original's");
    assert_eq!(claimed[0].workflow_id, "wf");
    assert_eq!(claimed[0].run_id, "run-of-wf");
    assert_eq!(claimed[0].workflow_type, WT);
    assert_eq!(claimed[0].task_queue, Q);
}

pub(super) async fn check_execution_deadline(s: &dyn StoreBackend) {
    let t0 = now_ms();
    // Another workflow (of another type, so the claims below skip its task) whose deadline is far.
    s.create_workflow(new_wf("far", WT2, Q, Some(t0 + 60_000)))
        .await
        .unwrap();
    let deadline = t0 + 5;
    s.create_workflow(new_wf("near", WT, Q, Some(deadline)))
        .await
        .unwrap();
    let c = claim_wft(s, "near").await;
    commit_ok(
        s,
        commit(
            &c,
            1,
            vec![sched(1, AT), sched(2, AT2), timer(3, t0 + 30_000)],
        ),
    )
    .await;
    let running = claim_act(s, AT2, 2).await;
    let before = history(s, "near").await;
    assert_eq!(before.len(), 6);

    sleep_past(deadline).await;
    fire(s, 1).await;

    let h = kinds(s, "near").await;
    assert_eq!(h.len(), 7, "one event: workflow_failed");
    let EventKind::WorkflowFailed { error } = &h[6] else {
        panic!("the deadline appends workflow_failed, got {:?}", h[6]);
    };
    let WorkflowError::Application { error_type, .. } = error else {
        panic!("an execution timeout is an application error, got {error:?}");
    };
    assert_eq!(error_type, "ExecutionTimeout");

    let d = describe(s, "near").await;
    assert_eq!(d.status, WorkflowStatus::Failed);
    assert_eq!(d.error.as_ref(), Some(error));
    assert_eq!(d.result, None);
    assert!(
        d.closed_ms.is_some_and(|t| t >= deadline),
        "{:?}",
        d.closed_ms
    );
    assert_eq!(d.history_length, 7);
    assert_eq!(
        d.pending_activities,
        vec![PendingActivity {
            cancel_requested: true,
            ..pending(2, AT2, "running", 1)
        }],
        "the pending activity task is withdrawn; the running attempt is told to cancel"
    );
    assert_no_wft(s, "a failed workflow has no task").await;
    assert!(claim_acts(s, &[Q], &[AT, AT2], 10).await.is_empty());
    assert_eq!(
        heartbeat(s, &running, running.token, None).await,
        Some(true)
    );
    // Timer 3 (due at t0 + 30 s) is withdrawn: the next due time is the other workflow's deadline
    // (the running attempt's deadline is 5 minutes away).
    assert_eq!(
        next_due(s, &[Q], &[WT], &[AT, AT2]).await,
        Some(t0 + 60_000)
    );
    fire(s, 0).await;

    let far = describe(s, "far").await;
    assert_eq!(far.status, WorkflowStatus::Running);
    assert_eq!(far.history_length, 1);
}

// ---------------------------------------------------------------------------------------------
