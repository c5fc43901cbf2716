//! Deadlines, local activities, cancel requests, holds, list, describe, next due time.

use super::support::*;

// Deadlines, local activities, cancel requests, holds, list, describe, next_due_ms.

pub(super) async fn check_expired_activities(s: &dyn StoreBackend) {
    let c = start(s, "wf").await;
    let short = ActivityOptions {
        start_to_close_timeout: Some(Duration::from_millis(1)),
        ..ActivityOptions::default()
    };
    let unstarted = ActivityOptions {
        schedule_to_start_timeout: Some(Duration::from_millis(1)),
        ..ActivityOptions::default()
    };
    commit_ok(
        s,
        commit(
            &c,
            1,
            vec![
                scheduled_with(1, AT, Q, short, false),
                sched(2, AT),
                scheduled_with(3, AT2, Q, unstarted, false),
            ],
        ),
    )
    .await; // 2..4, marker 5
    let got = claim_acts(s, &[Q], &[AT], 10).await; // 6, 7
    assert_eq!(seqs(&got), vec![1, 2]);
    let (a1, a2) = (&got[0], &got[1]);
    let d1 = a1.deadline_ms.expect("a claimed attempt has a deadline");
    sleep_past(d1 + 1).await;

    let mut expired = s.claim_expired_activities(10).await.unwrap();
    expired.sort_by_key(|e| e.task.activity_seq);
    assert_eq!(
        expired
            .iter()
            .map(|e| e.task.activity_seq)
            .collect::<Vec<_>>(),
        vec![1, 3],
        "the attempt past its start-to-close deadline and the task past its schedule-to-start one"
    );
    let e1 = &expired[0];
    assert_eq!(e1.kind, TimeoutKind::StartToClose);
    assert_eq!(e1.task.task_id, a1.task_id);
    assert_eq!(e1.task.attempt, 1);
    assert!(e1.task.token > a1.token, "the token is bumped");
    assert_eq!(
        e1.task.deadline_ms,
        Some(d1),
        "reported with the deadline that passed"
    );
    let e3 = &expired[1];
    assert_eq!(e3.kind, TimeoutKind::ScheduleToStart);
    assert_eq!(e3.task.attempt, 0, "never started");
    // Taken once: the reaper owns them now.
    assert!(s.claim_expired_activities(10).await.unwrap().is_empty());

    // The late attempt is fenced.
    let len = history(s, "wf").await.len() as u64;
    assert_eq!(heartbeat(s, a1, a1.token, Some(json!("late"))).await, None);
    assert!(
        !finish(
            s,
            a1,
            a1.token,
            ActivityResolution::Completed(json!("late")),
            None
        )
        .await
    );
    assert_eq!(
        history(s, "wf").await.len() as u64,
        len,
        "a fenced attempt writes nothing"
    );
    assert_no_wft(s, "fenced").await;

    // The reaper's tokens record the timeouts.
    let timeout = |kind| ActivityError::Failed {
        activity_type: AT.into(),
        attempts: 1,
        cause: Box::new(ActivityError::Timeout {
            kind,
            details: None,
        }),
    };
    assert!(
        finish(
            s,
            &e1.task,
            e1.task.token,
            ActivityResolution::TimedOut(timeout(TimeoutKind::StartToClose)),
            None
        )
        .await
    );
    assert!(
        finish(
            s,
            &e3.task,
            e3.task.token,
            ActivityResolution::TimedOut(timeout(TimeoutKind::ScheduleToStart)),
            None
        )
        .await
    );
    assert_eq!(
        kinds_from(s, "wf", len + 1).await,
        vec![
            EventKind::ActivityTimedOut {
                activity_seq: 1,
                error: timeout(TimeoutKind::StartToClose)
            },
            EventKind::ActivityTimedOut {
                activity_seq: 3,
                error: timeout(TimeoutKind::ScheduleToStart)
            },
        ]
    );

    // A heartbeat deadline is reported as such.
    let hb_deadline = now_ms() - 1;
    assert_eq!(
        s.heartbeat(
            a2.task_id,
            a2.token,
            None,
            (hb_deadline, TimeoutKind::Heartbeat)
        )
        .await
        .unwrap(),
        Some(false)
    );
    let expired = s.claim_expired_activities(10).await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].task.activity_seq, 2);
    assert_eq!(expired[0].kind, TimeoutKind::Heartbeat);
    assert_eq!(expired[0].task.deadline_ms, Some(hb_deadline));
    assert!(expired[0].task.token > a2.token);
}

fn lease_until(until_ms: i64) -> Option<LocalLease> {
    Some(LocalLease {
        worker_id: WORKER.into(),
        until_ms,
    })
}

