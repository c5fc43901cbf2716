//! The suite's vocabulary: names, builders and reads shared by every check.
#![allow(dead_code)]

pub(super) use crate::definition::ActivityOptions;
pub(super) use crate::engine::{EagerClaim, LeaseRequest, LeaseState, LocalLease};
pub(super) use crate::error::{ActivityError, Error, TimeoutKind, WorkflowError};
pub(super) use crate::history::{CancellationType, EventKind, HistoryEvent};
pub(super) use crate::store::{
    now_ms, ActivityResolution, ClaimedActivity, ClaimedWorkflowTask, CommitOutcome, Continuation,
    ListFilter, NewWorkflow, PendingActivity, StoreBackend, WorkflowDescription, WorkflowStatus,
    WorkflowTaskCommit,
};
pub(super) use serde_json::{json, Value};
pub(super) use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Vocabulary.

pub(super) const Q: &str = "queue-main";
pub(super) const Q2: &str = "queue-other";
pub(super) const WT: &str = "workflow-main";
pub(super) const WT2: &str = "workflow-other";
pub(super) const AT: &str = "activity-main";
pub(super) const AT2: &str = "activity-other";
pub(super) const WORKER: &str = "worker-1";
/// A lease that does not run out during a test.
pub(super) const LONG_LEASE: i64 = 600_000;
/// The clock a test's workflow tasks report: far from the store's clock, so it cannot be mistaken
/// for it.
pub(super) const TASK_TIME: i64 = 1_000_000_000_123;

