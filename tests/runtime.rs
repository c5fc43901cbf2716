//! The durable runtime, end to end through the public API, on every store: chains, retries, timeouts,
//! durable timers across restarts, deterministic replay, held workflows, unknown names, payload errors,
//! and the client's queries.

mod support;

use duraflow::prelude::*;
use duraflow::{
    Client, Error, EventKind, HistoryEvent, ListFilter, NondeterminismPolicy, Store, TimeoutKind,
    Worker, WorkerOptions, WorkflowStatus,
};
use serde_json::json;
use support::{assert_contiguous, count, eventually, note, noted, stop, wid, within, TestDb};

const LIMIT: Duration = Duration::from_secs(20);

fn quick_options() -> WorkerOptions {
    let mut o = WorkerOptions::default();
    o.poll_interval = Duration::from_millis(200);
    o.held_retry_interval = Duration::from_millis(200);
    o.shutdown_grace = Duration::from_secs(2);
    o
}

fn worker(store: &Store) -> Worker {
    Worker::new(store).options(quick_options())
}

// ---------------------------------------------------------------------------------------------
// Definitions

#[activity]
async fn add_one(x: i64) -> Result<i64, ActivityError> {
    Ok(x + 1)
}

#[workflow]
async fn chain_wf(ctx: WorkflowContext, n: i64) -> Result<i64, WorkflowError> {
    let mut v = 0;
    for _ in 0..n {
        v = ctx.activity(add_one, v).await?;
    }
    Ok(v)
}

#[activity(retry(
    initial_interval = "10ms",
    backoff_coefficient = 2.0,
    maximum_attempts = 5
))]
async fn flaky(ctx: ActivityContext, fail_times: u32) -> Result<u32, ActivityError> {
    let attempt = ctx.info().attempt;
    if attempt <= fail_times {
        Err(ActivityError::application(
            "Flaky",
            format!("attempt {attempt} fails"),
        ))
    } else {
        Ok(attempt)
    }
}

#[workflow]
async fn flaky_wf(ctx: WorkflowContext, fail_times: u32) -> Result<u32, WorkflowError> {
    Ok(ctx.activity(flaky, fail_times).await?)
}

#[activity(retry(initial_interval = "10ms", non_retryable = ["InvalidInput"]))]
async fn picky(error_type: String) -> Result<(), ActivityError> {
    if error_type == "marked" {
        return Err(ActivityError::non_retryable("Marked", "never retry this"));
    }
    Err(ActivityError::application(error_type, "nope"))
}

/// Returns how many attempts the activity had, and its error type.
#[workflow]
async fn picky_wf(
    ctx: WorkflowContext,
    error_type: String,
) -> Result<(u32, String), WorkflowError> {
    match ctx
        .activity(picky, error_type)
        .retry_policy(RetryPolicy {
            initial_interval: Duration::from_millis(10),
            maximum_attempts: 3,
            non_retryable_error_types: vec!["InvalidInput".into()],
            ..RetryPolicy::default()
        })
        .await
    {
        Ok(()) => Err(WorkflowError::application("Unexpected", "picky succeeded")),
        Err(e) => Ok((e.attempts().unwrap_or(0), e.error_type().to_string())),
    }
}

