//! Committing a workflow task: commands, marker, cancels, closes, reruns, eager claims.

use super::support::*;

// commit_workflow_task

pub(super) async fn check_commit_stale_token(s: &dyn StoreBackend) {
    create(s, "wf").await;
    let old = s
        .claim_workflow_tasks(WORKER, &v(&[Q]), &v(&[WT]), 10, 1)
        .await
        .unwrap()
        .remove(0);
    tokio::time::sleep(Duration::from_millis(10)).await;
    let current = claim_wft(s, "wf").await;
    assert!(current.token > old.token);

    let t = now_ms();
    let cmds = vec![
        sched(1, AT),
        timer(2, t - 1),
        EventKind::WorkflowCompleted { result: json!(1) },
    ];
    let r = s
        .commit_workflow_task(commit(&old, 1, cmds.clone()))
        .await
        .unwrap();
    assert!(r.is_none(), "a stale token returns None");
    assert_eq!(
        history(s, "wf").await.len(),
        1,
        "a stale commit appends nothing"
    );
    let d = describe(s, "wf").await;
    assert_eq!(
        d.status,
        WorkflowStatus::Running,
        "a stale commit does not close the workflow"
    );
    assert!(
        d.pending_activities.is_empty(),
        "a stale commit creates no activity task"
    );
    fire(s, 0).await;

    // A wrong token (never issued) is refused as well.
    let mut wrong = commit(&current, 1, cmds.clone());
    wrong.token = current.token + 1;
    assert!(s.commit_workflow_task(wrong).await.unwrap().is_none());
    assert_eq!(history(s, "wf").await.len(), 1);

    let out = commit_ok(s, commit(&current, 1, vec![])).await;
    assert_eq!(out.marker_seq, 2);
    // The task ended: committing it again with the same token is refused.
    let r = s
        .commit_workflow_task(commit(&current, 2, cmds))
        .await
        .unwrap();
    assert!(r.is_none(), "a task that ended cannot commit again");
    assert_eq!(history(s, "wf").await.len(), 2);

    // Unknown workflow.
    let mut unknown = commit(&current, 1, vec![]);
    unknown.workflow_id = "nope".into();
    assert!(s.commit_workflow_task(unknown).await.unwrap().is_none());
}

pub(super) async fn check_commit_commands_and_marker(s: &dyn StoreBackend) {
    let c = start(s, "wf").await;
    let options = ActivityOptions {
        start_to_close_timeout: Some(Duration::from_secs(10)),
        task_queue: Some(Q.into()),
        ..ActivityOptions::default()
    };
    let t = now_ms();
    let commands = vec![
        scheduled_with(1, AT, Q, options.clone(), false),
        sched_local(2),
        timer(3, t + 600_000),
        scheduled_with(4, AT2, Q2, ActivityOptions::default(), false),
    ];
    let out = commit_ok(s, commit(&c, 1, commands.clone())).await;
    assert!(!out.rerun, "nothing new arrived: no rerun");
    assert!(out.eager.is_empty(), "no eager claim was asked for");
    assert_eq!(out.marker_seq, 6, "the marker follows the four commands");

    let h = kinds(s, "wf").await;
    let mut expected = vec![h[0].clone()];
    expected.extend(commands);
    expected.push(marker(1));
    assert_eq!(h, expected, "commands in order, then the marker");

    let d = describe(s, "wf").await;
    assert_eq!(d.history_length, 6);
    assert_eq!(
        d.pending_activities,
        vec![pending(1, AT, "pending", 0), pending(4, AT2, "pending", 0)],
        "one activity task per remote activity; none for the local one"
    );
    assert_no_wft(s, "the workflow task ended with its commit").await;

    let a = claim_act(s, AT, 1).await;
    assert_eq!(a.input, input_of(1));
    assert_eq!(a.options, options);
    assert_eq!(a.run_id, "run-of-wf");
    let b = claim_acts(s, &[Q2], &[AT2], 10).await;
    assert_eq!(seqs(&b), vec![4]);
    assert!(claim_acts(s, &[Q, Q2], &[AT, AT2], 10).await.is_empty());
}