/// A workflow task kept leased while its worker runs local activities: held while nothing is new,
/// given up (due now) once the workflow has an event it has not seen or its worker releases it,
/// taken by any worker once the lease expired, and lost to a stale token.
pub(super) async fn check_local_lease(s: &dyn StoreBackend) {
    let c = start(s, "wf").await;
    let mut cm = commit(&c, 1, vec![sched_local(1)]);
    cm.local_lease = lease_until(now_ms() + LONG_LEASE);
    let out = commit_ok(s, cm).await; // 2, marker 3
    assert!(!out.rerun);
    assert_eq!(out.marker_seq, 3);
    assert_no_wft(s, "the task stays leased while its local activity runs").await;
    let renew = |token: i64, seen: u64, r: LeaseRequest| async move {
        s.renew_local_lease("wf", token, seen, r)
            .await
            .expect("renew_local_lease")
    };
    assert_eq!(
        renew(c.token, 3, LeaseRequest::Check).await,
        LeaseState::Held
    );
    let extend = LeaseRequest::Extend(lease_until(now_ms() + LONG_LEASE).unwrap());
    assert_eq!(renew(c.token, 3, extend.clone()).await, LeaseState::Held);
    assert_eq!(
        renew(c.token - 1, 3, extend.clone()).await,
        LeaseState::Lost
    );
    assert_no_wft(s, "still leased").await;

    // The outcome is recorded: news for the workflow. The lease check gives the task up, due now.
    assert!(s
        .record_local_activity("wf", 1, Ok(json!(1)))
        .await
        .unwrap()); // 4
    assert_no_wft(s, "recording leaves the lease to its worker").await;
    assert_eq!(
        renew(c.token, 3, extend.clone()).await,
        LeaseState::Released
    );
    let c2 = claim_wft(s, "wf").await;
    assert!(c2.token > c.token);
    assert_eq!(
        renew(c.token, 3, LeaseRequest::Check).await,
        LeaseState::Lost
    );

    // A lease that ran out (its worker died) is taken by any worker.
    let mut cm = commit(&c2, 4, vec![sched_local(2)]);
    cm.local_lease = lease_until(now_ms() - 1);
    commit_ok(s, cm).await; // 5, marker 6
    let c3 = claim_wft(s, "wf").await;
    assert!(c3.token > c2.token);

    // Its worker gives it up (its local activities stopped there).
    let mut cm = commit(&c3, 6, vec![]);
    cm.local_lease = lease_until(now_ms() + LONG_LEASE);
    let out = commit_ok(s, cm).await; // marker 7
    assert_eq!(out.marker_seq, 7);
    assert_no_wft(s, "leased again").await;
    assert_eq!(
        renew(c3.token, 7, LeaseRequest::Release).await,
        LeaseState::Released
    );
    let c4 = claim_wft(s, "wf").await;

    // A commit that closes the workflow leaves no task, lease or not.
    let mut cm = commit(
        &c4,
        7,
        vec![EventKind::WorkflowCompleted { result: json!(1) }],
    );
    cm.local_lease = lease_until(now_ms() + LONG_LEASE);
    commit_ok(s, cm).await;
    assert_eq!(
        renew(c4.token, 8, LeaseRequest::Check).await,
        LeaseState::Lost
    );
    sleep_past(now_ms() + 1).await;
    assert_no_wft(s, "closed").await;
}

pub(super) async fn check_record_local_activity(s: &dyn StoreBackend) {
    let c = start(s, "wf").await;
    commit_ok(
        s,
        commit(&c, 1, vec![sched_local(1), sched_local(2), sched_local(3)]),
    )
    .await; // marker 5
    assert!(
        describe(s, "wf").await.pending_activities.is_empty(),
        "local activities have no task"
    );
    assert!(claim_acts(s, &[Q], &[AT], 10).await.is_empty());
    assert_no_wft(s, "nothing happened yet").await;

    assert!(s
        .record_local_activity("wf", 1, Ok(json!({ "v": 1 })))
        .await
        .unwrap());
    assert_eq!(
        kinds_from(s, "wf", 6).await,
        vec![EventKind::LocalActivityMarker {
            activity_seq: 1,
            result: Ok(json!({ "v": 1 }))
        }]
    );
    let c2 = claim_wft(s, "wf").await;
    assert!(
        !s.record_local_activity("wf", 1, Ok(json!("again")))
            .await
            .unwrap(),
        "recorded once"
    );
    assert_eq!(history(s, "wf").await.len(), 6);

    assert!(s
        .record_local_activity(
            "wf",
            2,
            Err(ActivityError::Cancelled {
                details: Some(json!("d"))
            })
        )
        .await
        .unwrap());
    assert!(!s
        .record_local_activity("wf", 2, Ok(json!("late")))
        .await
        .unwrap());
    let err = app_error("LocalBroken");
    assert!(s
        .record_local_activity("wf", 3, Err(err.clone()))
        .await
        .unwrap());
    assert!(!s
        .record_local_activity("wf", 3, Err(err.clone()))
        .await
        .unwrap());
    assert_eq!(
        kinds_from(s, "wf", 7).await,
        vec![
            EventKind::ActivityCancelled {
                activity_seq: 2,
                details: Some(json!("d"))
            },
            EventKind::LocalActivityMarker {
                activity_seq: 3,
                result: Err(err)
            },
        ]
    );

    // After the close, nothing is recorded.
    commit_ok(
        s,
        commit(
            &c2,
            8,
            vec![
                sched_local(4),
                EventKind::WorkflowCompleted {
                    result: json!(null),
                },
            ],
        ),
    )
    .await;
    let len = history(s, "wf").await.len();
    assert!(!s
        .record_local_activity("wf", 4, Ok(json!(4)))
        .await
        .unwrap());
    assert_eq!(history(s, "wf").await.len(), len);
    assert_no_wft(s, "closed").await;
}