#[activity(
    start_to_close_timeout = "200ms",
    retry(initial_interval = "10ms", maximum_attempts = 2)
)]
async fn sleepy() -> Result<(), ActivityError> {
    tokio::time::sleep(Duration::from_secs(30)).await;
    Ok(())
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
enum TimeoutCase {
    StartToClose,
    ScheduleToStart,
    ScheduleToClose,
}

/// Returns the timeout kind and attempt count the workflow saw.
#[workflow]
async fn timeout_wf(
    ctx: WorkflowContext,
    case: TimeoutCase,
) -> Result<(Option<TimeoutKind>, Option<u32>), WorkflowError> {
    let r = match case {
        TimeoutCase::StartToClose => ctx.activity(sleepy, ()).await,
        TimeoutCase::ScheduleToStart => {
            ctx.activity(sleepy, ())
                .task_queue("nobody-polls-this")
                .schedule_to_start_timeout(Duration::from_millis(200))
                .await
        }
        TimeoutCase::ScheduleToClose => {
            ctx.activity(sleepy, ())
                .start_to_close_timeout(Duration::from_secs(10))
                .schedule_to_close_timeout(Duration::from_millis(300))
                .await
        }
    };
    match r {
        Ok(()) => Err(WorkflowError::application("Unexpected", "no timeout")),
        Err(e) => Ok((e.timeout_kind(), e.attempts())),
    }
}

/// Sleeps on a durable timer; returns how long the workflow's clock says it slept.
#[workflow]
async fn timer_wf(ctx: WorkflowContext, ms: u64) -> Result<u64, WorkflowError> {
    let t0 = ctx.now();
    ctx.sleep(Duration::from_millis(ms)).await?;
    let t1 = ctx.now();
    Ok(t1.duration_since(t0).unwrap_or_default().as_millis() as u64)
}

#[activity]
async fn echo(v: serde_json::Value) -> Result<serde_json::Value, ActivityError> {
    Ok(v)
}

/// Draws random values, a uuid and the time before and after a durable timer; passes the first ones
/// to an activity (so the history records them) and returns them all.
#[workflow]
async fn stand_ins_wf(
    ctx: WorkflowContext,
    sleep_ms: u64,
) -> Result<serde_json::Value, WorkflowError> {
    let first = json!({
        "random": ctx.random_u64(),
        "uuid": ctx.uuid().to_string(),
        "now": ctx.now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis() as u64,
    });
    ctx.activity(echo, first.clone()).await?;
    ctx.sleep(Duration::from_millis(sleep_ms)).await?;
    Ok(json!({ "first": first, "second": ctx.random_u64() }))
}

/// Runs three activities at once with `join!`, then races an activity against a long timer.
#[workflow]
async fn concurrent_wf(ctx: WorkflowContext) -> Result<(i64, i64, i64, String), WorkflowError> {
    let (a, b, c) = join!(
        ctx.activity(add_one, 10),
        ctx.activity(add_one, 20),
        ctx.activity(add_one, 30)
    );
    let winner = select! {
        r = ctx.activity(add_one, 0) => format!("activity:{}", r?),
        _ = ctx.sleep(Duration::from_secs(60)) => "timer".to_string(),
    };
    Ok((a?, b?, c?, winner))
}

#[workflow(name = "evolving")]
async fn evolving_v1(ctx: WorkflowContext) -> Result<String, WorkflowError> {
    ctx.activity(add_one, 1).await?;
    ctx.sleep(Duration::from_millis(300)).await?;
    Ok("v1".into())
}

/// The same registered name, changed code: its first command is a timer, not an activity.
#[workflow(name = "evolving")]
async fn evolving_v2(ctx: WorkflowContext) -> Result<String, WorkflowError> {
    ctx.sleep(Duration::from_millis(1)).await?;
    ctx.activity(add_one, 1).await?;
    Ok("v2".into())
}

#[workflow(name = "late_wf")]
async fn late_wf(ctx: WorkflowContext, x: i64) -> Result<i64, WorkflowError> {
    Ok(ctx.activity(add_one, x).await?)
}

#[activity(name = "shape_shifter")]
async fn shape_string() -> Result<String, ActivityError> {
    Ok("not a number".into())
}

#[activity(name = "shape_shifter")]
async fn shape_number() -> Result<i64, ActivityError> {
    Ok(7)
}

#[activity(name = "input_shape")]
async fn input_string(s: String) -> Result<usize, ActivityError> {
    Ok(s.len())
}

#[activity(name = "input_shape")]
async fn input_number(n: i64) -> Result<usize, ActivityError> {
    Ok(n as usize)
}

/// Calls activities whose registered code has other types than the definitions it names.
#[workflow]
async fn payload_wf(ctx: WorkflowContext) -> Result<(String, String), WorkflowError> {
    let out = match ctx.activity(shape_number, ()).await {
        Ok(v) => format!("ok {v}"),
        Err(e) => format!("{} after {:?}", e, e.attempts()),
    };
    let inp = match ctx.activity(input_number, 42).await {
        Ok(v) => format!("ok {v}"),
        Err(e) => format!("{} after {:?}", e, e.attempts()),
    };
    Ok((out, inp))
}

#[workflow(execution_timeout = "300ms")]
async fn overdue_wf(ctx: WorkflowContext) -> Result<(), WorkflowError> {
    ctx.sleep(Duration::from_secs(3600)).await?;
    Ok(())
}

#[activity]
async fn takes_a_while(ctx: ActivityContext, ms: u64) -> Result<u64, ActivityError> {
    note(&ctx, "started");
    tokio::time::sleep(Duration::from_millis(ms)).await;
    note(&ctx, "finished");
    Ok(ms)
}

#[workflow]
async fn waits_for_wf(ctx: WorkflowContext, ms: u64) -> Result<u64, WorkflowError> {
    Ok(ctx.activity(takes_a_while, ms).await?)
}

/// Attempt 1 stops heartbeating and finishes late, after attempt 2 took over; attempt 2 heartbeats
/// and finishes after that.
#[activity(
    heartbeat_timeout = "300ms",
    retry(initial_interval = "10ms", maximum_attempts = 3)
)]
async fn overtaken(ctx: ActivityContext) -> Result<u32, ActivityError> {
    let attempt = ctx.info().attempt;
    ctx.heartbeat(&attempt)?;
    if attempt == 1 {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        note(&ctx, "attempt 1 returned late");
        return Ok(1);
    }
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = ctx.heartbeat(&attempt);
    }
    Ok(attempt)
}