pub(super) async fn check_timers(s: &dyn StoreBackend) {
    let c = start(s, "wf").await;
    let t = now_ms();
    let out = commit_ok(
        s,
        commit(&c, 1, vec![timer(1, t + 20), timer(2, t + 600_000)]),
    )
    .await;
    assert_eq!(out.marker_seq, 4);
    assert_eq!(
        next_due(s, &[Q], &[WT], &[AT]).await,
        Some(t + 20),
        "the first timer is next"
    );
    assert_no_wft(s, "nothing happened yet").await;

    sleep_past(t + 20).await;
    fire(s, 1).await;
    assert_eq!(
        kinds_from(s, "wf", 5).await,
        vec![EventKind::TimerFired { timer_seq: 1 }]
    );
    let c2 = claim_wft(s, "wf").await;
    assert!(c2.token > c.token);
    fire(s, 0).await;

    let out = commit_ok(
        s,
        commit(&c2, 5, vec![EventKind::TimerCancelled { timer_seq: 2 }]),
    )
    .await;
    assert!(!out.rerun);
    assert_eq!(out.marker_seq, 7);
    assert_eq!(
        kinds_from(s, "wf", 6).await,
        vec![EventKind::TimerCancelled { timer_seq: 2 }, marker(5)]
    );
    assert_eq!(
        next_due(s, &[Q], &[WT], &[AT]).await,
        None,
        "the cancelled timer is gone"
    );
    fire(s, 0).await;
}

pub(super) async fn check_cancel_pending_activity(s: &dyn StoreBackend) {
    let c = start(s, "wf").await;
    commit_ok(s, commit(&c, 1, vec![sched(1, AT), sched(2, AT2)])).await; // 2, 3, marker 4
                                                                          // Activity 2 ran once and waits for its retry, with heartbeat details.
    let a2 = claim_act(s, AT2, 2).await; // 5
    let details = json!({ "progress": 7 });
    assert!(
        finish(
            s,
            &a2,
            a2.token,
            ActivityResolution::Retry {
                retry_at_ms: now_ms() + 600_000,
                last_failure: None,
            },
            Some(details.clone()),
        )
        .await
    );
    assert!(s.request_cancel_workflow("wf").await.unwrap()); // 6
    let c2 = claim_wft(s, "wf").await;
    let out = commit_ok(
        s,
        commit(
            &c2,
            6,
            vec![
                EventKind::ActivityCancelRequested { activity_seq: 1 },
                EventKind::ActivityCancelRequested { activity_seq: 2 },
            ],
        ),
    )
    .await;
    assert!(
        out.rerun,
        "a pending activity's cancellation is a new event: the task reruns"
    );
    assert_eq!(out.marker_seq, 11);
    assert_eq!(
        kinds_from(s, "wf", 7).await,
        vec![
            EventKind::ActivityCancelRequested { activity_seq: 1 },
            EventKind::ActivityCancelled {
                activity_seq: 1,
                details: None
            },
            EventKind::ActivityCancelRequested { activity_seq: 2 },
            EventKind::ActivityCancelled {
                activity_seq: 2,
                details: Some(details)
            },
            marker(6),
        ]
    );
    assert!(
        describe(s, "wf").await.pending_activities.is_empty(),
        "the pending tasks are deleted"
    );
    assert!(claim_acts(s, &[Q], &[AT, AT2], 10).await.is_empty());
    let c3 = claim_wft(s, "wf").await;
    assert!(c3.token > c2.token);
}

