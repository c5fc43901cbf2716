//! Real workflows end to end on the Postgres store, through the public API. Each test uses its own
//! schema (created by the store, dropped at the end). The database comes from
//! `DURAFLOW_TEST_PG_URL` (see `support::pg_url`).

mod support;

use duraflow::prelude::*;
use duraflow::{
    Client, Error, EventKind, ListFilter, Store, Worker, WorkerOptions, WorkflowStatus,
};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

const WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Definitions

#[activity]
async fn pg_add(ctx: ActivityContext, x: i64) -> Result<i64, ActivityError> {
    let _ = ctx;
    Ok(x + 1)
}

#[workflow]
async fn pg_chain(ctx: WorkflowContext, n: i64) -> Result<i64, WorkflowError> {
    let mut v = 0;
    for _ in 0..n {
        v = ctx.activity(pg_add, v).await?;
    }
    Ok(v)
}

#[workflow]
async fn pg_sleeper(ctx: WorkflowContext, ms: u64) -> Result<u64, WorkflowError> {
    let before = ctx.now();
    ctx.sleep(Duration::from_millis(ms)).await?;
    let after = ctx.now();
    Ok(after
        .duration_since(before)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0))
}

static FLAKY_CALLS: AtomicU32 = AtomicU32::new(0);

/// Fails twice, then succeeds.
#[activity(retry(
    initial_interval = "50ms",
    backoff_coefficient = 1.0,
    maximum_attempts = 5
))]
async fn pg_flaky(ctx: ActivityContext, x: i64) -> Result<i64, ActivityError> {
    let n = FLAKY_CALLS.fetch_add(1, Ordering::SeqCst) + 1;
    if n <= 2 {
        return Err(ActivityError::application(
            "Transient",
            format!("attempt {}", ctx.info().attempt),
        ));
    }
    Ok(x * 10)
}

#[workflow]
async fn pg_retrying(ctx: WorkflowContext, x: i64) -> Result<i64, WorkflowError> {
    Ok(ctx.activity(pg_flaky, x).await?)
}

/// Heartbeats every 50 ms until cancelled.
#[activity(heartbeat_timeout = "1s")]
async fn pg_heartbeater(ctx: ActivityContext, _x: i64) -> Result<(), ActivityError> {
    let mut i = 0u32;
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        i += 1;
        ctx.heartbeat(&i)?;
    }
}

#[workflow]
async fn pg_canceller(ctx: WorkflowContext, x: i64) -> Result<String, WorkflowError> {
    let handle = ctx
        .activity(pg_heartbeater, x)
        .heartbeat_timeout(Duration::from_secs(1))
        .cancellation_type(CancellationType::WaitCancellationCompleted)
        .start();
    ctx.sleep(Duration::from_millis(300)).await?;
    handle.cancel();
    match handle.await {
        Err(e) if e.is_cancelled() => Ok("cancelled".to_string()),
        other => Ok(format!("unexpected: {other:?}")),
    }
}

/// Ids of the workflows whose `pg_slow_heartbeater` heard its cancel.
static HEARD_CANCEL: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Heartbeats every 20 ms with a 60 s heartbeat timeout: stored heartbeats are throttled to one
/// every 48 s, so only a notification can bring a cancel within the test's bounds.
#[activity(heartbeat_timeout = "60s")]
async fn pg_slow_heartbeater(ctx: ActivityContext, _x: i64) -> Result<(), ActivityError> {
    let mut i = 0u32;
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        i += 1;
        if let Err(e) = ctx.heartbeat(&i) {
            HEARD_CANCEL
                .lock()
                .unwrap()
                .push(ctx.info().workflow_id.clone());
            return Err(e);
        }
    }
}

