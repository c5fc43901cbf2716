//! Store conformance: one set of checks that defines a correct [`StoreBackend`], run against every
//! store: SQLite in memory, a SQLite file in a temporary directory, and Postgres (feature `postgres`,
//! a fresh schema per test, dropped after it).
//!
//! Each `check_*` drives the trait the way the worker does and asserts exactly what each transition
//! wrote, read back through `read_history`, `describe`, `list`, the claims and `next_due_ms`.
//! `conformance!` turns each check into three tests: `memory_*`, `sqlite_file_*` and `postgres_*`.
//!
//! Postgres: `DURAFLOW_TEST_PG_URL`, else `postgres://postgres@127.0.0.1:5432/test`. With `CI` set,
//! a server that does not answer fails the Postgres tests; elsewhere they are skipped with a note.
//!
//! Timing: deadlines, leases and timers that must pass are set a few milliseconds ahead (or in the
//! past) and waited out; those that must not pass are set minutes ahead. No assertion is about speed.

use super::{
    now_ms, ActivityResolution, ClaimedActivity, ClaimedWorkflowTask, CommitOutcome, Continuation,
    ListFilter, NewWorkflow, PendingActivity, Store, StoreBackend, WorkflowDescription,
    WorkflowStatus, WorkflowTaskCommit,
};
use crate::definition::ActivityOptions;
use crate::engine::EagerClaim;
use crate::error::{ActivityError, Error, TimeoutKind, WorkflowError};
use crate::history::{CancellationType, EventKind, HistoryEvent};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Fixtures: one fresh store per test.

struct Fixture {
    // Dropped before the guard: the store lets go of its file or connections first.
    store: Arc<dyn StoreBackend>,
    _guard: Guard,
}

enum Guard {
    Nothing,
    Dir {
        _dir: tempfile::TempDir,
    },
    #[cfg(feature = "postgres")]
    Schema {
        _schema: pg::SchemaGuard,
    },
}

impl Fixture {
    fn memory() -> Fixture {
        Fixture {
            store: Store::memory().expect("memory store").backend,
            _guard: Guard::Nothing,
        }
    }

    fn sqlite_file() -> Fixture {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = Store::sqlite(dir.path().join("conformance.db"))
            .expect("SQLite file store")
            .backend;
        Fixture {
            store,
            _guard: Guard::Dir { _dir: dir },
        }
    }

    /// `None`: no server answers and this is not CI (the test is skipped).
    #[cfg(feature = "postgres")]
    async fn postgres(check: &str) -> Option<Fixture> {
        let url = pg::url().await?;
        let guard = pg::SchemaGuard::new(&url, check);
        let store = super::postgres::PostgresStore::connect(&url, Some(&guard.schema))
            .await
            .unwrap_or_else(|e| panic!("cannot open the Postgres store at {url}: {e}"));
        Some(Fixture {
            store: Arc::new(store),
            _guard: Guard::Schema { _schema: guard },
        })
    }
}

#[cfg(feature = "postgres")]
mod pg {
    use std::time::Duration;

    const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

    /// The server's URL, or `None` when it does not answer outside CI. In CI it must answer.
    pub(super) async fn url() -> Option<String> {
        let url = std::env::var("DURAFLOW_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_URL.into());
        let answers = tokio::time::timeout(
            Duration::from_secs(5),
            tokio_postgres::connect(&url, tokio_postgres::NoTls),
        )
        .await
        .map(|r| r.is_ok())
        .unwrap_or(false);
        if answers {
            Some(url)
        } else if std::env::var_os("CI").is_some() {
            panic!(
                "CI is set and Postgres at {url} does not answer: the Postgres conformance tests must run in CI"
            );
        } else {
            eprintln!(
                "skipping a Postgres conformance test: nothing answers at {url} (set DURAFLOW_TEST_PG_URL)"
            );
            None
        }
    }

    /// A schema for one test, dropped (with everything in it) when the guard drops.
    pub(super) struct SchemaGuard {
        url: String,
        pub(super) schema: String,
    }

    impl SchemaGuard {
        pub(super) fn new(url: &str, check: &str) -> SchemaGuard {
            let hash = check.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
            });
            let name: String = check
                .trim_start_matches("check_")
                .chars()
                .take(28)
                .collect();
            let schema = format!("conf_{name}_{:08x}_{}", hash as u32, std::process::id());
            exec(url, &format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"));
            SchemaGuard {
                url: url.to_string(),
                schema,
            }
        }
    }