#[workflow]
async fn overtaken_wf(ctx: WorkflowContext) -> Result<u32, WorkflowError> {
    Ok(ctx.activity(overtaken, ()).await?)
}

// ---------------------------------------------------------------------------------------------
// Helpers

async fn history(client: &Client, id: &str) -> Vec<HistoryEvent> {
    client.history(id).await.expect("history")
}

// ---------------------------------------------------------------------------------------------
// Tests

async fn chain_of_activities(db: &TestDb) {
    let w = worker(&db.store)
        .register(add_one)
        .register(chain_wf)
        .start();
    let client = Client::new(&db.store);
    let h = client.start(chain_wf, "chain-1", 5).await.unwrap();
    assert_eq!(within(LIMIT, "chain result", h.result()).await.unwrap(), 5);
    let hist = history(&client, "chain-1").await;
    assert_contiguous(&hist);
    assert_eq!(
        count(&hist, |k| matches!(k, EventKind::ActivityScheduled { .. })),
        5
    );
    assert_eq!(
        count(&hist, |k| matches!(k, EventKind::ActivityCompleted { .. })),
        5
    );
    assert_eq!(
        count(&hist, |k| matches!(k, EventKind::WorkflowCompleted { .. })),
        1
    );
    assert!(matches!(hist[0].kind, EventKind::WorkflowStarted { .. }));
    let d = client.describe("chain-1").await.unwrap();
    assert_eq!(d.status, WorkflowStatus::Completed);
    assert_eq!(d.result, Some(json!(5)));
    stop(w).await;
}

async fn retry_then_success_and_exhaustion(db: &TestDb) {
    let w = worker(&db.store).register(flaky).register(flaky_wf).start();
    let client = Client::new(&db.store);
    let ok = client.start(flaky_wf, "flaky-ok", 2).await.unwrap();
    assert_eq!(
        within(LIMIT, "flaky ok", ok.result()).await.unwrap(),
        3,
        "succeeds on attempt 3"
    );

    let bad = client.start(flaky_wf, "flaky-bad", 100).await.unwrap();
    match within(LIMIT, "flaky bad", bad.result()).await {
        Err(Error::WorkflowFailed(WorkflowError::Activity(e))) => {
            assert_eq!(e.attempts(), Some(5), "maximum_attempts = 5: {e}");
            assert_eq!(e.error_type(), "Flaky");
            assert!(e.to_string().contains("attempt 5 fails"), "{e}");
        }
        other => panic!("expected the activity failure, got {other:?}"),
    }
    let hist = history(&client, "flaky-bad").await;
    assert_eq!(
        count(&hist, |k| matches!(k, EventKind::ActivityStarted { .. })),
        5
    );
    assert_eq!(
        count(&hist, |k| matches!(k, EventKind::ActivityFailed { .. })),
        1
    );
    stop(w).await;
}

async fn non_retryable_errors(db: &TestDb) {
    let w = worker(&db.store).register(picky).register(picky_wf).start();
    let client = Client::new(&db.store);
    for (id, input, attempts, ty) in [
        ("picky-listed", "InvalidInput", 1, "InvalidInput"),
        ("picky-marked", "marked", 1, "Marked"),
        ("picky-other", "Transient", 3, "Transient"),
    ] {
        let h = client.start(picky_wf, id, input.to_string()).await.unwrap();
        let (n, t) = within(LIMIT, id, h.result()).await.unwrap();
        assert_eq!((n, t.as_str()), (attempts, ty), "{id}");
    }
    stop(w).await;
}

