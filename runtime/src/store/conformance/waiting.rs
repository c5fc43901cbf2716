//! What a store keeps about waiting work: a pending activity's last failure and attempt count,
//! the workflow task `describe` shows, the workers' poller heartbeats, the queue depths.

use super::support::*;
use crate::store::{PendingWorkflowTask, Poll, PollKind, PollerRecord, QueueDepth};

fn boom(message: &str) -> ActivityError {
    ActivityError::application("Boom", message)
}

pub(super) async fn check_last_failure_and_attempts(s: &dyn StoreBackend) {
    let c = start(s, "wf").await;
    assert_eq!(
        describe_full(s, "wf").await.pending_task,
        Some(PendingWorkflowTask {
            state: "running".into(),
            due_ms: describe_full(s, "wf").await.pending_task.unwrap().due_ms,
            worker: Some(WORKER.into()),
        }),
        "a claimed workflow task shows as running, with its worker"
    );
    commit_ok(s, commit(&c, 1, vec![sched(1, AT)])).await;
    let d = describe_full(s, "wf").await;
    assert_eq!(d.pending_task, None, "the committed task is done");
    let a = &d.pending_activities[0];
    assert_eq!((a.state.as_str(), a.attempt), ("pending", 0));
    assert_eq!(a.task_queue, Q);
    assert!(a.scheduled_ms > 0 && a.due_ms >= a.scheduled_ms, "{a:?}");
    assert_eq!(a.last_failure, None, "nothing failed yet");

    // Attempt 1 fails: the failure is kept, with the retry's time.
    let a1 = claim_act(s, AT, 1).await;
    let retry_at = now_ms();
    let first = Some(boom("disk full"));
    assert!(
        finish(
            s,
            &a1,
            a1.token,
            ActivityResolution::Retry {
                retry_at_ms: retry_at,
                last_failure: first.clone(),
            },
            None
        )
        .await
    );
    let a = describe_full(s, "wf").await.pending_activities.remove(0);
    assert_eq!((a.state.as_str(), a.attempt), ("pending", 1));
    assert_eq!(a.due_ms, retry_at);
    assert_eq!(a.last_failure, first);

    // While attempt 2 runs, the last failure stays; an interruption (no failure) keeps it too.
    let a2 = claim_act(s, AT, 1).await;
    let a = describe_full(s, "wf").await.pending_activities.remove(0);
    assert_eq!((a.state.as_str(), a.attempt), ("running", 2));
    assert_eq!(a.last_failure, first);
    assert!(
        finish(
            s,
            &a2,
            a2.token,
            ActivityResolution::Retry {
                retry_at_ms: now_ms(),
                last_failure: None,
            },
            None
        )
        .await
    );
    assert_eq!(
        describe_full(s, "wf").await.pending_activities[0].last_failure,
        first
    );

    // Attempt 3 fails otherwise: the newer failure replaces it.
    let a3 = claim_act(s, AT, 1).await;
    assert_eq!(a3.attempt, 3);
    let later = now_ms() + 3_600_000;
    let third = Some(ActivityError::Timeout {
        kind: TimeoutKind::StartToClose,
        details: Some(json!({ "page": 3 })),
    });
    assert!(
        finish(
            s,
            &a3,
            a3.token,
            ActivityResolution::Retry {
                retry_at_ms: later,
                last_failure: third.clone(),
            },
            None
        )
        .await
    );
    let a = describe_full(s, "wf").await.pending_activities.remove(0);
    assert_eq!((a.attempt, a.due_ms), (3, later));
    assert_eq!(a.last_failure, third);

    // An older attempt's token records no failure.
    assert!(
        !finish(
            s,
            &a2,
            a2.token,
            ActivityResolution::Retry {
                retry_at_ms: later,
                last_failure: Some(boom("stale")),
            },
            None
        )
        .await
    );
    assert_eq!(
        describe_full(s, "wf").await.pending_activities[0].last_failure,
        third
    );
}

fn poll(queue: &str, kind: PollKind, type_name: &str) -> Poll {
    Poll {
        task_queue: queue.into(),
        kind,
        type_name: type_name.into(),
    }
}

async fn pollers(s: &dyn StoreBackend, queue: &str) -> Vec<(String, String, String, i64)> {
    let mut got: Vec<_> = s
        .pollers(queue)
        .await
        .expect("pollers")
        .into_iter()
        .map(|r: PollerRecord| (r.kind, r.type_name, r.worker_id, r.last_poll_ms))
        .collect();
    got.sort();
    got
}

pub(super) async fn check_poller_heartbeats(s: &dyn StoreBackend) {
    assert!(pollers(s, Q).await.is_empty(), "no worker polled yet");
    s.record_polls("w1", &[], 500).await.expect("no polls");
    let w1 = [
        poll(Q, PollKind::Activity, AT),
        poll(Q, PollKind::Workflow, WT),
        poll(Q2, PollKind::Workflow, WT),
    ];
    s.record_polls("w1", &w1, 1_000)
        .await
        .expect("record_polls");
    s.record_polls("w2", &[poll(Q, PollKind::Workflow, WT)], 2_000)
        .await
        .expect("record_polls");
    let row =
        |k: &str, t: &str, w: &str, at: i64| (k.to_string(), t.to_string(), w.to_string(), at);
    assert_eq!(
        pollers(s, Q).await,
        vec![
            row("activity", AT, "w1", 1_000),
            row("workflow", WT, "w2", 2_000),
        ],
        "one row per queue, kind and type: the latest heartbeat wins"
    );
    assert_eq!(pollers(s, Q2).await, vec![row("workflow", WT, "w1", 1_000)]);
    assert!(pollers(s, "queue-nobody").await.is_empty());
}

pub(super) async fn check_queue_depth(s: &dyn StoreBackend) {
    let depth = |w: u64, a: u64, h: u64| QueueDepth {
        workflow_tasks: w,
        activity_tasks: a,
        held_workflows: h,
    };
    let of = |queues: &[&str]| {
        let queues = v(queues);
        async move { s.queue_depth(&queues, now_ms()).await.expect("queue_depth") }
    };
    assert_eq!(of(&[Q]).await, depth(0, 0, 0));
    create(s, "wf").await;
    create(s, "wf2").await;
    sleep_past(now_ms()).await;
    assert_eq!(of(&[Q]).await, depth(2, 0, 0), "two workflow tasks due");
    assert_eq!(of(&[Q2]).await, depth(0, 0, 0), "none in another queue");
    let claimed = s
        .claim_workflow_tasks(WORKER, &v(&[Q]), &v(&[WT]), 10, LONG_LEASE)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 2);
    assert_eq!(of(&[Q]).await, depth(0, 0, 0), "claimed tasks wait no more");
    let (c1, c2) = (&claimed[0], &claimed[1]);
    commit_ok(s, commit(c1, 1, vec![sched(1, AT), sched(2, AT2)])).await;
    sleep_past(now_ms()).await;
    assert_eq!(of(&[Q, Q2]).await, depth(0, 2, 0), "two activity tasks due");
    s.hold_workflow_task(
        &c2.workflow_id,
        c2.token,
        "replay differs",
        now_ms() + 3_600_000,
    )
    .await
    .expect("hold");
    assert_eq!(
        of(&[Q]).await,
        depth(0, 2, 1),
        "a held workflow is counted, its task is not due"
    );
}