    impl Drop for SchemaGuard {
        fn drop(&mut self) {
            exec(
                &self.url,
                &format!(
                    "SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                    self.schema
                ),
            );
        }
    }

    /// Runs SQL on a connection of its own, on a thread of its own (callable from `Drop`).
    fn exec(url: &str, sql: &str) {
        let (url, owned) = (url.to_string(), sql.to_string());
        let r = std::thread::spawn(move || -> Result<(), String> {
            let sql = owned;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .map_err(|e| e.to_string())?;
                let task = tokio::spawn(conn);
                let r = client.batch_execute(&sql).await.map_err(|e| e.to_string());
                drop(client);
                let _ = task.await;
                r
            })
        })
        .join()
        .unwrap_or_else(|_| Err("the SQL thread panicked".into()));
        if let Err(e) = r {
            eprintln!("conformance: `{sql}` failed: {e}");
        }
    }
}

/// For each check, a test per store: `check => memory_test, sqlite_file_test, postgres_test;`.
macro_rules! conformance {
    ($($check:ident => $memory:ident, $file:ident, $postgres:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $memory() {
            let f = Fixture::memory();
            $check(&*f.store).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $file() {
            let f = Fixture::sqlite_file();
            $check(&*f.store).await;
        }

        #[cfg(feature = "postgres")]
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            let Some(f) = Fixture::postgres(stringify!($check)).await else {
                return;
            };
            $check(&*f.store).await;
        }
    )*};
}