pub(super) async fn check_cancel_running_activity(s: &dyn StoreBackend) {
    let c = start(s, "wf").await;
    commit_ok(s, commit(&c, 1, vec![sched(1, AT)])).await; // 2, marker 3
    let a = claim_act(s, AT, 1).await; // 4
    assert_eq!(heartbeat(s, &a, a.token, None).await, Some(false));
    assert!(s.request_cancel_workflow("wf").await.unwrap()); // 5
    let c2 = claim_wft(s, "wf").await;
    let out = commit_ok(
        s,
        commit(
            &c2,
            5,
            vec![EventKind::ActivityCancelRequested { activity_seq: 1 }],
        ),
    )
    .await;
    assert!(
        !out.rerun,
        "a running attempt's cancel is only a flag: no new event"
    );
    assert_eq!(out.marker_seq, 7);
    assert_eq!(
        kinds_from(s, "wf", 6).await,
        vec![
            EventKind::ActivityCancelRequested { activity_seq: 1 },
            marker(5)
        ]
    );
    assert_eq!(
        describe(s, "wf").await.pending_activities,
        vec![PendingActivity {
            cancel_requested: true,
            ..pending(1, AT, "running", 1)
        }]
    );
    assert_eq!(
        heartbeat(s, &a, a.token, None).await,
        Some(true),
        "the next heartbeat hears it"
    );
    assert_no_wft(s, "no rerun").await;

    // The attempt ends cancelled.
    let details = json!({ "stopped-at": 3 });
    assert!(
        finish(
            s,
            &a,
            a.token,
            ActivityResolution::Cancelled {
                details: Some(details.clone())
            },
            None
        )
        .await
    );
    assert_eq!(
        kinds_from(s, "wf", 8).await,
        vec![EventKind::ActivityCancelled {
            activity_seq: 1,
            details: Some(details)
        }]
    );
    claim_wft(s, "wf").await;
}

/// One close command on a workflow with a pending activity, a running one and two timers.
async fn close_case(
    s: &dyn StoreBackend,
    id: &str,
    close: EventKind,
    status: WorkflowStatus,
    result: Option<Value>,
    error: Option<WorkflowError>,
) {
    let c = start(s, id).await;
    let t = now_ms();
    commit_ok(
        s,
        commit(
            &c,
            1,
            vec![
                sched(1, AT),
                sched(2, AT2),
                timer(3, t - 1),
                timer(4, t + 30_000),
            ],
        ),
    )
    .await; // 2..5, marker 6
    let running = claim_act(s, AT2, 2).await; // 7
    fire(s, 1).await; // 8: timer 3
    let c2 = claim_wft(s, id).await;
    let out = commit_ok(s, commit(&c2, 8, vec![close.clone()])).await;
    assert!(!out.rerun);
    assert_eq!(out.marker_seq, 10);
    assert_eq!(kinds_from(s, id, 9).await, vec![close, marker(8)]);

    let d = describe(s, id).await;
    assert_eq!(d.status, status);
    assert_eq!(d.result, result);
    assert_eq!(d.error, error);
    assert!(d.closed_ms.is_some_and(|x| x >= t), "{:?}", d.closed_ms);
    assert_eq!(d.history_length, 10);
    assert_eq!(
        d.pending_activities,
        vec![PendingActivity {
            cancel_requested: true,
            ..pending(2, AT2, "running", 1)
        }],
        "pending activity tasks are withdrawn; running attempts are told to cancel"
    );
    assert_no_wft(s, "a closed workflow has no task").await;
    assert!(claim_acts(s, &[Q], &[AT, AT2], 10).await.is_empty());
    assert_eq!(
        heartbeat(s, &running, running.token, None).await,
        Some(true)
    );
    fire(s, 0).await;
    // Timer 4 is withdrawn: what remains due is the running attempt's deadline.
    let hb_deadline = move_deadline(s, &running).await;
    assert_eq!(
        next_due(s, &[Q], &[WT], &[AT, AT2]).await,
        Some(hb_deadline)
    );
    // A closed workflow takes no more commits.
    assert!(s
        .commit_workflow_task(commit(&c2, 10, vec![]))
        .await
        .unwrap()
        .is_none());
    assert!(!s.request_cancel_workflow(id).await.unwrap());
    assert_eq!(history(s, id).await.len(), 10);

    // The late attempt ends: nothing more is recorded, and its task goes.
    assert!(
        finish(
            s,
            &running,
            running.token,
            ActivityResolution::Completed(json!(0)),
            None
        )
        .await
    );
    assert_eq!(history(s, id).await.len(), 10);
    assert!(describe(s, id).await.pending_activities.is_empty());
    assert_eq!(next_due(s, &[Q], &[WT], &[AT, AT2]).await, None);
}

