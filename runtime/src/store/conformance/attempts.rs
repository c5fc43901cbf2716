//! Activity attempts: claims, heartbeats, outcomes, retries.

use super::support::*;

// Activity attempts

pub(super) async fn check_claim_activity_tasks(s: &dyn StoreBackend) {
    let c = start(s, "wf").await;
    let options = ActivityOptions {
        start_to_close_timeout: Some(Duration::from_secs(10)),
        ..ActivityOptions::default()
    };
    let scheduled_before = now_ms();
    commit_ok(
        s,
        commit(
            &c,
            1,
            vec![
                scheduled_with(1, AT, Q, options.clone(), false),
                sched(2, AT2),
                scheduled_with(3, AT, Q2, ActivityOptions::default(), false),
                sched(4, AT),
                sched(5, AT),
            ],
        ),
    )
    .await; // 2..6, marker 7
    let scheduled_after = now_ms();

    let before = now_ms();
    let got = s
        .claim_activity_tasks("act-worker", &v(&[Q]), &v(&[AT]), 1)
        .await
        .unwrap();
    let after = now_ms();
    assert_eq!(
        seqs(&got),
        vec![1],
        "max 1: the first due task of the queue and type"
    );
    let a = &got[0];
    assert_eq!(a.workflow_id, "wf");
    assert_eq!(a.run_id, "run-of-wf");
    assert_eq!(a.activity_type, AT);
    assert_eq!(a.task_queue, Q);
    assert_eq!(a.input, input_of(1));
    assert_eq!(a.options, options);
    assert_eq!(a.attempt, 1);
    assert!(!a.cancel_requested);
    assert_eq!(a.heartbeat_details, None);
    assert!((scheduled_before..=scheduled_after).contains(&a.scheduled_ms));
    assert!((before..=after).contains(&a.started_ms));
    assert_eq!(
        a.deadline_ms,
        Some(a.started_ms + 10_000),
        "start-to-close deadline"
    );
    assert_eq!(
        kinds_from(s, "wf", 8).await,
        vec![started(1, 1, "act-worker")]
    );
    assert_eq!(
        describe(s, "wf").await.pending_activities[0],
        pending(1, AT, "running", 1)
    );

    // Not claimed twice; the filters hold.
    assert_eq!(seqs(&claim_acts(s, &[Q], &[AT], 10).await), vec![4, 5]);
    assert!(claim_acts(s, &[Q], &[AT], 10).await.is_empty());
    assert!(claim_acts(s, &[Q2], &[AT2], 10).await.is_empty());
    assert!(claim_acts(s, &[], &[AT, AT2], 10).await.is_empty());
    assert_eq!(seqs(&claim_acts(s, &[Q], &[AT2], 10).await), vec![2]);
    assert_eq!(seqs(&claim_acts(s, &[Q2], &[AT], 10).await), vec![3]);

    // A second attempt: attempt and token go up, details carry over, activity_started again.
    let details = json!({ "page": 2 });
    assert!(
        finish(
            s,
            a,
            a.token,
            ActivityResolution::Retry {
                retry_at_ms: now_ms(),
                last_failure: None,
            },
            Some(details.clone())
        )
        .await
    );
    let len = last_seq(s, "wf").await;
    let b = claim_act(s, AT, 1).await;
    assert_eq!(b.task_id, a.task_id, "the same task, attempted again");
    assert_eq!(b.attempt, 2);
    assert!(b.token > a.token, "each claim bumps the token");
    assert_eq!(b.heartbeat_details, Some(details));
    assert_eq!(b.scheduled_ms, a.scheduled_ms, "scheduled once");
    assert_eq!(
        kinds_from(s, "wf", len + 1).await,
        vec![started(1, 2, WORKER)]
    );
}