pub(super) async fn check_request_cancel_workflow(s: &dyn StoreBackend) {
    let c = start(s, "wf").await;
    commit_ok(s, commit(&c, 1, vec![])).await; // marker 2
    assert_no_wft(s, "idle").await;

    assert!(s.request_cancel_workflow("wf").await.unwrap());
    assert_eq!(
        kinds_from(s, "wf", 3).await,
        vec![EventKind::WorkflowCancelRequested {}]
    );
    assert!(describe(s, "wf").await.cancel_requested);
    let c2 = claim_wft(s, "wf").await;

    assert!(
        s.request_cancel_workflow("wf").await.unwrap(),
        "asking again is fine"
    );
    assert_eq!(history(s, "wf").await.len(), 3, "but recorded once");

    match s.request_cancel_workflow("nope").await {
        Err(Error::WorkflowNotFound(id)) => assert_eq!(id, "nope"),
        other => panic!("an unknown id must be Error::WorkflowNotFound, got {other:?}"),
    }

    commit_ok(s, commit(&c2, 3, vec![EventKind::WorkflowCancelled {}])).await; // 4, marker 5
    let d = describe(s, "wf").await;
    assert_eq!(d.status, WorkflowStatus::Cancelled);
    assert_eq!((d.result, d.error), (None, None));
    assert!(
        !s.request_cancel_workflow("wf").await.unwrap(),
        "false once closed"
    );
    assert_eq!(history(s, "wf").await.len(), 5);
    assert_no_wft(s, "closed").await;

    // A workflow that ended otherwise.
    let c = start(s, "done").await;
    commit_ok(
        s,
        commit(
            &c,
            1,
            vec![EventKind::WorkflowCompleted { result: json!(1) }],
        ),
    )
    .await;
    assert!(!s.request_cancel_workflow("done").await.unwrap());
    assert!(!describe(s, "done").await.cancel_requested);
    assert_eq!(history(s, "done").await.len(), 3);
}

pub(super) async fn check_hold_and_release(s: &dyn StoreBackend) {
    assert_eq!(s.release_held().await.unwrap(), 0, "nothing held");
    create(s, "wf").await;
    let old = s
        .claim_workflow_tasks(WORKER, &v(&[Q]), &v(&[WT]), 10, 1)
        .await
        .unwrap()
        .remove(0);
    tokio::time::sleep(Duration::from_millis(10)).await;
    let cur = claim_wft(s, "wf").await;

    // A stale token holds nothing.
    s.hold_workflow_task("wf", old.token, "stale", now_ms() + 1_000_000)
        .await
        .unwrap();
    assert_eq!(describe(s, "wf").await.held_reason, None);

    let retry_at = now_ms() + 3_600_000;
    let reason = "replay no longer matches: activity #1 changed";
    s.hold_workflow_task("wf", cur.token, reason, retry_at)
        .await
        .unwrap();
    let d = describe(s, "wf").await;
    assert_eq!(d.held_reason.as_deref(), Some(reason));
    assert_eq!(d.status, WorkflowStatus::Running, "held, not failed");
    assert_eq!(
        next_due(s, &[Q], &[WT], &[]).await,
        Some(retry_at),
        "retried at retry_at"
    );
    assert_no_wft(s, "held until retry_at").await;
    assert!(
        s.commit_workflow_task(commit(&cur, 1, vec![]))
            .await
            .unwrap()
            .is_none(),
        "the held task was put back: its claim cannot commit"
    );

    assert_eq!(s.release_held().await.unwrap(), 1);
    let due = next_due(s, &[Q], &[WT], &[]).await.expect("due");
    assert!(due <= now_ms(), "released: due now");
    let c = claim_wft(s, "wf").await;
    assert!(c.token > cur.token);
    commit_ok(s, commit(&c, 1, vec![])).await;
    assert_eq!(
        describe(s, "wf").await.held_reason,
        None,
        "a committed task clears the hold"
    );
    assert_eq!(s.release_held().await.unwrap(), 0);
}