conformance! {
    check_create_workflow => memory_create_workflow, sqlite_file_create_workflow, postgres_create_workflow;
    check_execution_deadline => memory_execution_deadline, sqlite_file_execution_deadline, postgres_execution_deadline;
    check_workflow_task_tokens_and_leases => memory_workflow_task_tokens_and_leases, sqlite_file_workflow_task_tokens_and_leases, postgres_workflow_task_tokens_and_leases;
    check_workflow_task_filters => memory_workflow_task_filters, sqlite_file_workflow_task_filters, postgres_workflow_task_filters;
    check_commit_stale_token => memory_commit_stale_token, sqlite_file_commit_stale_token, postgres_commit_stale_token;
    check_commit_commands_and_marker => memory_commit_commands_and_marker, sqlite_file_commit_commands_and_marker, postgres_commit_commands_and_marker;
    check_timers => memory_timers, sqlite_file_timers, postgres_timers;
    check_cancel_pending_activity => memory_cancel_pending_activity, sqlite_file_cancel_pending_activity, postgres_cancel_pending_activity;
    check_cancel_running_activity => memory_cancel_running_activity, sqlite_file_cancel_running_activity, postgres_cancel_running_activity;
    check_close_workflow => memory_close_workflow, sqlite_file_close_workflow, postgres_close_workflow;
    check_commit_rerun_when_history_moved => memory_commit_rerun_when_history_moved, sqlite_file_commit_rerun_when_history_moved, postgres_commit_rerun_when_history_moved;
    check_eager_claims => memory_eager_claims, sqlite_file_eager_claims, postgres_eager_claims;
    check_eager_claims_only_new_tasks => memory_eager_claims_only_new_tasks, sqlite_file_eager_claims_only_new_tasks, postgres_eager_claims_only_new_tasks;
    check_claim_activity_tasks => memory_claim_activity_tasks, sqlite_file_claim_activity_tasks, postgres_claim_activity_tasks;
    check_heartbeat => memory_heartbeat, sqlite_file_heartbeat, postgres_heartbeat;
    check_finish_outcomes => memory_finish_outcomes, sqlite_file_finish_outcomes, postgres_finish_outcomes;
    check_finish_retry => memory_finish_retry, sqlite_file_finish_retry, postgres_finish_retry;
    check_retry_of_cancelled_attempt => memory_retry_of_cancelled_attempt, sqlite_file_retry_of_cancelled_attempt, postgres_retry_of_cancelled_attempt;
    check_finish_after_close => memory_finish_after_close, sqlite_file_finish_after_close, postgres_finish_after_close;
    check_continue_commits => memory_continue_commits, sqlite_file_continue_commits, postgres_continue_commits;
    check_continue_falls_back => memory_continue_falls_back, sqlite_file_continue_falls_back, postgres_continue_falls_back;
    check_continue_cancels_pending => memory_continue_cancels_pending, sqlite_file_continue_cancels_pending, postgres_continue_cancels_pending;
    check_continue_retry => memory_continue_retry, sqlite_file_continue_retry, postgres_continue_retry;
    check_expired_activities => memory_expired_activities, sqlite_file_expired_activities, postgres_expired_activities;
    check_record_local_activity => memory_record_local_activity, sqlite_file_record_local_activity, postgres_record_local_activity;
    check_request_cancel_workflow => memory_request_cancel_workflow, sqlite_file_request_cancel_workflow, postgres_request_cancel_workflow;
    check_hold_and_release => memory_hold_and_release, sqlite_file_hold_and_release, postgres_hold_and_release;
    check_list_and_describe => memory_list_and_describe, sqlite_file_list_and_describe, postgres_list_and_describe;
    check_next_due_ms => memory_next_due_ms, sqlite_file_next_due_ms, postgres_next_due_ms;
}

// ---------------------------------------------------------------------------------------------
// Vocabulary.

const Q: &str = "queue-main";
const Q2: &str = "queue-other";
const WT: &str = "workflow-main";
const WT2: &str = "workflow-other";
const AT: &str = "activity-main";
const AT2: &str = "activity-other";
const WORKER: &str = "worker-1";
/// A lease that does not run out during a test.
const LONG_LEASE: i64 = 600_000;
/// The clock a test's workflow tasks report: far from the store's clock, so it cannot be mistaken
/// for it.
const TASK_TIME: i64 = 1_000_000_000_123;

