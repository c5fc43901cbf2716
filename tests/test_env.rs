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

    // The hanging attempt keeps the worker busy, so time does not skip: move it by hand.
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
            if export_started {
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