pub(super) async fn check_heartbeat(s: &dyn StoreBackend) {
    let c = start(s, "wf").await;
    commit_ok(s, commit(&c, 1, vec![sched(1, AT)])).await;
    let a1 = claim_act(s, AT, 1).await;
    assert!(
        finish(
            s,
            &a1,
            a1.token,
            ActivityResolution::Retry {
                retry_at_ms: now_ms(),
                last_failure: None,
            },
            None
        )
        .await
    );
    // The attempt ended (the task is pending): its heartbeat is refused.
    assert_eq!(heartbeat(s, &a1, a1.token, Some(json!("late"))).await, None);
    let a2 = claim_act(s, AT, 1).await;
    let len = history(s, "wf").await.len();

    // A stale token writes nothing.
    assert_eq!(
        heartbeat(s, &a1, a1.token, Some(json!("stale"))).await,
        None
    );
    assert_eq!(
        describe(s, "wf").await.pending_activities[0].heartbeat_details,
        None
    );

    // The current one stores the details and moves the deadline.
    let deadline = now_ms() + 5_555_555;
    let r = s
        .heartbeat(
            a2.task_id,
            a2.token,
            Some(json!({ "step": 1 })),
            (deadline, TimeoutKind::Heartbeat),
        )
        .await
        .unwrap();
    assert_eq!(r, Some(false), "no cancel requested");
    assert_eq!(
        describe(s, "wf").await.pending_activities,
        vec![PendingActivity {
            heartbeat_details: Some(json!({ "step": 1 })),
            ..pending(1, AT, "running", 2)
        }]
    );
    assert_eq!(
        next_due(s, &[Q], &[WT], &[AT]).await,
        Some(deadline),
        "the deadline moved"
    );
    assert_eq!(
        heartbeat(s, &a2, a2.token, Some(json!({ "step": 2 }))).await,
        Some(false)
    );
    assert_eq!(
        describe(s, "wf").await.pending_activities[0].heartbeat_details,
        Some(json!({ "step": 2 }))
    );
    assert_eq!(
        history(s, "wf").await.len(),
        len,
        "heartbeats append no event"
    );
    // Unknown task.
    let r = s
        .heartbeat(
            a2.task_id + 1000,
            1,
            None,
            (deadline, TimeoutKind::Heartbeat),
        )
        .await
        .unwrap();
    assert_eq!(r, None);
}

pub(super) async fn check_finish_outcomes(s: &dyn StoreBackend) {
    let cases = vec![
        (
            "completed",
            ActivityResolution::Completed(json!({ "ok": true })),
            EventKind::ActivityCompleted {
                activity_seq: 1,
                result: json!({ "ok": true }),
            },
        ),
        (
            "failed",
            ActivityResolution::Failed(app_error("Broken")),
            EventKind::ActivityFailed {
                activity_seq: 1,
                error: app_error("Broken"),
            },
        ),
        (
            "timed-out",
            ActivityResolution::TimedOut(ActivityError::Timeout {
                kind: TimeoutKind::StartToClose,
                details: Some(json!(5)),
            }),
            EventKind::ActivityTimedOut {
                activity_seq: 1,
                error: ActivityError::Timeout {
                    kind: TimeoutKind::StartToClose,
                    details: Some(json!(5)),
                },
            },
        ),
        (
            "cancelled",
            ActivityResolution::Cancelled {
                details: Some(json!("partial")),
            },
            EventKind::ActivityCancelled {
                activity_seq: 1,
                details: Some(json!("partial")),
            },
        ),
    ];
    for (id, resolution, event) in cases {
        let c = start(s, id).await;
        commit_ok(s, commit(&c, 1, vec![sched(1, AT)])).await; // 2, marker 3
        let a = claim_act(s, AT, 1).await; // 4
        let before = history(s, id).await;
        let d = describe(s, id).await;

        // A token that does not match writes nothing.
        assert!(
            !finish(s, &a, a.token + 1, resolution.clone(), None).await,
            "{id}: wrong token"
        );
        assert!(
            !finish(s, &a, a.token - 1, resolution.clone(), None).await,
            "{id}: old token"
        );
        assert_eq!(history(s, id).await, before, "{id}: nothing appended");
        assert_eq!(describe(s, id).await, d, "{id}: nothing changed");
        assert_no_wft(s, "a fenced finish enqueues nothing").await;

        assert!(finish(s, &a, a.token, resolution, None).await, "{id}");
        assert_eq!(kinds_from(s, id, 5).await, vec![event], "{id}");
        assert!(
            describe(s, id).await.pending_activities.is_empty(),
            "{id}: the task is gone"
        );
        claim_wft(s, id).await;
        // The attempt has ended: finishing it again is refused.
        assert!(
            !finish(
                s,
                &a,
                a.token,
                ActivityResolution::Completed(json!(0)),
                None
            )
            .await,
            "{id}"
        );
        assert_eq!(history(s, id).await.len(), 5, "{id}");
    }
}