fn v(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn new_wf(id: &str, workflow_type: &str, queue: &str, deadline: Option<i64>) -> NewWorkflow {
    NewWorkflow {
        workflow_id: id.into(),
        run_id: format!("run-of-{id}"),
        workflow_type: workflow_type.into(),
        task_queue: queue.into(),
        input: json!({ "input-of": id }),
        execution_deadline_ms: deadline,
    }
}

async fn create(s: &dyn StoreBackend, id: &str) {
    s.create_workflow(new_wf(id, WT, Q, None))
        .await
        .expect("create_workflow");
}

fn input_of(seq: u64) -> Value {
    json!({ "activity": seq, "payload": [1, 2, 3] })
}

fn scheduled_with(
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

fn sched(seq: u64, activity_type: &str) -> EventKind {
    scheduled_with(seq, activity_type, Q, ActivityOptions::default(), false)
}

fn sched_local(seq: u64) -> EventKind {
    scheduled_with(seq, AT, Q, ActivityOptions::default(), true)
}

fn timer(seq: u64, fire_at_ms: i64) -> EventKind {
    EventKind::TimerStarted {
        timer_seq: seq,
        fire_at_ms,
    }
}

fn marker(processed_through: u64) -> EventKind {
    EventKind::WorkflowTaskCompleted {
        processed_through,
        task_time_ms: TASK_TIME,
    }
}

fn started(seq: u64, attempt: u32, worker: &str) -> EventKind {
    EventKind::ActivityStarted {
        activity_seq: seq,
        attempt,
        worker: worker.into(),
    }
}

fn app_error(kind: &str) -> ActivityError {
    ActivityError::Failed {
        activity_type: AT.into(),
        attempts: 3,
        cause: Box::new(ActivityError::application(kind, "it broke")),
    }
}

fn commit(
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
    }
}

async fn commit_ok(s: &dyn StoreBackend, c: WorkflowTaskCommit) -> CommitOutcome {
    s.commit_workflow_task(c)
        .await
        .expect("commit_workflow_task")
        .expect("a commit with the current token of a running task is accepted")
}

/// Claims the workflow tasks of `Q`/`WT` with a long lease; exactly `id`'s must come back.
async fn claim_wft(s: &dyn StoreBackend, id: &str) -> ClaimedWorkflowTask {
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
async fn assert_no_wft(s: &dyn StoreBackend, why: &str) {
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
async fn start(s: &dyn StoreBackend, id: &str) -> ClaimedWorkflowTask {
    create(s, id).await;
    claim_wft(s, id).await
}

async fn claim_acts(
    s: &dyn StoreBackend,
    queues: &[&str],
    types: &[&str],
    max: usize,
) -> Vec<ClaimedActivity> {
    s.claim_activity_tasks(WORKER, &v(queues), &v(types), max)
        .await
        .expect("claim_activity_tasks")
}

fn seqs(tasks: &[ClaimedActivity]) -> Vec<u64> {
    tasks.iter().map(|t| t.activity_seq).collect()
}

/// Claims the activity tasks of `Q`/`activity_type`; exactly activity `seq` must come back.
async fn claim_act(s: &dyn StoreBackend, activity_type: &str, seq: u64) -> ClaimedActivity {
    let got = claim_acts(s, &[Q], &[activity_type], 10).await;
    assert_eq!(seqs(&got), vec![seq], "exactly this activity task is due");
    got.into_iter().next().unwrap()
}

/// The whole history, checked to be numbered 1, 2, 3, ...
async fn history(s: &dyn StoreBackend, id: &str) -> Vec<HistoryEvent> {
    let h = s.read_history(id, 1).await.expect("read_history");
    let numbers: Vec<u64> = h.iter().map(|e| e.seq).collect();
    let expected: Vec<u64> = (1..=h.len() as u64).collect();
    assert_eq!(
        numbers, expected,
        "history events are numbered from 1 without gaps"
    );
    h
}

async fn kinds(s: &dyn StoreBackend, id: &str) -> Vec<EventKind> {
    history(s, id).await.into_iter().map(|e| e.kind).collect()
}

/// The events from `from_seq` on, read with `read_history`'s own offset.
async fn kinds_from(s: &dyn StoreBackend, id: &str, from_seq: u64) -> Vec<EventKind> {
    let h = s.read_history(id, from_seq).await.expect("read_history");
    if let Some(first) = h.first() {
        assert_eq!(first.seq, from_seq, "read_history starts at from_seq");
    }
    h.into_iter().map(|e| e.kind).collect()
}

async fn last_seq(s: &dyn StoreBackend, id: &str) -> u64 {
    history(s, id).await.last().map(|e| e.seq).unwrap_or(0)
}

async fn describe(s: &dyn StoreBackend, id: &str) -> WorkflowDescription {
    s.describe(id)
        .await
        .expect("describe")
        .unwrap_or_else(|| panic!("workflow `{id}` exists"))
}

fn pending(seq: u64, activity_type: &str, state: &str, attempt: u32) -> PendingActivity {
    PendingActivity {
        activity_seq: seq,
        activity_type: activity_type.into(),
        state: state.into(),
        attempt,
        cancel_requested: false,
        heartbeat_details: None,
    }
}

async fn next_due(
    s: &dyn StoreBackend,
    queues: &[&str],
    wtypes: &[&str],
    atypes: &[&str],
) -> Option<i64> {
    s.next_due_ms(&v(queues), &v(wtypes), &v(atypes))
        .await
        .expect("next_due_ms")
}

async fn finish(
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

async fn heartbeat(
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
async fn sleep_past(t_ms: i64) {
    while now_ms() <= t_ms {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Fires every due timer; exactly `n` must be due.
async fn fire(s: &dyn StoreBackend, n: usize) {
    assert_eq!(
        s.fire_due_timers(100).await.expect("fire_due_timers"),
        n,
        "due timers fired"
    );
}

// ---------------------------------------------------------------------------------------------
// create_workflow

async fn check_create_workflow(s: &dyn StoreBackend) {
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

async fn check_execution_deadline(s: &dyn StoreBackend) {
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
// claim_workflow_tasks

async fn check_workflow_task_tokens_and_leases(s: &dyn StoreBackend) {
    create(s, "leased").await;
    let held = claim_wft(s, "leased").await;
    // A claimed task is not claimed again while its lease holds, by any worker.
    let again = s
        .claim_workflow_tasks("worker-2", &v(&[Q]), &v(&[WT]), 10, LONG_LEASE)
        .await
        .unwrap();
    assert!(
        again.is_empty(),
        "claimed twice within the lease: {again:?}"
    );

    create(s, "short").await;
    let first = s
        .claim_workflow_tasks(WORKER, &v(&[Q]), &v(&[WT]), 10, 1)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].workflow_id, "short");
    tokio::time::sleep(Duration::from_millis(10)).await;
    // Its lease ran out: it is claimed again, with a new token ("leased" is still held).
    let second = s
        .claim_workflow_tasks("worker-2", &v(&[Q]), &v(&[WT]), 10, LONG_LEASE)
        .await
        .unwrap();
    assert_eq!(second.len(), 1, "an expired lease is claimable: {second:?}");
    assert_eq!(second[0].workflow_id, "short");
    assert!(
        second[0].token > first[0].token,
        "each claim bumps the token: {} then {}",
        first[0].token,
        second[0].token
    );

    // The first claim is fenced: its commit writes nothing.
    let stale = s
        .commit_workflow_task(commit(&first[0], 1, vec![sched(1, AT)]))
        .await
        .unwrap();
    assert!(stale.is_none(), "a stale token must not commit");
    assert_eq!(history(s, "short").await.len(), 1);
    assert!(claim_acts(s, &[Q], &[AT], 10).await.is_empty());
    // The current one commits.
    let out = commit_ok(s, commit(&second[0], 1, vec![])).await;
    assert_eq!(out.marker_seq, 2);
    assert!(!out.rerun);

    // The long-leased task was never touched.
    let out = commit_ok(s, commit(&held, 1, vec![])).await;
    assert_eq!(out.marker_seq, 2);
}

async fn check_workflow_task_filters(s: &dyn StoreBackend) {
    s.create_workflow(new_wf("q1-t1", WT, Q, None))
        .await
        .unwrap();
    s.create_workflow(new_wf("q1-t2", WT2, Q, None))
        .await
        .unwrap();
    s.create_workflow(new_wf("q2-t1", WT, Q2, None))
        .await
        .unwrap();
    let claim = |queues: &'static [&'static str], types: &'static [&'static str], max: usize| async move {
        s.claim_workflow_tasks(WORKER, &v(queues), &v(types), max, LONG_LEASE)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.workflow_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(claim(&[Q2], &[WT2], 10).await, Vec::<String>::new());
    assert_eq!(claim(&[], &[WT, WT2], 10).await, Vec::<String>::new());
    assert_eq!(claim(&[Q, Q2], &[], 10).await, Vec::<String>::new());
    assert_eq!(claim(&[Q], &[WT], 10).await, vec!["q1-t1"]);
    assert_eq!(claim(&[Q], &[WT2], 10).await, vec!["q1-t2"]);
    assert_eq!(claim(&[Q2], &[WT], 10).await, vec!["q2-t1"]);
    assert_eq!(claim(&[Q, Q2], &[WT, WT2], 10).await, Vec::<String>::new());

    // `max` caps each claim.
    create(s, "m1").await;
    create(s, "m2").await;
    create(s, "m3").await;
    let a = claim(&[Q], &[WT], 2).await;
    assert_eq!(a.len(), 2, "{a:?}");
    let b = claim(&[Q], &[WT], 2).await;
    assert_eq!(b.len(), 1, "{b:?}");
    let mut all: Vec<String> = a.into_iter().chain(b).collect();
    all.sort();
    assert_eq!(all, vec!["m1", "m2", "m3"]);
    assert_eq!(claim(&[Q], &[WT], 0).await, Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// commit_workflow_task

async fn check_commit_stale_token(s: &dyn StoreBackend) {
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

async fn check_commit_commands_and_marker(s: &dyn StoreBackend) {
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

async fn check_timers(s: &dyn StoreBackend) {
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

async fn check_cancel_pending_activity(s: &dyn StoreBackend) {
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
                retry_at_ms: now_ms() + 600_000
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

async fn check_cancel_running_activity(s: &dyn StoreBackend) {
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

async fn check_close_workflow(s: &dyn StoreBackend) {
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

async fn check_commit_rerun_when_history_moved(s: &dyn StoreBackend) {
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

async fn check_eager_claims(s: &dyn StoreBackend) {
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

async fn check_eager_claims_only_new_tasks(s: &dyn StoreBackend) {
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
// Activity attempts

async fn check_claim_activity_tasks(s: &dyn StoreBackend) {
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
                retry_at_ms: now_ms()
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

async fn check_heartbeat(s: &dyn StoreBackend) {
    let c = start(s, "wf").await;
    commit_ok(s, commit(&c, 1, vec![sched(1, AT)])).await;
    let a1 = claim_act(s, AT, 1).await;
    assert!(
        finish(
            s,
            &a1,
            a1.token,
            ActivityResolution::Retry {
                retry_at_ms: now_ms()
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

async fn check_finish_outcomes(s: &dyn StoreBackend) {
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

async fn check_finish_retry(s: &dyn StoreBackend) {
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
            ActivityResolution::Retry { retry_at_ms: far },
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
            ActivityResolution::Retry { retry_at_ms: near },
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

async fn check_retry_of_cancelled_attempt(s: &dyn StoreBackend) {
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
                retry_at_ms: now_ms()
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

async fn check_finish_after_close(s: &dyn StoreBackend) {
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
                retry_at_ms: now_ms()
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
        },
        delivered_through,
        own_marker_seq,
    }
}

async fn check_continue_commits(s: &dyn StoreBackend) {
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

async fn check_continue_falls_back(s: &dyn StoreBackend) {
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

async fn check_continue_cancels_pending(s: &dyn StoreBackend) {
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
async fn check_continue_retry(s: &dyn StoreBackend) {
    let a = one_activity_running(s, "retried").await;
    let fo = s
        .finish_activity_and_continue(
            a.task_id,
            a.token,
            ActivityResolution::Retry {
                retry_at_ms: now_ms() + 600_000,
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
// Deadlines, local activities, cancel requests, holds, list, describe, next_due_ms.

async fn check_expired_activities(s: &dyn StoreBackend) {
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

async fn check_record_local_activity(s: &dyn StoreBackend) {
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

async fn check_request_cancel_workflow(s: &dyn StoreBackend) {
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

async fn check_hold_and_release(s: &dyn StoreBackend) {
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

async fn check_list_and_describe(s: &dyn StoreBackend) {
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

async fn check_next_due_ms(s: &dyn StoreBackend) {
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