/// Moves a running attempt's deadline to a value of our own with a heartbeat, and returns it: the
/// deadline `next_due_ms` must then report.
async fn move_deadline(s: &dyn StoreBackend, a: &ClaimedActivity) -> i64 {
    let deadline = now_ms() + 7_654_321;
    let r = s
        .heartbeat(a.task_id, a.token, None, (deadline, TimeoutKind::Heartbeat))
        .await
        .unwrap();
    assert!(r.is_some(), "the attempt's token is current");
    deadline
}

pub(super) async fn check_close_workflow(s: &dyn StoreBackend) {
    close_case(
        s,
        "completed",
        EventKind::WorkflowCompleted {
            result: json!({ "answer": 42 }),
        },
        WorkflowStatus::Completed,
        Some(json!({ "answer": 42 })),
        None,
    )
    .await;
    let error = WorkflowError::application("Boom", "the workflow failed");
    close_case(
        s,
        "failed",
        EventKind::WorkflowFailed {
            error: error.clone(),
        },
        WorkflowStatus::Failed,
        None,
        Some(error),
    )
    .await;
    close_case(
        s,
        "cancelled",
        EventKind::WorkflowCancelled {},
        WorkflowStatus::Cancelled,
        None,
        None,
    )
    .await;
}

pub(super) async fn check_commit_rerun_when_history_moved(s: &dyn StoreBackend) {
    let c = start(s, "wf").await;
    let t = now_ms();
    commit_ok(s, commit(&c, 1, vec![timer(1, t - 2), timer(2, t - 1)])).await; // 2, 3, marker 4
    assert_eq!(s.fire_due_timers(1).await.unwrap(), 1, "max is honoured");
    assert_eq!(
        kinds_from(s, "wf", 5).await,
        vec![EventKind::TimerFired { timer_seq: 1 }]
    );
    let c2 = claim_wft(s, "wf").await; // sees through 5
                                       // Meanwhile the second timer fires.
    assert_eq!(s.fire_due_timers(1).await.unwrap(), 1);
    assert_eq!(
        kinds_from(s, "wf", 6).await,
        vec![EventKind::TimerFired { timer_seq: 2 }]
    );

    let out = commit_ok(s, commit(&c2, 5, vec![sched(3, AT)])).await;
    assert!(out.rerun, "an event the task had not seen: it reruns");
    assert_eq!(out.marker_seq, 8);
    assert_eq!(kinds_from(s, "wf", 7).await, vec![sched(3, AT), marker(5)]);
    // The commands still took effect, and the task is pending again.
    claim_act(s, AT, 3).await; // 9
    let c3 = claim_wft(s, "wf").await;
    assert!(c3.token > c2.token);
    let out = commit_ok(s, commit(&c3, 9, vec![])).await;
    assert!(!out.rerun, "a task that saw everything does not rerun");
    assert_eq!(out.marker_seq, 10);
    assert_no_wft(s, "the task ended").await;
}

