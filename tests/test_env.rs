//! `duraflow::testing::TestEnv`: a workflow with a 30-day timer, a 3-retry backoff and a
//! heartbeat timeout runs in a blink on the virtual clock, with its activities mocked; time moves
//! by hand with `advance` / `sleep`.

use duraflow::prelude::*;
use duraflow::testing::TestEnv;
use duraflow::EventKind;
use std::time::{Instant, UNIX_EPOCH};

const DAY: u64 = 24 * 3600;

#[activity(retry(
    initial_interval = "1m",
    backoff_coefficient = 2.0,
    maximum_attempts = 5
))]
async fn charge_card(cents: u64) -> Result<String, ActivityError> {
    Err(ActivityError::application(
        "NoNetwork",
        format!("the real card service is not reachable in tests ({cents})"),
    ))
}

#[activity(
    heartbeat_timeout = "10m",
    start_to_close_timeout = "1d",
    retry(initial_interval = "1s", maximum_attempts = 3)
)]
async fn export_rows(ctx: ActivityContext, month: u32) -> Result<u64, ActivityError> {
    ctx.heartbeat(&month)?;
    Ok(0)
}

/// Waits 30 days, charges (retried with backoff), exports (one attempt hangs past its heartbeat
/// timeout), and says how long it took on the workflow's clock.
#[workflow]
async fn monthly_billing(
    ctx: WorkflowContext,
    cents: u64,
) -> Result<(String, u64, u64), WorkflowError> {
    let start = ctx.now();
    ctx.sleep(Duration::from_secs(30 * DAY)).await?;
    let receipt = ctx.activity(charge_card, cents).await?;
    let rows = ctx.activity(export_rows, 1).await?;
    let took = ctx
        .now()
        .duration_since(start)
        .unwrap_or_default()
        .as_secs();
    Ok((receipt, rows, took))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_days_three_retries_and_a_heartbeat_timeout_run_fast() {
    let wall = Instant::now();
    let env = TestEnv::builder()
        .register(monthly_billing)
        // Fails three times, then succeeds: three backoffs of 1, 2 and 4 minutes.
        .mock_activity_with_context(charge_card, |ctx, cents| async move {
            let attempt = ctx.info().attempt;
            if attempt <= 3 {
                return Err(ActivityError::application("Declined", "try again"));
            }
            Ok(format!("charged {cents} on attempt {attempt}"))
        })
        // The first attempt heartbeats once, then hangs until its heartbeat timeout fences it.
        .mock_activity_with_context(export_rows, |ctx, month| async move {
            if ctx.info().attempt == 1 {
                ctx.heartbeat(&month)?;
                ctx.cancelled().await;
                return Err(ActivityError::cancelled());
            }
            Ok(42)
        })
        .start()
        .unwrap();
    let client = env.client().clone();
    let started = env.now();
    let handle = client
        .start(monthly_billing, "billing-1", 1_999)
        .await
        .unwrap();

    // The hanging attempt keeps the worker busy, so time does not skip: move it by hand, once its
    // heartbeat is stored.
    let hanging = async {
        loop {
            let h = client.history("billing-1").await.unwrap();
            let export_started = h.iter().any(|e| {
                matches!(
                    &e.kind,
                    EventKind::ActivityStarted {
                        activity_seq: 3,
                        attempt: 1,
                        ..
                    }
                )
            });
            // Its heartbeat stored too (a heartbeat stored after the move would extend its
            // deadline past it).
            let heartbeat_stored = client
                .describe("billing-1")
                .await
                .unwrap()
                .pending_activities
                .iter()
                .any(|a| a.heartbeat_details.is_some());
            if export_started && heartbeat_stored {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), hanging)
        .await
        .expect("the export's first attempt starts");
    env.advance(Duration::from_secs(11 * 60));

    let (receipt, rows, took) = tokio::time::timeout(Duration::from_secs(20), handle.result())
        .await
        .expect("the workflow ends")
        .unwrap();
    assert_eq!(receipt, "charged 1999 on attempt 4");
    assert_eq!(rows, 42);
    // 30 days, 1 + 2 + 4 minutes of backoff, 11 minutes moved by hand, 1 s of backoff.
    let at_least = 30 * DAY + 7 * 60 + 11 * 60;
    assert!(took >= at_least, "the workflow's clock moved {took} s");
    let virtual_elapsed = env.now().duration_since(started).unwrap().as_secs();
    assert!(virtual_elapsed >= at_least, "{virtual_elapsed}");

    let h = client.history("billing-1").await.unwrap();
    let attempts = |seq: u64| {
        h.iter()
            .filter(|e| matches!(&e.kind, EventKind::ActivityStarted { activity_seq, .. } if *activity_seq == seq))
            .count()
    };
    assert_eq!(attempts(2), 4, "charge: three failures and a success");
    assert_eq!(
        attempts(3),
        2,
        "export: the timed-out attempt and its retry"
    );
    // The timer fired 30 days (virtually) after it was started.
    let fire = h
        .iter()
        .find_map(|e| match e.kind {
            EventKind::TimerStarted { fire_at_ms, .. } => Some(fire_at_ms),
            _ => None,
        })
        .unwrap();
    let start_ms = started.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    assert!(fire - start_ms >= (30 * DAY * 1000) as i64);
    env.shutdown().await;
    println!(
        "30 days, 3 retries and a heartbeat timeout ran in {:?} of wall time",
        wall.elapsed()
    );
}

#[workflow]
async fn naps(ctx: WorkflowContext) -> Result<Vec<u64>, WorkflowError> {
    let start = ctx.now();
    let mut at = Vec::new();
    for _ in 0..3 {
        ctx.sleep(Duration::from_secs(3600)).await?;
        at.push(
            ctx.now()
                .duration_since(start)
                .unwrap_or_default()
                .as_secs(),
        );
    }
    Ok(at)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clock_moves_by_hand_and_ctx_now_follows_it() {
    let env = TestEnv::builder()
        .register(naps)
        .start_at(1_000_000)
        .start()
        .unwrap();
    assert_eq!(
        env.now().duration_since(UNIX_EPOCH).unwrap(),
        Duration::from_millis(1_000_000)
    );
    env.sleep(Duration::from_secs(60)).await;
    assert_eq!(
        env.now().duration_since(UNIX_EPOCH).unwrap(),
        Duration::from_millis(1_060_000),
        "nothing ran, so nothing skipped past the hand-moved time"
    );
    let h = env.client().start(naps, "naps", ()).await.unwrap();
    let at = tokio::time::timeout(Duration::from_secs(20), h.result())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        at,
        vec![3600, 7200, 10800],
        "each hour, on the virtual clock"
    );
    env.shutdown().await;
}

#[activity(retry(
    initial_interval = "1h",
    backoff_coefficient = 2.0,
    maximum_attempts = 4
))]
async fn flaky_lookup(key: String) -> Result<String, ActivityError> {
    Err(ActivityError::application("NoNetwork", key))
}