/// Starts `pg_slow_heartbeater`, and cancels it after `ms` (never when `ms` is 0).
#[workflow]
async fn pg_remote_canceller(ctx: WorkflowContext, ms: u64) -> Result<String, WorkflowError> {
    let handle = ctx
        .activity(pg_slow_heartbeater, 0)
        .heartbeat_timeout(Duration::from_secs(60))
        .cancellation_type(CancellationType::WaitCancellationCompleted)
        .start();
    if ms == 0 {
        handle.await?;
        return Ok("done".to_string());
    }
    ctx.sleep(Duration::from_millis(ms)).await?;
    handle.cancel();
    match handle.await {
        Err(e) if e.is_cancelled() => Ok("cancelled".to_string()),
        other => Ok(format!("unexpected: {other:?}")),
    }
}

/// Starts `n` `pg_add` activities at once, then joins them.
#[workflow]
async fn pg_fanout(ctx: WorkflowContext, n: i64) -> Result<i64, WorkflowError> {
    let handles: Vec<_> = (0..n).map(|i| ctx.activity(pg_add, i).start()).collect();
    let mut sum = 0;
    for h in handles {
        sum += h.await?;
    }
    Ok(sum)
}

static SHARED_RUNS: Mutex<Vec<(String, i64)>> = Mutex::new(Vec::new());

#[activity]
async fn pg_shared_step(ctx: ActivityContext, x: i64) -> Result<i64, ActivityError> {
    tokio::time::sleep(Duration::from_millis(5)).await;
    SHARED_RUNS
        .lock()
        .unwrap()
        .push((ctx.info().workflow_id.clone(), x));
    Ok(x + 1)
}

#[workflow]
async fn pg_shared(ctx: WorkflowContext, n: i64) -> Result<i64, WorkflowError> {
    let mut v = 0;
    for _ in 0..n {
        v = ctx.activity(pg_shared_step, v).await?;
    }
    Ok(v)
}

// ---------------------------------------------------------------------------------------------
// Set-up: a fresh schema per test, dropped at the end (also when the test panics).

/// A fresh schema for `test` (see `support::TestDb`), or `None` to skip outside CI.
async fn env(test: &str) -> Option<support::TestDb> {
    let db = support::TestDb::postgres(test).await?;
    assert_eq!(db.store.kind(), "postgres");
    Some(db)
}