async fn activity_timeouts(db: &TestDb) {
    let w = worker(&db.store)
        .register(sleepy)
        .register(timeout_wf)
        .start();
    let client = Client::new(&db.store);
    let cases = [
        (
            TimeoutCase::StartToClose,
            TimeoutKind::StartToClose,
            Some(2),
        ),
        (
            TimeoutCase::ScheduleToStart,
            TimeoutKind::ScheduleToStart,
            Some(0),
        ),
        (
            TimeoutCase::ScheduleToClose,
            TimeoutKind::ScheduleToClose,
            Some(1),
        ),
    ];
    for (i, (case, kind, attempts)) in cases.into_iter().enumerate() {
        let id = format!("timeout-{i}");
        let h = client
            .start(timeout_wf, id.clone(), case.clone())
            .await
            .unwrap();
        let (k, n) = within(LIMIT, &id, h.result()).await.unwrap();
        assert_eq!(k, Some(kind), "{case:?}");
        assert_eq!(n, attempts, "{case:?}");
        let hist = history(&client, &id).await;
        assert_eq!(
            count(&hist, |k| matches!(k, EventKind::ActivityTimedOut { .. })),
            1
        );
    }
    stop(w).await;
}

async fn durable_timer_survives_restart(db: &TestDb) {
    let w = worker(&db.store).register(timer_wf).start();
    let client = Client::new(&db.store);
    client.start(timer_wf, "timer-1", 700).await.unwrap();
    eventually(LIMIT, "timer started", || async {
        history(&client, "timer-1")
            .await
            .iter()
            .any(|e| matches!(e.kind, EventKind::TimerStarted { .. }))
    })
    .await;
    stop(w).await;

    // A new process: a new store handle on the same database, a new worker.
    let store2 = db.reopen().await;
    let w2 = worker(&store2).register(timer_wf).start();
    let client2 = Client::new(&store2);
    let slept = within(
        LIMIT,
        "timer result",
        client2.handle::<u64>("timer-1").result(),
    )
    .await
    .unwrap();
    assert!(
        slept >= 700,
        "the workflow clock moved at least the timer's length: {slept}"
    );
    let hist = history(&client2, "timer-1").await;
    assert_eq!(
        count(&hist, |k| matches!(k, EventKind::TimerFired { .. })),
        1
    );
    stop(w2).await;
}

async fn replay_reproduces_stand_ins(db: &TestDb) {
    let w = worker(&db.store)
        .register(echo)
        .register(stand_ins_wf)
        .start();
    let client = Client::new(&db.store);
    client.start(stand_ins_wf, "stand-ins", 400).await.unwrap();
    eventually(LIMIT, "timer started", || async {
        history(&client, "stand-ins")
            .await
            .iter()
            .any(|e| matches!(e.kind, EventKind::TimerStarted { .. }))
    })
    .await;
    stop(w).await;

    // A new worker has no cached instance: it replays the history from the start.
    let w2 = worker(&db.store)
        .register(echo)
        .register(stand_ins_wf)
        .start();
    let out = within(
        LIMIT,
        "result",
        client.handle::<serde_json::Value>("stand-ins").result(),
    )
    .await
    .unwrap();
    let hist = history(&client, "stand-ins").await;
    let recorded = hist
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::ActivityScheduled { input, .. } => Some(input.clone()),
            _ => None,
        })
        .expect("echo scheduled");
    assert_eq!(
        out["first"], recorded,
        "replay gave the same random, uuid and time as the first run"
    );
    assert_ne!(out["second"], out["first"]["random"]);
    stop(w2).await;
}

async fn join_and_select(db: &TestDb) {
    let w = worker(&db.store)
        .register(add_one)
        .register(concurrent_wf)
        .start();
    let client = Client::new(&db.store);
    let h = client.start(concurrent_wf, "concurrent", ()).await.unwrap();
    let r = within(LIMIT, "concurrent", h.result()).await.unwrap();
    assert_eq!(r, (11, 21, 31, "activity:1".to_string()));
    let hist = history(&client, "concurrent").await;
    // The three joined activities were scheduled in one workflow task, in the order written.
    let scheduled: Vec<u64> = hist
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ActivityScheduled { activity_seq, .. } => Some(*activity_seq),
            _ => None,
        })
        .collect();
    assert_eq!(&scheduled[..3], &[1, 2, 3]);
    // The losing timer was cancelled when `select!` dropped it.
    assert_eq!(
        count(&hist, |k| matches!(k, EventKind::TimerCancelled { .. })),
        1
    );
    stop(w).await;
}