/// A local activity retried in process, with hours of backoff.
#[workflow]
async fn looks_up_locally(
    ctx: WorkflowContext,
    key: String,
) -> Result<(String, u64), WorkflowError> {
    let start = ctx.now();
    let value = ctx.local_activity(flaky_lookup, key).await?;
    let took = ctx
        .now()
        .duration_since(start)
        .unwrap_or_default()
        .as_secs();
    Ok((value, took))
}

/// Time skips while a local activity waits for its retry (1 h, 2 h, 4 h of backoff), though its
/// workflow task stays leased to the worker all along: the lease is extended as the clock moves,
/// and nothing replays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_skips_through_a_local_activity_s_backoff() {
    let wall = Instant::now();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = calls.clone();
    let env = TestEnv::builder()
        .register(looks_up_locally)
        .mock_activity_with_context(flaky_lookup, move |ctx, key| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                match ctx.info().attempt {
                    n if n < 4 => Err(ActivityError::application("Busy", format!("attempt {n}"))),
                    n => Ok(format!("{key} found on attempt {n}")),
                }
            }
        })
        .start()
        .unwrap();
    let h = env
        .client()
        .start(looks_up_locally, "lookup-1", "k".to_string())
        .await
        .unwrap();
    let (value, took) = tokio::time::timeout(Duration::from_secs(20), h.result())
        .await
        .expect("the backoff is skipped, not waited for")
        .unwrap();
    assert_eq!(value, "k found on attempt 4");
    assert!(
        took >= 7 * 3600,
        "1 + 2 + 4 hours of backoff, virtually: {took} s"
    );
    assert!(took < 8 * 3600, "and not much more: {took} s");
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst),
        4,
        "four attempts, none started again"
    );
    env.shutdown().await;
    println!(
        "a local activity's 7 hours of backoff ran in {:?} of wall time",
        wall.elapsed()
    );
}

#[activity(heartbeat_timeout = "10m", start_to_close_timeout = "1d")]
async fn long_export(ctx: ActivityContext, parts: u32) -> Result<u32, ActivityError> {
    for p in 0..parts {
        ctx.heartbeat(&p)?;
    }
    Ok(parts)
}

#[workflow]
async fn exports(ctx: WorkflowContext, parts: u32) -> Result<u32, WorkflowError> {
    Ok(ctx.activity(long_export, parts).await?)
}