pub(super) async fn check_list_and_describe(s: &dyn StoreBackend) {
    assert_eq!(s.describe("nope").await.unwrap(), None);
    assert!(s.list(&ListFilter::all()).await.unwrap().is_empty());

    s.create_workflow(new_wf("a", WT, Q, None)).await.unwrap();
    sleep_past(describe(s, "a").await.started_ms).await;
    s.create_workflow(new_wf("b", WT2, Q, None)).await.unwrap();
    sleep_past(describe(s, "b").await.started_ms).await;
    s.create_workflow(new_wf("c", WT, Q, None)).await.unwrap();

    let b = s
        .claim_workflow_tasks(WORKER, &v(&[Q]), &v(&[WT2]), 10, LONG_LEASE)
        .await
        .unwrap();
    assert_eq!(b.len(), 1);
    commit_ok(
        s,
        commit(
            &b[0],
            1,
            vec![EventKind::WorkflowCompleted { result: json!("b") }],
        ),
    )
    .await;

    let ids = |filter: ListFilter| async move {
        s.list(&filter)
            .await
            .unwrap()
            .into_iter()
            .map(|w| w.workflow_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(ListFilter::all()).await,
        vec!["c", "b", "a"],
        "newest first"
    );
    assert_eq!(ids(ListFilter::all().limit(2)).await, vec!["c", "b"]);
    assert_eq!(
        ids(ListFilter::all().status(WorkflowStatus::Running)).await,
        vec!["c", "a"]
    );
    assert_eq!(
        ids(ListFilter::all().status(WorkflowStatus::Completed)).await,
        vec!["b"]
    );
    assert!(ids(ListFilter::all().status(WorkflowStatus::Failed))
        .await
        .is_empty());
    assert_eq!(
        ids(ListFilter::all().workflow_type(WT)).await,
        vec!["c", "a"]
    );
    assert_eq!(ids(ListFilter::all().workflow_type(WT2)).await, vec!["b"]);
    assert!(ids(ListFilter::all()
        .workflow_type(WT2)
        .status(WorkflowStatus::Running))
    .await
    .is_empty());
    assert!(ids(ListFilter::all().workflow_type("unknown"))
        .await
        .is_empty());

    for w in s.list(&ListFilter::all()).await.unwrap() {
        let d = describe(s, &w.workflow_id).await;
        assert_eq!(w.run_id, d.run_id);
        assert_eq!(w.workflow_type, d.workflow_type);
        assert_eq!(w.status, d.status);
        assert_eq!(w.started_ms, d.started_ms);
        assert_eq!(w.closed_ms, d.closed_ms);
    }
    let db = describe(s, "b").await;
    assert_eq!(db.status, WorkflowStatus::Completed);
    assert_eq!(db.result, Some(json!("b")));
    assert!(db.closed_ms.is_some());
    assert_eq!(s.describe("nope").await.unwrap(), None);
}

pub(super) async fn check_next_due_ms(s: &dyn StoreBackend) {
    assert_eq!(
        next_due(s, &[Q], &[WT], &[AT]).await,
        None,
        "an empty store has nothing due"
    );
    create(s, "wf").await;
    let d = describe(s, "wf").await;
    assert_eq!(next_due(s, &[Q], &[WT], &[]).await, Some(d.started_ms));
    assert_eq!(
        next_due(s, &[Q2], &[WT], &[AT]).await,
        None,
        "another queue's task"
    );
    assert_eq!(
        next_due(s, &[Q], &[WT2], &[AT]).await,
        None,
        "another type's task"
    );

    let before = now_ms();
    let c = claim_wft(s, "wf").await;
    let after = now_ms();
    let lease_end = next_due(s, &[Q], &[WT], &[])
        .await
        .expect("the lease's end");
    assert!(
        (before + LONG_LEASE..=after + LONG_LEASE).contains(&lease_end),
        "a claimed task is due when its lease ends: {lease_end} not in {}..={}",
        before + LONG_LEASE,
        after + LONG_LEASE
    );

    let before = now_ms();
    commit_ok(s, commit(&c, 1, vec![sched(1, AT)])).await;
    let after = now_ms();
    let visible = next_due(s, &[Q], &[WT], &[AT])
        .await
        .expect("the activity task");
    assert!(
        (before..=after).contains(&visible),
        "{visible} not in {before}..={after}"
    );
    assert_eq!(
        next_due(s, &[Q], &[WT], &[AT2]).await,
        None,
        "another activity type"
    );
    assert_eq!(
        next_due(s, &[Q2], &[WT], &[AT]).await,
        None,
        "another queue"
    );
}