pub(super) async fn check_eager_claims(s: &dyn StoreBackend) {
    let c = start(s, "wf").await;
    let mut cm = commit(
        &c,
        1,
        vec![
            sched(1, AT),
            sched(2, AT2),
            scheduled_with(3, AT, Q2, ActivityOptions::default(), false),
            sched(4, AT),
            sched(5, AT),
            sched_local(6),
        ],
    );
    cm.eager = Some(EagerClaim {
        worker_id: "eager-worker".into(),
        activity_types: v(&[AT]),
        queues: v(&[Q]),
        max: 2,
    });
    let before = now_ms();
    let out = commit_ok(s, cm).await;
    let after = now_ms();
    assert!(!out.rerun);
    assert_eq!(out.marker_seq, 8);
    assert_eq!(
        seqs(&out.eager),
        vec![1, 4],
        "up to max, of the matching types and queues, in order"
    );
    for e in &out.eager {
        assert_eq!(e.workflow_id, "wf");
        assert_eq!(e.run_id, "run-of-wf");
        assert_eq!(e.activity_type, AT);
        assert_eq!(e.task_queue, Q);
        assert_eq!(e.input, input_of(e.activity_seq));
        assert_eq!(e.options, ActivityOptions::default());
        assert_eq!(e.attempt, 1);
        assert!(!e.cancel_requested);
        assert_eq!(e.heartbeat_details, None);
        assert!((before..=after).contains(&e.started_ms));
        assert_eq!(
            e.deadline_ms,
            Some(
                e.started_ms + crate::definition::DEFAULT_START_TO_CLOSE_TIMEOUT.as_millis() as i64
            )
        );
    }
    assert_eq!(
        kinds_from(s, "wf", 8).await,
        vec![
            marker(1),
            started(1, 1, "eager-worker"),
            started(4, 1, "eager-worker")
        ],
        "activity_started follows the marker"
    );
    assert_eq!(
        describe(s, "wf").await.pending_activities,
        vec![
            pending(1, AT, "running", 1),
            pending(2, AT2, "pending", 0),
            pending(3, AT, "pending", 0),
            pending(4, AT, "running", 1),
            pending(5, AT, "pending", 0),
        ]
    );
    // The eager attempts hold valid tokens.
    assert_eq!(
        heartbeat(s, &out.eager[0], out.eager[0].token, None).await,
        Some(false)
    );
    assert!(
        finish(
            s,
            &out.eager[1],
            out.eager[1].token,
            ActivityResolution::Completed(json!(4)),
            None
        )
        .await
    );
    assert_eq!(
        kinds_from(s, "wf", 11).await,
        vec![EventKind::ActivityCompleted {
            activity_seq: 4,
            result: json!(4)
        }]
    );
    // The rest is claimable as usual.
    assert_eq!(seqs(&claim_acts(s, &[Q], &[AT], 10).await), vec![5]);
    assert_eq!(seqs(&claim_acts(s, &[Q], &[AT2], 10).await), vec![2]);
    assert_eq!(seqs(&claim_acts(s, &[Q2], &[AT], 10).await), vec![3]);
}

pub(super) async fn check_eager_claims_only_new_tasks(s: &dyn StoreBackend) {
    let c = start(s, "wf").await;
    commit_ok(s, commit(&c, 1, vec![sched(1, AT), timer(2, now_ms() - 1)])).await; // 2, 3, marker 4
    fire(s, 1).await; // 5
    let c2 = claim_wft(s, "wf").await;
    let mut cm = commit(&c2, 5, vec![sched(3, AT)]);
    cm.eager = Some(EagerClaim {
        worker_id: "eager-worker".into(),
        activity_types: v(&[AT]),
        queues: v(&[Q]),
        max: 5,
    });
    let out = commit_ok(s, cm).await;
    assert_eq!(out.marker_seq, 7);
    assert_eq!(
        seqs(&out.eager),
        vec![3],
        "an eager claim takes the commit's new activity tasks, not older pending ones"
    );
    assert_eq!(
        kinds_from(s, "wf", 7).await,
        vec![marker(5), started(3, 1, "eager-worker")]
    );
    assert_eq!(seqs(&claim_acts(s, &[Q], &[AT], 10).await), vec![1]);
}

// ---------------------------------------------------------------------------------------------
