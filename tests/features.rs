//! Cases of Temporal's cross-SDK feature suite (temporalio/features), ported as our own tests and
//! named after their folders: `activity/retry_on_error`, `activity/heartbeating`,
//! `local_activity/retry_on_error`, `local_activity/non_retryable_error_in_options`,
//! `local_activity/non_retryable_error_from_activity`, `local_activity/backoff_with_persistent_timer`
//! (as it applies here), and `timer`. Each runs on `TestEnv` (a virtual clock: backoffs and timers
//! skip), and says what the feature's README states.

use duraflow::prelude::*;
use duraflow::testing::TestEnv;
use duraflow::{EventKind, HistoryEvent, RetryPolicy};
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(20);

/// An activity that always fails (retryable).
#[activity]
async fn always_fails(n: u32) -> Result<(), ActivityError> {
    Err(ActivityError::application(
        "Flaky",
        format!("attempt failed ({n})"),
    ))
}

/// Fails with an error type the caller's policy lists as non-retryable.
#[activity]
async fn fails_with_a_listed_type(n: u32) -> Result<(), ActivityError> {
    Err(ActivityError::application(
        "InvalidCard",
        format!("card {n} is invalid"),
    ))
}

/// Fails with a non-retryable error.
#[activity]
async fn fails_for_good(n: u32) -> Result<(), ActivityError> {
    Err(ActivityError::non_retryable(
        "Fatal",
        format!("nothing to retry ({n})"),
    ))
}

/// No backoff to speak of, 4 retries: 5 attempts in all.
fn five_attempts_no_backoff() -> RetryPolicy {
    RetryPolicy {
        initial_interval: Duration::from_millis(1),
        backoff_coefficient: 1.0,
        maximum_attempts: 5,
        ..RetryPolicy::default()
    }
}

/// What the workflow saw of its activity's failure: attempts, the last error's type.
type Seen = (u32, String);

fn seen(e: ActivityError) -> Seen {
    match e {
        ActivityError::Failed {
            attempts, cause, ..
        } => (attempts, cause.error_type().to_string()),
        other => (0, other.error_type().to_string()),
    }
}

#[workflow]
async fn retries_an_activity(ctx: WorkflowContext, local: bool) -> Result<Seen, WorkflowError> {
    let r = if local {
        ctx.local_activity(always_fails, 1)
            .retry_policy(five_attempts_no_backoff())
            .await
    } else {
        ctx.activity(always_fails, 1)
            .retry_policy(five_attempts_no_backoff())
            .await
    };
    Ok(seen(r.expect_err("it always fails")))
}

#[workflow]
async fn non_retryable_types(ctx: WorkflowContext) -> Result<(Seen, Seen), WorkflowError> {
    let mut policy = five_attempts_no_backoff();
    policy.non_retryable_error_types = vec!["InvalidCard".into()];
    let listed = ctx
        .local_activity(fails_with_a_listed_type, 1)
        .retry_policy(policy)
        .await
        .expect_err("fails");
    let thrown = ctx
        .local_activity(fails_for_good, 2)
        .retry_policy(five_attempts_no_backoff())
        .await
        .expect_err("fails");
    Ok((seen(listed), seen(thrown)))
}

async fn run<T: serde::de::DeserializeOwned>(
    env: &TestEnv,
    handle: duraflow::WorkflowHandle<T>,
) -> T {
    let _ = env;
    tokio::time::timeout(PATIENCE, handle.result())
        .await
        .expect("the workflow ends")
        .expect("the workflow succeeds")
}

fn started_attempts(h: &[HistoryEvent]) -> usize {
    h.iter()
        .filter(|e| matches!(e.kind, EventKind::ActivityStarted { .. }))
        .count()
}

/// `activity/retry_on_error`: an activity that always fails, with a retry policy that does not
/// back off and retries 4 times, runs exactly 5 attempts, then its error reaches the workflow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_retry_on_error() {
    let env = TestEnv::builder()
        .register(retries_an_activity)
        .start()
        .unwrap();
    let h = env
        .client()
        .start(retries_an_activity, "retry-on-error", false)
        .await
        .unwrap();
    assert_eq!(run(&env, h).await, (5, "Flaky".to_string()));
    let history = env.client().history("retry-on-error").await.unwrap();
    assert_eq!(started_attempts(&history), 5, "five attempts, no more");
    env.shutdown().await;
}

/// `local_activity/retry_on_error`: the same for a local activity (retried in process, recorded
/// once as a marker when it ends for good).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_activity_retry_on_error() {
    let attempts = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = attempts.clone();
    let env = TestEnv::builder()
        .register(retries_an_activity)
        .mock_activity(always_fails, move |n| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                Err(ActivityError::application(
                    "Flaky",
                    format!("attempt failed ({n})"),
                ))
            }
        })
        .start()
        .unwrap();
    let h = env
        .client()
        .start(retries_an_activity, "la-retry-on-error", true)
        .await
        .unwrap();
    assert_eq!(run(&env, h).await, (5, "Flaky".to_string()));
    assert_eq!(attempts.load(std::sync::atomic::Ordering::SeqCst), 5);
    env.shutdown().await;
}