async fn changed_code_is_held_then_resumes(db: &TestDb) {
    let client = Client::new(&db.store);
    let w1 = worker(&db.store)
        .register(add_one)
        .register(evolving_v1)
        .start();
    client.start(evolving_v1, "evolving-1", ()).await.unwrap();
    eventually(LIMIT, "timer started", || async {
        history(&client, "evolving-1")
            .await
            .iter()
            .any(|e| matches!(e.kind, EventKind::TimerStarted { .. }))
    })
    .await;
    stop(w1).await;
    let before = history(&client, "evolving-1").await;

    // Changed code under the same name: replay disagrees with the history.
    let w2 = worker(&db.store)
        .register(add_one)
        .register(evolving_v2)
        .start();
    eventually(LIMIT, "workflow held", || async {
        client
            .describe("evolving-1")
            .await
            .unwrap()
            .held_reason
            .is_some()
    })
    .await;
    let d = client.describe("evolving-1").await.unwrap();
    assert_eq!(d.status, WorkflowStatus::Running, "held, not failed");
    let reason = d.held_reason.unwrap();
    assert!(reason.contains("no longer replays"), "{reason}");
    assert!(
        reason.contains("activity scheduled #1 of `add_one`"),
        "names the event: {reason}"
    );
    assert!(
        reason.contains("timer #1 started (1ms)"),
        "names the command: {reason}"
    );
    assert!(
        reason.contains("ctx.patched(\"<change-id>\")"),
        "names the fix: {reason}"
    );
    // While held, the client says so instead of waiting forever or recording a cancel no code
    // can act on.
    match client.handle::<String>("evolving-1").result().await {
        Err(Error::WorkflowHeld { reason, .. }) => assert!(reason.contains("no longer replays")),
        other => panic!("expected WorkflowHeld, got {other:?}"),
    }
    assert!(matches!(
        client.cancel("evolving-1").await,
        Err(Error::WorkflowHeld { .. })
    ));
    stop(w2).await;
    let after = history(&client, "evolving-1").await;
    assert_eq!(
        before,
        after[..before.len()],
        "nothing recorded was lost or changed"
    );

    // The fixed (original) code runs it to the end.
    let w3 = worker(&db.store)
        .register(add_one)
        .register(evolving_v1)
        .start();
    eventually(LIMIT, "no longer held", || async {
        client
            .describe("evolving-1")
            .await
            .unwrap()
            .held_reason
            .is_none()
    })
    .await;
    let r = within(
        LIMIT,
        "resumed",
        client.handle::<String>("evolving-1").result(),
    )
    .await;
    assert_eq!(r.unwrap(), "v1");
    assert_eq!(
        client.describe("evolving-1").await.unwrap().held_reason,
        None
    );
    stop(w3).await;
}

async fn changed_code_can_fail_instead(db: &TestDb) {
    let client = Client::new(&db.store);
    let w1 = worker(&db.store)
        .register(add_one)
        .register(evolving_v1)
        .start();
    client.start(evolving_v1, "evolving-2", ()).await.unwrap();
    eventually(LIMIT, "timer started", || async {
        history(&client, "evolving-2")
            .await
            .iter()
            .any(|e| matches!(e.kind, EventKind::TimerStarted { .. }))
    })
    .await;
    stop(w1).await;
    let mut o = quick_options();
    o.nondeterminism = NondeterminismPolicy::Fail;
    let w2 = Worker::new(&db.store)
        .options(o)
        .register(add_one)
        .register(evolving_v2)
        .start();
    match within(
        LIMIT,
        "failed",
        client.handle::<String>("evolving-2").result(),
    )
    .await
    {
        Err(Error::WorkflowFailed(WorkflowError::Nondeterminism(m))) => {
            assert!(m.contains("no longer replays"), "{m}")
        }
        other => panic!("expected a nondeterminism failure, got {other:?}"),
    }
    stop(w2).await;
}

