//! The one-commit step: `finish_activity_and_continue`.

use super::support::*;

// finish_activity_and_continue

/// Starts `id`, schedules activity 1, claims it: history 1 started, 2 scheduled, 3 marker(1),
/// 4 activity_started. The worker's instance then has seen 1 and wrote through 3.
async fn one_activity_running(s: &dyn StoreBackend, id: &str) -> ClaimedActivity {
    let c = start(s, id).await;
    let out = commit_ok(s, commit(&c, 1, vec![sched(1, AT)])).await;
    assert_eq!(out.marker_seq, 3);
    claim_act(s, AT, 1).await
}

fn continuation(
    id: &str,
    commands: Vec<EventKind>,
    delivered_through: u64,
    own_marker_seq: u64,
) -> Continuation {
    Continuation {
        commit: WorkflowTaskCommit {
            workflow_id: id.into(),
            token: 0,
            processed_through: 0,
            task_time_ms: TASK_TIME,
            commands,
            eager: None,
            local_lease: None,
        },
        delivered_through,
        own_marker_seq,
    }
}

pub(super) async fn check_continue_commits(s: &dyn StoreBackend) {
    let a1 = one_activity_running(s, "wf").await;

    // A stale token writes nothing.
    let fo = s
        .finish_activity_and_continue(
            a1.task_id,
            a1.token + 1,
            ActivityResolution::Completed(json!(1)),
            None,
            continuation("wf", vec![sched(2, AT)], 1, 3),
        )
        .await
        .unwrap();
    assert!(!fo.recorded && fo.continued.is_none(), "{fo:?}");
    assert_eq!(history(s, "wf").await.len(), 4);

    let mut cont = continuation("wf", vec![sched(2, AT)], 1, 3);
    cont.commit.eager = Some(EagerClaim {
        worker_id: "cont-worker".into(),
        activity_types: v(&[AT]),
        queues: v(&[Q]),
        max: 4,
    });
    let fo = s
        .finish_activity_and_continue(
            a1.task_id,
            a1.token,
            ActivityResolution::Completed(json!("r1")),
            None,
            cont,
        )
        .await
        .unwrap();
    assert!(fo.recorded);
    let (seq, out) = fo
        .continued
        .expect("the instance saw everything: the continuation commits");
    assert_eq!(seq, 5, "the activity event's seq");
    assert!(!out.rerun);
    assert_eq!(out.marker_seq, 7);
    assert_eq!(seqs(&out.eager), vec![2]);
    assert_eq!(out.eager[0].attempt, 1);
    assert_eq!(
        kinds_from(s, "wf", 5).await,
        vec![
            EventKind::ActivityCompleted {
                activity_seq: 1,
                result: json!("r1")
            },
            sched(2, AT),
            marker(5),
            started(2, 1, "cont-worker"),
        ]
    );
    assert_no_wft(s, "the continuation was the workflow task").await;
    assert_eq!(
        describe(s, "wf").await.pending_activities,
        vec![pending(2, AT, "running", 1)]
    );

    // The next step ends the workflow.
    let a2 = &out.eager[0];
    let fo = s
        .finish_activity_and_continue(
            a2.task_id,
            a2.token,
            ActivityResolution::Completed(json!("r2")),
            None,
            continuation(
                "wf",
                vec![EventKind::WorkflowCompleted {
                    result: json!("all done"),
                }],
                5,
                7,
            ),
        )
        .await
        .unwrap();
    assert!(fo.recorded);
    let (seq, out) = fo.continued.expect("the continuation commits again");
    assert_eq!(seq, 9);
    assert_eq!(out.marker_seq, 11);
    assert_eq!(
        kinds_from(s, "wf", 9).await,
        vec![
            EventKind::ActivityCompleted {
                activity_seq: 2,
                result: json!("r2")
            },
            EventKind::WorkflowCompleted {
                result: json!("all done")
            },
            marker(9),
        ]
    );
    let d = describe(s, "wf").await;
    assert_eq!(d.status, WorkflowStatus::Completed);
    assert_eq!(d.result, Some(json!("all done")));
    assert!(d.pending_activities.is_empty());
    assert_no_wft(s, "closed").await;
}

pub(super) async fn check_continue_falls_back(s: &dyn StoreBackend) {
    // (a) A cancel request arrived (an unseen event, and a workflow task queued for it).
    let a = one_activity_running(s, "unseen-and-queued").await;
    assert!(s
        .request_cancel_workflow("unseen-and-queued")
        .await
        .unwrap()); // 5
    fallback_case(s, "unseen-and-queued", &a, 1).await;

    // (b) Another worker ran a task meanwhile: its marker is unseen; no task is queued any more.
    let a = one_activity_running(s, "unseen").await;
    assert!(s.request_cancel_workflow("unseen").await.unwrap()); // 5
    let c = claim_wft(s, "unseen").await;
    commit_ok(s, commit(&c, 5, vec![])).await; // marker 6
    fallback_case(s, "unseen", &a, 1).await;

    // (c) The instance saw every event, but a workflow task is queued.
    let a = one_activity_running(s, "queued").await;
    assert!(s.request_cancel_workflow("queued").await.unwrap()); // 5
    fallback_case(s, "queued", &a, 5).await;
}