/// `local_activity/non_retryable_error_in_options` and
/// `local_activity/non_retryable_error_from_activity`: a local activity is not retried when its
/// error's type is in the call's non-retryable list, nor when it fails with a non-retryable error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_activity_non_retryable_errors() {
    let env = TestEnv::builder()
        .register(non_retryable_types)
        .start()
        .unwrap();
    let h = env
        .client()
        .start(non_retryable_types, "la-non-retryable", ())
        .await
        .unwrap();
    let (listed, thrown) = run(&env, h).await;
    assert_eq!(
        listed,
        (1, "InvalidCard".to_string()),
        "listed in the options"
    );
    assert_eq!(thrown, (1, "Fatal".to_string()), "thrown as non-retryable");
    env.shutdown().await;
}

#[activity(retry(
    initial_interval = "10m",
    backoff_coefficient = 2.0,
    maximum_attempts = 3
))]
async fn slow_to_succeed(x: u32) -> Result<u32, ActivityError> {
    Ok(x)
}

#[workflow]
async fn local_with_long_backoff(ctx: WorkflowContext) -> Result<(u32, u64), WorkflowError> {
    let start = ctx.now();
    let v = ctx.local_activity(slow_to_succeed, 7).await?;
    let took = ctx
        .now()
        .duration_since(start)
        .unwrap_or_default()
        .as_secs();
    Ok((v, took))
}

/// `local_activity/backoff_with_persistent_timer`, as it applies here: a local activity whose
/// backoff is long still gets its later attempts after the backoff (10 and 20 minutes), and
/// nothing is recorded for the failed attempts. (Temporal switches to a server timer past a
/// threshold; here the workflow task stays leased while the worker waits, and a crash restarts
/// the local activity from attempt 1, as `tests/local_activity.rs` shows.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_activity_backoff_with_persistent_timer() {
    let env = TestEnv::builder()
        .register(local_with_long_backoff)
        .mock_activity_with_context(slow_to_succeed, |ctx, x| async move {
            if ctx.info().attempt < 3 {
                return Err(ActivityError::application("Busy", "later"));
            }
            Ok(x * ctx.info().attempt)
        })
        .start()
        .unwrap();
    let h = env
        .client()
        .start(local_with_long_backoff, "la-backoff", ())
        .await
        .unwrap();
    let (v, took) = run(&env, h).await;
    assert_eq!(v, 21, "the third attempt's answer");
    assert!(took >= 30 * 60, "10 + 20 minutes of backoff: {took} s");
    let history = env.client().history("la-backoff").await.unwrap();
    let markers = history
        .iter()
        .filter(|e| matches!(e.kind, EventKind::LocalActivityMarker { .. }))
        .count();
    assert_eq!(markers, 1, "one marker, for the attempt that ended it");
    env.shutdown().await;
}

#[activity(heartbeat_timeout = "10s")]
async fn heartbeats_in_a_tight_loop(ctx: ActivityContext, n: u32) -> Result<u32, ActivityError> {
    for i in 0..n {
        ctx.heartbeat(&i)?;
    }
    Ok(n)
}

#[workflow]
async fn heartbeating(ctx: WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
    Ok(ctx.activity(heartbeats_in_a_tight_loop, n).await?)
}

/// `activity/heartbeating`: an activity may heartbeat in a tight loop (the calls are throttled,
/// not each sent to the store) and, heartbeating, completes in its first attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_heartbeating() {
    let env = TestEnv::builder().register(heartbeating).start().unwrap();
    let h = env
        .client()
        .start(heartbeating, "heartbeating", 100_000)
        .await
        .unwrap();
    assert_eq!(run(&env, h).await, 100_000);
    let history = env.client().history("heartbeating").await.unwrap();
    assert_eq!(started_attempts(&history), 1);
    env.shutdown().await;
}

#[workflow]
async fn timers(ctx: WorkflowContext) -> Result<String, WorkflowError> {
    ctx.sleep(Duration::from_secs(3600)).await?;
    // A timer dropped before it fires is cancelled at once; its cancellation is recorded.
    let outcome = duraflow::select! {
        _ = ctx.sleep(Duration::from_secs(10 * 3600)) => "the long timer fired",
        _ = ctx.sleep(Duration::from_secs(60)) => "the short timer fired",
    };
    Ok(outcome.to_string())
}

/// `timer`: a timer is a command with its duration; when it elapses a "fired" event is recorded
/// and the workflow resumes; a timer cancelled in the workflow resolves at once and its
/// cancellation is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timer() {
    let env = TestEnv::builder().register(timers).start().unwrap();
    let start = env.now();
    let h = env.client().start(timers, "timers", ()).await.unwrap();
    assert_eq!(run(&env, h).await, "the short timer fired");
    let history = env.client().history("timers").await.unwrap();
    let kinds: Vec<String> = history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::TimerStarted { timer_seq, .. } => Some(format!("started #{timer_seq}")),
            EventKind::TimerFired { timer_seq } => Some(format!("fired #{timer_seq}")),
            EventKind::TimerCancelled { timer_seq } => Some(format!("cancelled #{timer_seq}")),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "started #1",
            "fired #1",
            "started #2",
            "started #3",
            "fired #3",
            "cancelled #2"
        ]
    );
    let first = history
        .iter()
        .find_map(|e| match e.kind {
            EventKind::TimerStarted { fire_at_ms, .. } => Some(fire_at_ms),
            _ => None,
        })
        .unwrap();
    let start_ms = start
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!(
        first - start_ms >= 3_600_000,
        "the timer carries its duration"
    );
    env.shutdown().await;
}