async fn unknown_workflow_waits_for_a_worker_that_knows_it(db: &TestDb) {
    let client = Client::new(&db.store);
    // A client that knows the registry says so at once.
    let checked = Client::new(&db.store).with_registry(Registry::new().register(chain_wf));
    match checked
        .start_by_name("no_such_workflow", "unknown-0", json!(1))
        .await
    {
        Err(e @ Error::UnknownWorkflowType { .. }) => {
            let m = e.to_string();
            assert!(
                m.contains("no_such_workflow") && m.contains("chain_wf"),
                "{m}"
            );
        }
        other => panic!(
            "expected UnknownWorkflowType, got {:?}",
            other.map(|h| h.id().to_string())
        ),
    }

    // Without a registry the start is recorded and waits; nothing is lost.
    client
        .start_by_name("late_wf", "late-1", json!(41))
        .await
        .unwrap();
    let w1 = worker(&db.store)
        .register(add_one)
        .register(chain_wf)
        .start();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let d = client.describe("late-1").await.unwrap();
    assert_eq!(d.status, WorkflowStatus::Running);
    assert_eq!(
        d.history_length, 1,
        "a worker that does not know it leaves it alone"
    );
    let w2 = worker(&db.store)
        .register(add_one)
        .register(late_wf)
        .start();
    let r = within(LIMIT, "late", client.handle::<i64>("late-1").result()).await;
    assert_eq!(r.unwrap(), 42);
    stop(w1).await;
    stop(w2).await;
}

async fn duplicate_ids_and_bad_payloads(db: &TestDb) {
    let w = worker(&db.store)
        .register(add_one)
        .register(chain_wf)
        .start();
    let client = Client::new(&db.store);
    client.start(chain_wf, "dup", 1).await.unwrap();
    match client.start(chain_wf, "dup", 1).await {
        Err(e @ Error::DuplicateWorkflowId(_)) => assert!(e.to_string().contains("`dup`")),
        other => panic!(
            "expected a duplicate id error, got {:?}",
            other.map(|h| h.id().to_string())
        ),
    }
    assert!(matches!(
        client.start(chain_wf, "", 1).await,
        Err(Error::InvalidOption(_))
    ));

    // Malformed input by name: the workflow fails, and says which type it wanted.
    let h = client
        .start_by_name("chain_wf", "bad-input", json!({"not": "a number"}))
        .await
        .unwrap();
    match within(LIMIT, "bad input", h.result()).await {
        Err(Error::WorkflowFailed(e)) => {
            let m = e.to_string();
            assert!(m.contains("i64") && m.contains("chain_wf"), "{m}");
        }
        other => panic!("expected a payload failure, got {other:?}"),
    }
    // Typed result of the wrong type: a clear error naming the type, the workflow intact.
    match client.handle::<String>("dup").result().await {
        Err(e @ Error::Payload { .. }) => assert!(e.to_string().contains("String"), "{e}"),
        other => panic!("expected a payload error, got {other:?}"),
    }
    assert!(matches!(
        client.describe("nope").await,
        Err(Error::WorkflowNotFound(_))
    ));
    stop(w).await;
}

async fn activity_payload_mismatch_is_not_retried(db: &TestDb) {
    let w = worker(&db.store)
        .register(shape_string)
        .register(input_string)
        .register(payload_wf)
        .start();
    let client = Client::new(&db.store);
    let h = client.start(payload_wf, "payload", ()).await.unwrap();
    let (out, inp) = within(LIMIT, "payload", h.result()).await.unwrap();
    assert!(out.contains("does not deserialize as `i64`"), "{out}");
    assert!(
        inp.contains("does not deserialize as `alloc::string::String`"),
        "{inp}"
    );
    assert!(inp.contains("Some(1)"), "not retried: {inp}");
    stop(w).await;
}