pub(super) async fn check_finish_retry(s: &dyn StoreBackend) {
    let c = start(s, "wf").await;
    commit_ok(s, commit(&c, 1, vec![sched(1, AT), sched(2, AT)])).await; // 2, 3, marker 4
    let got = claim_acts(s, &[Q], &[AT], 10).await; // 5, 6
    assert_eq!(seqs(&got), vec![1, 2]);
    let (a1, a2) = (&got[0], &got[1]);
    let len = history(s, "wf").await.len();

    // Within the running attempts' deadlines (5 minutes), so it is the earliest due time.
    let far = now_ms() + 100_000;
    let details = json!({ "step": 3 });
    assert!(
        finish(
            s,
            a1,
            a1.token,
            ActivityResolution::Retry {
                retry_at_ms: far,
                last_failure: None,
            },
            Some(details.clone())
        )
        .await
    );
    assert_eq!(
        history(s, "wf").await.len(),
        len,
        "a retry appends no event"
    );
    assert_no_wft(s, "a retry enqueues no workflow task").await;
    assert_eq!(
        describe(s, "wf").await.pending_activities,
        vec![
            PendingActivity {
                heartbeat_details: Some(details),
                ..pending(1, AT, "pending", 1)
            },
            pending(2, AT, "running", 1),
        ]
    );
    assert_eq!(
        next_due(s, &[Q], &[WT], &[AT]).await,
        Some(far),
        "visible at retry_at"
    );
    assert!(
        claim_acts(s, &[Q], &[AT], 10).await.is_empty(),
        "not claimable before retry_at"
    );

    let near = now_ms() + 10;
    assert!(
        finish(
            s,
            a2,
            a2.token,
            ActivityResolution::Retry {
                retry_at_ms: near,
                last_failure: None,
            },
            None
        )
        .await
    );
    assert_eq!(next_due(s, &[Q], &[WT], &[AT]).await, Some(near));
    sleep_past(near).await;
    let b = claim_act(s, AT, 2).await;
    assert_eq!(b.attempt, 2);
    assert!(b.token > a2.token);
    assert_eq!(
        kinds_from(s, "wf", len as u64 + 1).await,
        vec![started(2, 2, WORKER)]
    );
}

pub(super) async fn check_retry_of_cancelled_attempt(s: &dyn StoreBackend) {
    let c = start(s, "wf").await;
    commit_ok(s, commit(&c, 1, vec![sched(1, AT)])).await; // 2, marker 3
    let a = claim_act(s, AT, 1).await; // 4
    assert_eq!(
        heartbeat(s, &a, a.token, Some(json!({ "hb": 1 }))).await,
        Some(false)
    );
    assert!(s.request_cancel_workflow("wf").await.unwrap()); // 5
    let c2 = claim_wft(s, "wf").await;
    commit_ok(
        s,
        commit(
            &c2,
            5,
            vec![EventKind::ActivityCancelRequested { activity_seq: 1 }],
        ),
    )
    .await; // 6, marker 7

    // The attempt failed and would be retried, but its cancel was requested: it ends cancelled.
    assert!(
        finish(
            s,
            &a,
            a.token,
            ActivityResolution::Retry {
                retry_at_ms: now_ms(),
                last_failure: None,
            },
            None
        )
        .await
    );
    assert_eq!(
        kinds_from(s, "wf", 8).await,
        vec![EventKind::ActivityCancelled {
            activity_seq: 1,
            details: Some(json!({ "hb": 1 }))
        }],
        "a retry of a cancel-requested attempt becomes activity_cancelled, with the last details"
    );
    assert!(
        describe(s, "wf").await.pending_activities.is_empty(),
        "not put back"
    );
    assert!(claim_acts(s, &[Q], &[AT], 10).await.is_empty());
    claim_wft(s, "wf").await;
}

pub(super) async fn check_finish_after_close(s: &dyn StoreBackend) {
    let c = start(s, "wf").await;
    commit_ok(
        s,
        commit(
            &c,
            1,
            vec![sched(1, AT), sched(2, AT), timer(3, now_ms() - 1)],
        ),
    )
    .await; // 2..4, marker 5
    let got = claim_acts(s, &[Q], &[AT], 10).await; // 6, 7
    assert_eq!(seqs(&got), vec![1, 2]);
    fire(s, 1).await; // 8
    let c2 = claim_wft(s, "wf").await;
    commit_ok(
        s,
        commit(
            &c2,
            8,
            vec![EventKind::WorkflowCompleted {
                result: json!("done"),
            }],
        ),
    )
    .await; // 9, marker 10
    let h = history(s, "wf").await;
    assert_eq!(h.len(), 10);

    assert!(
        finish(
            s,
            &got[0],
            got[0].token,
            ActivityResolution::Completed(json!(1)),
            None
        )
        .await
    );
    assert!(
        finish(
            s,
            &got[1],
            got[1].token,
            ActivityResolution::Retry {
                retry_at_ms: now_ms(),
                last_failure: None,
            },
            None
        )
        .await
    );
    assert_eq!(
        history(s, "wf").await,
        h,
        "a closed workflow's history takes no more events"
    );
    let d = describe(s, "wf").await;
    assert_eq!(d.status, WorkflowStatus::Completed);
    assert_eq!(d.result, Some(json!("done")));
    assert!(
        d.pending_activities.is_empty(),
        "both tasks are gone; the retry was not put back"
    );
    assert!(claim_acts(s, &[Q], &[AT], 10).await.is_empty());
    assert_no_wft(s, "a closed workflow gets no task").await;
}

// ---------------------------------------------------------------------------------------------