pub(super) fn v(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

pub(super) fn new_wf(
    id: &str,
    workflow_type: &str,
    queue: &str,
    deadline: Option<i64>,
) -> NewWorkflow {
    NewWorkflow {
        workflow_id: id.into(),
        run_id: format!("run-of-{id}"),
        workflow_type: workflow_type.into(),
        task_queue: queue.into(),
        input: json!({ "input-of": id }),
        execution_deadline_ms: deadline,
    }
}

pub(super) async fn create(s: &dyn StoreBackend, id: &str) {
    s.create_workflow(new_wf(id, WT, Q, None))
        .await
        .expect("create_workflow");
}

pub(super) fn input_of(seq: u64) -> Value {
    json!({ "activity": seq, "payload": [1, 2, 3] })
}

pub(super) fn scheduled_with(
    seq: u64,
    activity_type: &str,
    queue: &str,
    options: ActivityOptions,
    local: bool,
) -> EventKind {
    EventKind::ActivityScheduled {
        activity_seq: seq,
        activity_type: activity_type.into(),
        input: input_of(seq),
        options,
        task_queue: queue.into(),
        local,
        cancellation_type: CancellationType::TryCancel,
    }
}

pub(super) fn sched(seq: u64, activity_type: &str) -> EventKind {
    scheduled_with(seq, activity_type, Q, ActivityOptions::default(), false)
}

pub(super) fn sched_local(seq: u64) -> EventKind {
    scheduled_with(seq, AT, Q, ActivityOptions::default(), true)
}

pub(super) fn timer(seq: u64, fire_at_ms: i64) -> EventKind {
    EventKind::TimerStarted {
        timer_seq: seq,
        fire_at_ms,
    }
}

pub(super) fn marker(processed_through: u64) -> EventKind {
    EventKind::WorkflowTaskCompleted {
        processed_through,
        task_time_ms: TASK_TIME,
    }
}

pub(super) fn started(seq: u64, attempt: u32, worker: &str) -> EventKind {
    EventKind::ActivityStarted {
        activity_seq: seq,
        attempt,
        worker: worker.into(),
    }
}

pub(super) fn app_error(kind: &str) -> ActivityError {
    ActivityError::Failed {
        activity_type: AT.into(),
        attempts: 3,
        cause: Box::new(ActivityError::application(kind, "it broke")),
    }
}

pub(super) fn commit(
    c: &ClaimedWorkflowTask,
    processed_through: u64,
    commands: Vec<EventKind>,
) -> WorkflowTaskCommit {
    WorkflowTaskCommit {
        workflow_id: c.workflow_id.clone(),
        token: c.token,
        processed_through,
        task_time_ms: TASK_TIME,
        commands,
        eager: None,
        local_lease: None,
    }
}

pub(super) async fn commit_ok(s: &dyn StoreBackend, c: WorkflowTaskCommit) -> CommitOutcome {
    s.commit_workflow_task(c)
        .await
        .expect("commit_workflow_task")
        .expect("a commit with the current token of a running task is accepted")
}

/// Claims the workflow tasks of `Q`/`WT` with a long lease; exactly `id`'s must come back.
pub(super) async fn claim_wft(s: &dyn StoreBackend, id: &str) -> ClaimedWorkflowTask {
    let claimed = s
        .claim_workflow_tasks(WORKER, &v(&[Q]), &v(&[WT]), 10, LONG_LEASE)
        .await
        .expect("claim_workflow_tasks");
    let ids: Vec<&str> = claimed.iter().map(|c| c.workflow_id.as_str()).collect();
    assert_eq!(ids, vec![id], "exactly this workflow task is due");
    let c = claimed.into_iter().next().unwrap();
    assert_eq!(c.run_id, format!("run-of-{id}"));
    assert_eq!(c.workflow_type, WT);
    assert_eq!(c.task_queue, Q);
    c
}

/// No workflow task of `Q`/`WT` is due.
pub(super) async fn assert_no_wft(s: &dyn StoreBackend, why: &str) {
    let claimed = s
        .claim_workflow_tasks(WORKER, &v(&[Q]), &v(&[WT]), 10, LONG_LEASE)
        .await
        .expect("claim_workflow_tasks");
    let ids: Vec<&str> = claimed.iter().map(|c| c.workflow_id.as_str()).collect();
    assert!(
        ids.is_empty(),
        "no workflow task should be due ({why}); got {ids:?}"
    );
}

/// Creates `id` and claims its first workflow task.
pub(super) async fn start(s: &dyn StoreBackend, id: &str) -> ClaimedWorkflowTask {
    create(s, id).await;
    claim_wft(s, id).await
}

pub(super) async fn claim_acts(
    s: &dyn StoreBackend,
    queues: &[&str],
    types: &[&str],
    max: usize,
) -> Vec<ClaimedActivity> {
    s.claim_activity_tasks(WORKER, &v(queues), &v(types), max)
        .await
        .expect("claim_activity_tasks")
}

pub(super) fn seqs(tasks: &[ClaimedActivity]) -> Vec<u64> {
    tasks.iter().map(|t| t.activity_seq).collect()
}

/// Claims the activity tasks of `Q`/`activity_type`; exactly activity `seq` must come back.
pub(super) async fn claim_act(
    s: &dyn StoreBackend,
    activity_type: &str,
    seq: u64,
) -> ClaimedActivity {
    let got = claim_acts(s, &[Q], &[activity_type], 10).await;
    assert_eq!(seqs(&got), vec![seq], "exactly this activity task is due");
    got.into_iter().next().unwrap()
}

/// The whole history, checked to be numbered 1, 2, 3, ...
pub(super) async fn history(s: &dyn StoreBackend, id: &str) -> Vec<HistoryEvent> {
    let h = s.read_history(id, 1).await.expect("read_history");
    let numbers: Vec<u64> = h.iter().map(|e| e.seq).collect();
    let expected: Vec<u64> = (1..=h.len() as u64).collect();
    assert_eq!(
        numbers, expected,
        "history events are numbered from 1 without gaps"
    );
    h
}

pub(super) async fn kinds(s: &dyn StoreBackend, id: &str) -> Vec<EventKind> {
    history(s, id).await.into_iter().map(|e| e.kind).collect()
}

/// The events from `from_seq` on, read with `read_history`'s own offset.
pub(super) async fn kinds_from(s: &dyn StoreBackend, id: &str, from_seq: u64) -> Vec<EventKind> {
    let h = s.read_history(id, from_seq).await.expect("read_history");
    if let Some(first) = h.first() {
        assert_eq!(first.seq, from_seq, "read_history starts at from_seq");
    }
    h.into_iter().map(|e| e.kind).collect()
}

pub(super) async fn last_seq(s: &dyn StoreBackend, id: &str) -> u64 {
    history(s, id).await.last().map(|e| e.seq).unwrap_or(0)
}

/// The description, without what `waiting.rs` checks (a pending activity's queue, times and last
/// failure; the workflow task), so the other checks compare what they are about.
pub(super) async fn describe(s: &dyn StoreBackend, id: &str) -> WorkflowDescription {
    let mut d = describe_full(s, id).await;
    d.pending_task = None;
    for a in &mut d.pending_activities {
        a.task_queue = String::new();
        a.scheduled_ms = 0;
        a.due_ms = 0;
        a.last_failure = None;
    }
    d
}

/// The description as the store reads it.
pub(super) async fn describe_full(s: &dyn StoreBackend, id: &str) -> WorkflowDescription {
    s.describe(id)
        .await
        .expect("describe")
        .unwrap_or_else(|| panic!("workflow `{id}` exists"))
}

pub(super) fn pending(seq: u64, activity_type: &str, state: &str, attempt: u32) -> PendingActivity {
    PendingActivity {
        activity_seq: seq,
        activity_type: activity_type.into(),
        state: state.into(),
        attempt,
        cancel_requested: false,
        heartbeat_details: None,
        task_queue: String::new(),
        scheduled_ms: 0,
        due_ms: 0,
        last_failure: None,
        pollers: Default::default(),
    }
}

pub(super) async fn next_due(
    s: &dyn StoreBackend,
    queues: &[&str],
    wtypes: &[&str],
    atypes: &[&str],
) -> Option<i64> {
    s.next_due_ms(&v(queues), &v(wtypes), &v(atypes))
        .await
        .expect("next_due_ms")
}

pub(super) async fn finish(
    s: &dyn StoreBackend,
    a: &ClaimedActivity,
    token: i64,
    resolution: ActivityResolution,
    details: Option<Value>,
) -> bool {
    s.finish_activity(a.task_id, token, resolution, details)
        .await
        .expect("finish_activity")
}

pub(super) async fn heartbeat(
    s: &dyn StoreBackend,
    a: &ClaimedActivity,
    token: i64,
    details: Option<Value>,
) -> Option<bool> {
    s.heartbeat(
        a.task_id,
        token,
        details,
        (now_ms() + 3_600_000, TimeoutKind::Heartbeat),
    )
    .await
    .expect("heartbeat")
}

/// Waits until the store's clock is past `t_ms`.
pub(super) async fn sleep_past(t_ms: i64) {
    while now_ms() <= t_ms {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Fires every due timer; exactly `n` must be due.
pub(super) async fn fire(s: &dyn StoreBackend, n: usize) {
    assert_eq!(
        s.fire_due_timers(100).await.expect("fire_due_timers"),
        n,
        "due timers fired"
    );
}