/// Heartbeats follow the virtual clock: an attempt that heartbeats every 9 virtual minutes for
/// over an hour and a half lives through its 10-minute heartbeat timeout (each heartbeat is
/// stored: the throttle of 8 minutes, 0.8 x the timeout, runs on the virtual clock too); once it
/// stops heartbeating, it times out 10 virtual minutes later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_and_their_timeout_follow_the_virtual_clock() {
    let (beat_tx, beat_rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
    let beat_rx = std::sync::Arc::new(tokio::sync::Mutex::new(beat_rx));
    let env = TestEnv::builder()
        .register(exports)
        .mock_activity_with_context(long_export, move |ctx, _parts| {
            let beat_rx = beat_rx.clone();
            async move {
                if ctx.info().attempt > 1 {
                    return Ok(ctx.info().attempt);
                }
                // Heartbeats when the test says; hangs when it stops saying, until the heartbeat
                // timeout fences it off.
                let mut rx = beat_rx.lock().await;
                loop {
                    tokio::select! {
                        n = rx.recv() => ctx.heartbeat(&n)?,
                        _ = ctx.cancelled() => break,
                    }
                }
                ctx.cancelled().await;
                Err(ActivityError::cancelled())
            }
        })
        .start()
        .unwrap();
    let client = env.client().clone();
    let h = client.start(exports, "export-1", 12).await.unwrap();
    let stored = |n: u32| {
        let client = client.clone();
        async move {
            loop {
                let d = client.describe("export-1").await.unwrap();
                if d.pending_activities
                    .first()
                    .and_then(|a| a.heartbeat_details.clone())
                    == Some(n.into())
                {
                    return d.pending_activities[0].attempt;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    for n in 0..12u32 {
        beat_tx.send(n).unwrap();
        let attempt = tokio::time::timeout(Duration::from_secs(20), stored(n))
            .await
            .unwrap_or_else(|_| panic!("heartbeat {n} is stored"));
        assert_eq!(
            attempt,
            1,
            "still the first attempt after {} virtual minutes",
            n * 9
        );
        env.advance(Duration::from_secs(9 * 60));
    }
    // It stops heartbeating: 10 minutes later it has timed out, and the retry returns 2.
    env.advance(Duration::from_secs(11 * 60));
    let out = tokio::time::timeout(Duration::from_secs(20), h.result())
        .await
        .expect("the silent attempt times out on the virtual clock")
        .unwrap();
    assert_eq!(out, 2, "the second attempt's answer");
    let history = client.history("export-1").await.unwrap();
    assert!(history
        .iter()
        .any(|e| matches!(&e.kind, EventKind::ActivityStarted { attempt: 2, .. })));
    env.shutdown().await;
}

static RELEASE_JOB: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Hangs until the test lets it go.
#[activity(start_to_close_timeout = "60d")]
async fn long_job(x: u32) -> Result<u32, ActivityError> {
    RELEASE_JOB.notified().await;
    Ok(x + 1)
}

#[workflow]
async fn waits_on_a_job(ctx: WorkflowContext, x: u32) -> Result<u32, WorkflowError> {
    Ok(ctx.activity(long_job, x).await?)
}

/// A 30-day jump of the virtual clock, then 300 jumps of twice the liveness lease, while a
/// second worker (judged by its liveness lease alone, as one on another machine) runs an attempt:
/// each jump leaves its lease expired until it renews it, and `env.sleep` returns only once it
/// has, so the next jump never finds it unrenewed. It is never judged lost and its attempt is not
/// handed on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_worker_is_not_declared_lost_across_a_30_day_jump() {
    // The environment's worker runs the workflow alone; the job runs on the second worker.
    let env = TestEnv::builder()
        .registry(Registry::new().register_alone(waits_on_a_job))
        .start()
        .unwrap();
    let job_worker = duraflow::__private::worker_without_process_identity(
        duraflow::Worker::new(env.store()).register(long_job),
    )
    .start();
    let client = env.client().clone();
    let job = client.start(waits_on_a_job, "job", 41).await.unwrap();
    let started = async {
        loop {
            let h = client.history("job").await.unwrap();
            if h.iter()
                .any(|e| matches!(e.kind, EventKind::ActivityStarted { .. }))
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), started)
        .await
        .expect("the job starts on the second worker");
    let before = env.now();
    env.sleep(Duration::from_secs(30 * DAY)).await;
    // 300 more jumps of twice the lease: each `sleep` takes some real time too, so the judge
    // (which also looks every half second of real time) looks many times.
    for _ in 0..300 {
        env.sleep(Duration::from_secs(10)).await;
    }
    assert!(env.now().duration_since(before).unwrap() >= Duration::from_secs(30 * DAY + 3000));
    RELEASE_JOB.notify_one();
    let Ok(out) = tokio::time::timeout(Duration::from_secs(20), job.result()).await else {
        let h = client.history("job").await.unwrap();
        panic!("the job did not end: {h:#?}");
    };
    assert_eq!(out.unwrap(), 42);
    let history = client.history("job").await.unwrap();
    let attempts = history
        .iter()
        .filter(|e| matches!(e.kind, EventKind::ActivityStarted { .. }))
        .count();
    assert_eq!(
        attempts, 1,
        "the live worker's attempt was never handed on: {history:#?}"
    );
    job_worker.shutdown().await;
    env.shutdown().await;
}