async fn fallback_case(
    s: &dyn StoreBackend,
    id: &str,
    a: &ClaimedActivity,
    delivered_through: u64,
) {
    let len = history(s, id).await.len() as u64;
    let fo = s
        .finish_activity_and_continue(
            a.task_id,
            a.token,
            ActivityResolution::Completed(json!("r")),
            None,
            continuation(
                id,
                vec![sched(2, AT), timer(3, now_ms() - 1)],
                delivered_through,
                3,
            ),
        )
        .await
        .unwrap();
    assert!(fo.recorded, "{id}");
    assert!(
        fo.continued.is_none(),
        "{id}: the continuation must not commit: {fo:?}"
    );
    assert_eq!(
        kinds_from(s, id, len + 1).await,
        vec![EventKind::ActivityCompleted {
            activity_seq: 1,
            result: json!("r")
        }],
        "{id}: only the activity's event, no commands, no marker"
    );
    assert!(describe(s, id).await.pending_activities.is_empty(), "{id}");
    assert!(
        claim_acts(s, &[Q], &[AT], 10).await.is_empty(),
        "{id}: no command took effect"
    );
    fire(s, 0).await;
    claim_wft(s, id).await;
}

pub(super) async fn check_continue_cancels_pending(s: &dyn StoreBackend) {
    let c = start(s, "wf").await;
    commit_ok(s, commit(&c, 1, vec![sched(1, AT), sched(2, AT2)])).await; // 2, 3, marker 4
    let a1 = claim_act(s, AT, 1).await; // 5
    let fo = s
        .finish_activity_and_continue(
            a1.task_id,
            a1.token,
            ActivityResolution::Completed(json!("r1")),
            None,
            continuation(
                "wf",
                vec![EventKind::ActivityCancelRequested { activity_seq: 2 }],
                1,
                4,
            ),
        )
        .await
        .unwrap();
    assert!(fo.recorded);
    let (seq, out) = fo
        .continued
        .expect("the instance saw everything: the continuation commits");
    assert_eq!(seq, 6);
    assert!(
        out.rerun,
        "the pending activity's cancellation is a new event: a task reruns"
    );
    assert_eq!(out.marker_seq, 9);
    assert_eq!(
        kinds_from(s, "wf", 6).await,
        vec![
            EventKind::ActivityCompleted {
                activity_seq: 1,
                result: json!("r1")
            },
            EventKind::ActivityCancelRequested { activity_seq: 2 },
            EventKind::ActivityCancelled {
                activity_seq: 2,
                details: None
            },
            marker(6),
        ]
    );
    assert!(describe(s, "wf").await.pending_activities.is_empty());
    assert!(claim_acts(s, &[Q], &[AT, AT2], 10).await.is_empty());
    claim_wft(s, "wf").await;
}

/// A retry has no outcome event for a continuation to see: nothing is continued. When the retry
/// becomes a cancellation (the cancel was requested), the instance has not seen that event either.
pub(super) async fn check_continue_retry(s: &dyn StoreBackend) {
    let a = one_activity_running(s, "retried").await;
    let fo = s
        .finish_activity_and_continue(
            a.task_id,
            a.token,
            ActivityResolution::Retry {
                retry_at_ms: now_ms() + 600_000,
                last_failure: None,
            },
            None,
            continuation("retried", vec![sched(2, AT)], 1, 3),
        )
        .await
        .unwrap();
    assert!(fo.recorded);
    assert!(fo.continued.is_none(), "a retry continues nothing: {fo:?}");
    assert_eq!(
        history(s, "retried").await.len(),
        4,
        "a retry appends nothing"
    );
    assert_eq!(
        describe(s, "retried").await.pending_activities,
        vec![pending(1, AT, "pending", 1)]
    );
    assert_no_wft(s, "a retry enqueues no workflow task").await;

    let a = one_activity_running(s, "cancel-requested").await; // 1..4
    assert!(s.request_cancel_workflow("cancel-requested").await.unwrap()); // 5
    let c = claim_wft(s, "cancel-requested").await;
    commit_ok(
        s,
        commit(
            &c,
            5,
            vec![EventKind::ActivityCancelRequested { activity_seq: 1 }],
        ),
    )
    .await; // 6, marker 7
    let fo = s
        .finish_activity_and_continue(
            a.task_id,
            a.token,
            ActivityResolution::Retry {
                retry_at_ms: now_ms(),
                last_failure: None,
            },
            None,
            continuation("cancel-requested", vec![sched(2, AT)], 5, 7),
        )
        .await
        .unwrap();
    assert!(fo.recorded);
    assert!(
        fo.continued.is_none(),
        "the continuation was computed without the activity_cancelled the retry became: {fo:?}"
    );
    assert_eq!(
        kinds_from(s, "cancel-requested", 8).await,
        vec![EventKind::ActivityCancelled { activity_seq: 1, details: None }],
        "the retry of a cancel-requested attempt becomes activity_cancelled; no commands, no marker"
    );
    assert!(describe(s, "cancel-requested")
        .await
        .pending_activities
        .is_empty());
    assert!(
        claim_acts(s, &[Q], &[AT], 10).await.is_empty(),
        "no command took effect"
    );
    claim_wft(s, "cancel-requested").await;
}

// ---------------------------------------------------------------------------------------------