fn quick_options() -> WorkerOptions {
    let mut o = WorkerOptions::default();
    o.shutdown_grace = Duration::from_secs(2);
    o
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_chain_of_activities_history_and_describe() {
    let Some(env) = env("chain").await else {
        return;
    };
    let worker = Worker::new(&env.store)
        .register(pg_add)
        .register(pg_chain)
        .options(quick_options())
        .start();
    let client = Client::new(&env.store);
    let h = client.start(pg_chain, "chain-1", 5).await.unwrap();
    let started = std::time::Instant::now();
    let r = support::within(WAIT, "chain", h.result()).await.unwrap();
    println!("5-step chain on Postgres: {:?}", started.elapsed());
    assert_eq!(r, 5);

    // History, as events and as JSON.
    let hist = client.history("chain-1").await.unwrap();
    assert!(matches!(hist[0].kind, EventKind::WorkflowStarted { .. }));
    for (i, e) in hist.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1, "history numbered without gaps");
    }
    let completed: Vec<u64> = hist
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::ActivityCompleted { activity_seq, .. } => Some(activity_seq),
            _ => None,
        })
        .collect();
    assert_eq!(completed.len(), 5);
    // One commit per step: each activity's outcome is stored with the workflow's next task, whose
    // marker processed exactly through it; no other workflow task ran.
    let markers: Vec<(u64, u64)> = hist
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::WorkflowTaskCompleted {
                processed_through, ..
            } => Some((e.seq, processed_through)),
            _ => None,
        })
        .collect();
    assert_eq!(markers.len(), 6, "one workflow task per step: {markers:?}");
    for e in &hist {
        if let EventKind::ActivityCompleted { .. } = e.kind {
            assert!(
                markers.iter().any(|&(_, through)| through == e.seq),
                "the outcome #{} is committed with the next task: {markers:?}",
                e.seq
            );
        }
    }
    assert!(matches!(
        hist.last().unwrap().kind,
        EventKind::WorkflowTaskCompleted { .. }
    ));
    assert!(hist
        .iter()
        .any(|e| matches!(e.kind, EventKind::WorkflowCompleted { .. })));
    let json = client.history_json("chain-1").await.unwrap();
    let arr = json.as_array().expect("history JSON is an array");
    assert_eq!(arr.len(), hist.len());
    assert_eq!(arr[0]["event"], "workflow_started");
    assert_eq!(arr[0]["seq"], 1);

    // Describe and list.
    let d = client.describe("chain-1").await.unwrap();
    assert_eq!(d.status, WorkflowStatus::Completed);
    assert_eq!(d.result, Some(serde_json::json!(5)));
    assert_eq!(d.history_length, hist.len() as u64);
    assert!(d.closed_ms.is_some());
    assert!(d.pending_activities.is_empty());
    let h2 = client.start(pg_chain, "chain-2", 2).await.unwrap();
    assert_eq!(
        support::within(WAIT, "chain-2", h2.result()).await.unwrap(),
        2
    );
    let all = client.list(ListFilter::all()).await.unwrap();
    let ids: HashSet<&str> = all.iter().map(|s| s.workflow_id.as_str()).collect();
    assert_eq!(ids, HashSet::from(["chain-1", "chain-2"]));
    let done = client
        .list(ListFilter::all().status(WorkflowStatus::Completed).limit(1))
        .await
        .unwrap();
    assert_eq!(done.len(), 1);
    let none = client
        .list(ListFilter::all().status(WorkflowStatus::Running))
        .await
        .unwrap();
    assert!(none.is_empty());
    assert!(matches!(
        client.describe("no-such-workflow").await,
        Err(Error::WorkflowNotFound(_))
    ));
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_durable_timer() {
    let Some(env) = env("timer").await else {
        return;
    };
    let worker = Worker::new(&env.store)
        .register(pg_sleeper)
        .options(quick_options())
        .start();
    let client = Client::new(&env.store);
    let h = client.start(pg_sleeper, "sleep-1", 300).await.unwrap();
    let slept = support::within(WAIT, "timer", h.result()).await.unwrap();
    assert!(slept >= 300, "the workflow clock moved {slept} ms");
    // The timer fired once, not before its time: the order and the recorded times say so, with no
    // bound on how late a loaded machine may run it.
    let hist = client.history("sleep-1").await.unwrap();
    // The timer is set on the workflow's clock (the task's marker records it) and fired once.
    let started: Vec<(usize, i64)> = hist
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match e.kind {
            EventKind::TimerStarted { fire_at_ms, .. } => Some((i, fire_at_ms)),
            _ => None,
        })
        .collect();
    let fired: Vec<i64> = hist
        .iter()
        .filter(|e| matches!(e.kind, EventKind::TimerFired { .. }))
        .map(|e| e.time_ms)
        .collect();
    assert_eq!((started.len(), fired.len()), (1, 1), "{hist:?}");
    let (at, fire_at) = started[0];
    let task_time = hist[at..]
        .iter()
        .find_map(|e| match e.kind {
            EventKind::WorkflowTaskCompleted { task_time_ms, .. } => Some(task_time_ms),
            _ => None,
        })
        .expect("the task that started the timer has a marker");
    assert_eq!(fire_at, task_time + 300, "{hist:?}");
    assert!(
        fired[0] >= fire_at,
        "fired early: at {} for {fire_at}",
        fired[0]
    );
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_retry_then_success() {
    let Some(env) = env("retry").await else {
        return;
    };
    let worker = Worker::new(&env.store)
        .register(pg_flaky)
        .register(pg_retrying)
        .options(quick_options())
        .start();
    let client = Client::new(&env.store);
    let h = client.start(pg_retrying, "retry-1", 4).await.unwrap();
    assert_eq!(
        support::within(WAIT, "retry", h.result()).await.unwrap(),
        40
    );
    assert_eq!(FLAKY_CALLS.load(Ordering::SeqCst), 3);
    let hist = client.history("retry-1").await.unwrap();
    let attempts: Vec<u32> = hist
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::ActivityStarted { attempt, .. } => Some(attempt),
            _ => None,
        })
        .collect();
    assert_eq!(attempts, vec![1, 2, 3]);
    assert_eq!(
        hist.iter()
            .filter(|e| matches!(e.kind, EventKind::ActivityCompleted { .. }))
            .count(),
        1
    );
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_cancel_heartbeating_activity() {
    let Some(env) = env("cancel").await else {
        return;
    };
    let worker = Worker::new(&env.store)
        .register(pg_heartbeater)
        .register(pg_canceller)
        .options(quick_options())
        .start();
    let client = Client::new(&env.store);
    let h = client.start(pg_canceller, "cancel-1", 1).await.unwrap();
    assert_eq!(
        support::within(WAIT, "cancel", h.result()).await.unwrap(),
        "cancelled"
    );
    let hist = client.history("cancel-1").await.unwrap();
    let names: Vec<&str> = hist.iter().map(|e| e.kind.name()).collect();
    assert!(
        names.contains(&"activity_cancel_requested") && names.contains(&"activity_cancelled"),
        "history: {names:?}"
    );
    let d = client.describe("cancel-1").await.unwrap();
    assert!(d.pending_activities.is_empty());
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_duplicate_workflow_id() {
    let Some(env) = env("dup").await else { return };
    let client = Client::new(&env.store);
    client.start(pg_chain, "dup-1", 1).await.unwrap();
    match client.start(pg_chain, "dup-1", 1).await {
        Err(Error::DuplicateWorkflowId(id)) => assert_eq!(id, "dup-1"),
        other => panic!(
            "expected DuplicateWorkflowId, got {:?}",
            other.map(|h| h.id().to_string())
        ),
    }
    // Also through another pool, as another process would.
    let other = Store::postgres_in_schema(env.pg_url(), env.pg_schema())
        .await
        .unwrap();
    assert!(matches!(
        Client::new(&other).start(pg_chain, "dup-1", 1).await,
        Err(Error::DuplicateWorkflowId(_))
    ));
    // No worker ran: the first one is still there, untouched, with one history event.
    let d = client.describe("dup-1").await.unwrap();
    assert_eq!(d.status, WorkflowStatus::Running);
    assert_eq!(d.history_length, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_two_workers_share_the_work() {
    let Some(env) = env("shared").await else {
        return;
    };
    // A second handle: its own pool and listener, as another process would have.
    let other = Store::postgres_in_schema(env.pg_url(), env.pg_schema())
        .await
        .unwrap();
    let mut opts = quick_options();
    opts.max_concurrent_workflow_tasks = 2;
    opts.max_concurrent_activities = 2;
    let w1 = Worker::new(&env.store)
        .register(pg_shared_step)
        .register(pg_shared)
        .options(opts.clone())
        .start();
    let w2 = Worker::new(&other)
        .register(pg_shared_step)
        .register(pg_shared)
        .options(opts)
        .start();
    let client = Client::new(&env.store);
    let n_wf = 12;
    let steps = 4;
    let mut handles = Vec::new();
    for i in 0..n_wf {
        handles.push(
            client
                .start(pg_shared, format!("shared-{i}"), steps)
                .await
                .unwrap(),
        );
    }
    for h in handles {
        assert_eq!(
            support::within(WAIT, "shared", h.result()).await.unwrap(),
            steps
        );
    }
    // Every step ran once: no activity result recorded twice, no step run twice.
    let mut workers = HashSet::new();
    for i in 0..n_wf {
        let id = format!("shared-{i}");
        let hist = client.history(&id).await.unwrap();
        let mut completed: HashMap<u64, usize> = HashMap::new();
        for e in &hist {
            match &e.kind {
                EventKind::ActivityCompleted { activity_seq, .. } => {
                    *completed.entry(*activity_seq).or_default() += 1
                }
                EventKind::ActivityStarted { worker, .. } => {
                    workers.insert(worker.clone());
                }
                _ => {}
            }
        }
        assert_eq!(completed.len(), steps as usize, "{id}: {completed:?}");
        assert!(completed.values().all(|&n| n == 1), "{id}: {completed:?}");
        assert_eq!(
            hist.iter()
                .filter(|e| matches!(e.kind, EventKind::WorkflowCompleted { .. }))
                .count(),
            1
        );
    }
    let runs = SHARED_RUNS.lock().unwrap().clone();
    let distinct: HashSet<&(String, i64)> = runs.iter().collect();
    assert_eq!(runs.len(), (n_wf * steps) as usize, "activity executions");
    assert_eq!(distinct.len(), runs.len(), "a step ran twice");
    assert_eq!(
        workers.len(),
        2,
        "both workers took activity tasks: {workers:?}"
    );
    w1.shutdown().await;
    w2.shutdown().await;
}

/// A 200-step chain, then 30 chains of 10 one after another, complete with the right results. The
/// time per step is printed for information (`--nocapture`); timing goals live in the benchmark.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_long_and_sequential_chains() {
    let Some(env) = env("latency").await else {
        return;
    };
    let worker = Worker::new(&env.store)
        .register(pg_add)
        .register(pg_chain)
        .options(quick_options())
        .start();
    let client = Client::new(&env.store);
    // Warm the pool's prepared statements.
    let h = client.start(pg_chain, "warm", 5).await.unwrap();
    support::within(WAIT, "warm-up", h.result()).await.unwrap();
    let steps = 200;
    let started = std::time::Instant::now();
    let h = client.start(pg_chain, "latency", steps).await.unwrap();
    assert_eq!(
        support::within(WAIT, "latency", h.result()).await.unwrap(),
        steps
    );
    let per_step = started.elapsed() / steps as u32;
    println!("Postgres: {steps} sequential steps, {per_step:?} per step");
    // Chains of 10 activities, one workflow after another (start and result included).
    let (runs, chain) = (30, 10);
    let started = std::time::Instant::now();
    for i in 0..runs {
        let h = client
            .start(pg_chain, format!("chain10-{i}"), chain)
            .await
            .unwrap();
        assert_eq!(
            support::within(WAIT, "chain10", h.result()).await.unwrap(),
            chain
        );
    }
    let per_step = started.elapsed() / (runs * chain) as u32;
    println!(
        "Postgres: {runs} workflows of {chain} steps one after another, {per_step:?} per step"
    );
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_refuses_newer_or_foreign_schema() {
    let Some(env) = env("refuse").await else {
        return;
    };
    // Reopening our own schema is fine.
    Store::postgres_in_schema(env.pg_url(), env.pg_schema())
        .await
        .unwrap();
    // A newer schema version is refused, and left as it was.
    support::pg_exec_blocking(
        env.pg_url(),
        &format!(
            "UPDATE \"{}\".duraflow_meta SET value = '99' WHERE key = 'schema_version'",
            env.pg_schema()
        ),
    )
    .unwrap();
    match Store::postgres_in_schema(env.pg_url(), env.pg_schema()).await {
        Err(Error::Store(msg)) => assert!(msg.contains("newer"), "{msg}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // A schema holding another program's tables is refused.
    let foreign = format!("{}_foreign", env.pg_schema());
    support::pg_exec_blocking(
        env.pg_url(),
        &format!("CREATE SCHEMA \"{foreign}\"; CREATE TABLE \"{foreign}\".orders (id INT)"),
    )
    .unwrap();
    let r = Store::postgres_in_schema(env.pg_url(), &foreign).await;
    support::pg_exec_blocking(env.pg_url(), &format!("DROP SCHEMA \"{foreign}\" CASCADE")).unwrap();
    match r {
        Err(Error::Store(msg)) => assert!(msg.contains("orders"), "{msg}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // A bad schema name is an invalid option, not SQL.
    assert!(matches!(
        Store::postgres_in_schema(env.pg_url(), "x\"; DROP TABLE y; --").await,
        Err(Error::InvalidOption(_))
    ));
}

/// A worker in "another process" wakes on `NOTIFY`, also after its LISTEN connection was cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_listen_wakes_other_process_and_reconnects() {
    let Some(env) = env("listen").await else {
        return;
    };
    let other = Store::postgres_in_schema(env.pg_url(), env.pg_schema())
        .await
        .unwrap();
    let mut opts = quick_options();
    opts.poll_interval = Duration::from_secs(30);
    let worker = Worker::new(&other)
        .register(pg_add)
        .register(pg_chain)
        .options(opts)
        .start();
    let client = Client::new(&env.store);
    // Let the worker go idle (it then sleeps up to its 30 s poll interval).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let h = client.start(pg_chain, "listen-1", 1).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), h.result())
        .await
        .expect("the other worker did not wake on NOTIFY")
        .unwrap();
    // Cut every LISTEN connection of this schema (there are two); the listeners reconnect.
    let listening = format!(
        "FROM pg_stat_activity WHERE query = 'LISTEN \"duraflow_{}\"'",
        env.pg_schema()
    );
    support::pg_exec_blocking(
        env.pg_url(),
        &format!(
            "DO $$ BEGIN IF (SELECT count(*) {listening}) < 2 THEN
                 RAISE EXCEPTION 'the LISTEN connections were not found'; END IF; END $$;
             SELECT pg_terminate_backend(pid) {listening}"
        ),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let h = client.start(pg_chain, "listen-2", 1).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), h.result())
        .await
        .expect("the other worker did not wake on NOTIFY after its listener reconnected")
        .unwrap();
    worker.shutdown().await;
}

/// A cancel committed in one process reaches the attempt running in another at once (its
/// `NOTIFY`), not at the attempt's next stored heartbeat (48 s away here): through the workflow's
/// `handle.cancel()`, and through a client's `terminate()`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_cancel_reaches_an_attempt_in_another_process_at_once() {
    let Some(env) = env("remote_cancel").await else {
        return;
    };
    let other = Store::postgres_in_schema(env.pg_url(), env.pg_schema())
        .await
        .unwrap();
    // Workflows run here, activities only in the other "process".
    let workflows = Worker::new(&env.store)
        .register(pg_remote_canceller)
        .options(quick_options())
        .start();
    let activities = Worker::new(&other)
        .register(pg_slow_heartbeater)
        .options(quick_options())
        .start();
    let client = Client::new(&env.store);
    let bound = Duration::from_secs(15);

    let h = client
        .start(pg_remote_canceller, "remote-cancel-1", 500)
        .await
        .unwrap();
    assert_eq!(
        support::within(bound, "the cancel in the other process", h.result())
            .await
            .unwrap(),
        "cancelled"
    );
    assert!(HEARD_CANCEL
        .lock()
        .unwrap()
        .contains(&"remote-cancel-1".to_string()));

    // A close (terminate) flags the running attempt too.
    let h = client
        .start(pg_remote_canceller, "remote-cancel-2", 0)
        .await
        .unwrap();
    let started = support::within(bound, "the attempt to start", async {
        loop {
            let d = client.describe("remote-cancel-2").await.unwrap();
            // Its first heartbeat is stored at once: the attempt runs in the other process.
            let running = d
                .pending_activities
                .iter()
                .any(|a| a.state == "running" && a.heartbeat_details.is_some());
            if running {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    started.await;
    assert!(client.terminate("remote-cancel-2", "test").await.unwrap());
    let _ = h;
    support::within(
        bound,
        "the terminated workflow's attempt to hear it",
        async {
            while !HEARD_CANCEL
                .lock()
                .unwrap()
                .contains(&"remote-cancel-2".to_string())
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        },
    )
    .await;
    activities.shutdown().await;
    workflows.shutdown().await;
}

/// The outcomes of a fan-out's attempts, finishing together, are recorded together (several per
/// transaction): every one exactly once, in a history that replays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_fanout_outcomes_recorded_together_each_once() {
    let Some(env) = env("fanout").await else {
        return;
    };
    let mut opts = quick_options();
    // Only a few instances cached: completions also take the ordinary (not one-commit) path.
    opts.max_cached_workflows = 1;
    let worker = Worker::new(&env.store)
        .register(pg_add)
        .register(pg_fanout)
        .options(opts)
        .start();
    let client = Client::new(&env.store);
    let n = 300i64;
    let handles = vec![
        client.start(pg_fanout, "fan-1", n).await.unwrap(),
        client.start(pg_fanout, "fan-2", n).await.unwrap(),
    ];
    for h in handles {
        let sum = support::within(WAIT, "fan-out", h.result()).await.unwrap();
        assert_eq!(sum, (1..=n).sum::<i64>());
    }
    for id in ["fan-1", "fan-2"] {
        let hist = client.history(id).await.unwrap();
        let completed = support::count(&hist, |k| matches!(k, EventKind::ActivityCompleted { .. }));
        assert_eq!(completed, n as usize, "{id}");
    }
    worker.shutdown().await;
}

/// Cancel requests made at once are recorded together: each gets its own answer (accepted, ended,
/// or not found for an unknown id), each workflow's request is recorded once, and every cancelled workflow ends cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_concurrent_cancels_each_answered() {
    let Some(env) = env("cancels").await else {
        return;
    };
    let worker = Worker::new(&env.store)
        .register(pg_sleeper)
        .options(quick_options())
        .start();
    let client = Client::new(&env.store);
    let n = 40;
    let mut handles = Vec::new();
    for i in 0..n {
        handles.push(
            client
                .start(pg_sleeper, format!("nap-{i}"), 3_600_000)
                .await
                .unwrap(),
        );
    }
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..n {
        for _ in 0..2 {
            let client = client.clone();
            calls.spawn(async move { (i, client.cancel(&format!("nap-{i}")).await) });
        }
    }
    let unknown = client.clone();
    calls.spawn(async move { (-1, unknown.cancel("no-such-workflow").await) });
    let mut accepted = HashMap::new();
    while let Some(r) = calls.join_next().await {
        match r.unwrap() {
            (-1, r) => assert!(matches!(r, Err(Error::WorkflowNotFound(_))), "{r:?}"),
            (i, r) => *accepted.entry(i).or_insert(0) += r.unwrap() as u32,
        }
    }
    // The first request for each workflow is accepted (the second too, unless the workflow already
    // ended cancelled by then); one of them is recorded.
    assert!(
        accepted.len() == n as usize && accepted.values().all(|&a| a >= 1),
        "{accepted:?}"
    );
    for (i, h) in handles.into_iter().enumerate() {
        let r = support::within(WAIT, "a cancelled sleeper", h.result()).await;
        assert!(matches!(r, Err(Error::WorkflowCancelled)), "{r:?}");
        let hist = client.history(&format!("nap-{i}")).await.unwrap();
        let requested = support::count(&hist, |k| {
            matches!(k, EventKind::WorkflowCancelRequested { .. })
        });
        assert_eq!(requested, 1, "nap-{i}");
    }
    worker.shutdown().await;
}

/// A database error keeps the driver's error as its source, and says where it tried, without the
/// password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_a_database_error_with_its_source() {
    // Port 1: nothing listens there.
    match Store::postgres("postgres://someone:secret@127.0.0.1:1/test").await {
        Err(e @ Error::Database { .. }) => {
            let message = e.to_string();
            assert!(message.contains("127.0.0.1:1"), "{message}");
            assert!(
                !message.contains("secret"),
                "the password leaked: {message}"
            );
            let source = std::error::Error::source(&e).expect("the driver's error as the source");
            assert!(!source.to_string().is_empty());
        }
        other => panic!("expected a database error, got {other:?}"),
    }
}