async fn describe_list_and_history_json(db: &TestDb) {
    let w = worker(&db.store)
        .register(add_one)
        .register(chain_wf)
        .register(timer_wf)
        .start();
    let client = Client::new(&db.store);
    for i in 0..3 {
        let h = client
            .start(chain_wf, format!("list-chain-{i}"), 1)
            .await
            .unwrap();
        within(LIMIT, "chain", h.result()).await.unwrap();
    }
    client.start(timer_wf, "list-timer", 60_000).await.unwrap();
    let all = client.list(ListFilter::all()).await.unwrap();
    assert_eq!(all.len(), 4);
    let done = client
        .list(ListFilter::all().status(WorkflowStatus::Completed))
        .await
        .unwrap();
    assert_eq!(done.len(), 3);
    let timers = client
        .list(ListFilter::all().workflow_type("timer_wf"))
        .await
        .unwrap();
    assert_eq!(timers.len(), 1);
    assert_eq!(timers[0].status, WorkflowStatus::Running);
    assert_eq!(
        client.list(ListFilter::all().limit(2)).await.unwrap().len(),
        2
    );

    let json = client.history_json("list-chain-0").await.unwrap();
    let events = json.as_array().unwrap();
    assert_eq!(events[0]["event"], "workflow_started");
    assert_eq!(events[0]["seq"], 1);
    assert!(events
        .iter()
        .any(|e| e["event"] == "activity_completed" && e["result"] == 1));
    assert_eq!(events.last().unwrap()["event"], "workflow_task_completed");

    // Cancel the sleeping one: it ends cancelled at once, not after its minute.
    assert!(client.cancel("list-timer").await.unwrap());
    match within(
        LIMIT,
        "cancelled",
        client.handle::<u64>("list-timer").result(),
    )
    .await
    {
        Err(Error::WorkflowCancelled) => {}
        other => panic!("expected cancelled, got {other:?}"),
    }
    assert!(!client.cancel("list-timer").await.unwrap(), "already ended");
    stop(w).await;
}

async fn execution_timeout_fails_the_workflow(db: &TestDb) {
    let w = worker(&db.store).register(overdue_wf).start();
    let client = Client::new(&db.store);
    let h = client
        .start(overdue_wf, wid(db, "overdue"), ())
        .await
        .unwrap();
    match within(LIMIT, "overdue", h.result()).await {
        Err(Error::WorkflowFailed(e)) => assert!(e.to_string().contains("ExecutionTimeout"), "{e}"),
        other => panic!("expected an execution timeout, got {other:?}"),
    }
    stop(w).await;
}

async fn graceful_shutdown_finishes_running_attempts(db: &TestDb) {
    let client = Client::new(&db.store);
    let id = wid(db, "graceful");
    let w = worker(&db.store)
        .register(takes_a_while)
        .register(waits_for_wf)
        .start();
    client.start(waits_for_wf, id.clone(), 400).await.unwrap();
    eventually(LIMIT, "activity started", || async {
        !noted(&id).is_empty()
    })
    .await;
    stop(w).await;
    assert_eq!(
        noted(&id),
        vec!["started".to_string(), "finished".to_string()]
    );
    let hist = history(&client, &id).await;
    assert_eq!(
        count(&hist, |k| matches!(k, EventKind::ActivityCompleted { .. })),
        1,
        "the running attempt finished and was recorded before shutdown returned"
    );
    let w2 = worker(&db.store)
        .register(takes_a_while)
        .register(waits_for_wf)
        .start();
    assert_eq!(
        within(LIMIT, "result", client.handle::<u64>(&id).result())
            .await
            .unwrap(),
        400
    );
    assert_eq!(
        noted(&id).len(),
        2,
        "the completed activity did not run again"
    );
    stop(w2).await;
}

async fn a_late_attempt_is_fenced(db: &TestDb) {
    let w = worker(&db.store)
        .register(overtaken)
        .register(overtaken_wf)
        .start();
    let client = Client::new(&db.store);
    let id = wid(db, "overtaken");
    let h = client.start(overtaken_wf, id.clone(), ()).await.unwrap();
    assert_eq!(within(LIMIT, "overtaken", h.result()).await.unwrap(), 2);
    assert_eq!(noted(&id), vec!["attempt 1 returned late".to_string()]);
    let hist = history(&client, &id).await;
    let completed: Vec<_> = hist
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ActivityCompleted { result, .. } => Some(result.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        completed,
        vec![json!(2)],
        "only the current attempt's result is recorded"
    );
    assert_eq!(
        count(&hist, |k| matches!(k, EventKind::ActivityStarted { .. })),
        2
    );
    stop(w).await;
}

store_tests!(memory:
    chain_of_activities,
    retry_then_success_and_exhaustion,
    non_retryable_errors,
    activity_timeouts,
    replay_reproduces_stand_ins,
    join_and_select,
    changed_code_is_held_then_resumes,
    changed_code_can_fail_instead,
    unknown_workflow_waits_for_a_worker_that_knows_it,
    duplicate_ids_and_bad_payloads,
    activity_payload_mismatch_is_not_retried,
    describe_list_and_history_json,
    execution_timeout_fails_the_workflow,
    graceful_shutdown_finishes_running_attempts,
    a_late_attempt_is_fenced,
);

mod reopened {
    use super::*;
    store_tests!(durable_timer_survives_restart);
}
