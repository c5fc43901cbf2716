//! Every option of `#[activity]`, and what it turns into.
use duraflow::prelude::*;
use duraflow::{ActivityDefinition, Cancellable, NotCancellable};

#[activity(
    name = "charge-card",
    start_to_close_timeout = "1m30s",
    schedule_to_close_timeout = "1h",
    schedule_to_start_timeout = "250ms",
    heartbeat_timeout = "30s",
    retry(
        initial_interval = "2s",
        backoff_coefficient = 1.5,
        maximum_interval = "1m",
        maximum_attempts = 5,
        non_retryable = ["InvalidInput", "Declined"],
    ),
    task_queue = "payments",
)]
pub async fn charge(ctx: ActivityContext, cents: u64) -> Result<u64, ActivityError> {
    ctx.heartbeat(&cents)?;
    Ok(cents)
}

/// Other forms: an integer coefficient, unlimited attempts, one error type as a plain string, `1d`.
#[activity(
    retry(backoff_coefficient = 2, maximum_attempts = 0, non_retryable = "Fatal"),
    start_to_close_timeout = "1d"
)]
pub async fn other_forms(x: u64) -> Result<u64, ActivityError> {
    Ok(x)
}

/// `retry()` with nothing in it keeps the defaults.
#[activity(retry())]
pub async fn defaults(x: u64) -> Result<u64, ActivityError> {
    Ok(x)
}

fn cancellable<A: ActivityDefinition<Cancel = Cancellable>>(_: A) {}
fn not_cancellable<A: ActivityDefinition<Cancel = NotCancellable>>(_: A) {}

#[workflow]
pub async fn cancels(ctx: WorkflowContext) -> Result<(), WorkflowError> {
    // Declares a heartbeat timeout: its handle can be cancelled.
    let handle = ctx.activity(charge, 100).start();
    handle.cancel();
    // Does not, but the call sets one, or runs it locally.
    let handle = ctx
        .activity(defaults, 1)
        .heartbeat_timeout(Duration::from_secs(5))
        .start();
    handle.cancel();
    let handle = ctx.local_activity(defaults, 1).start();
    handle.cancel();
    Ok(())
}

fn main() {
    cancellable(charge);
    not_cancellable(defaults);

    let o = charge.options();
    assert_eq!(charge.name(), "charge-card");
    assert_eq!(o.start_to_close_timeout, Some(Duration::from_secs(90)));
    assert_eq!(o.schedule_to_close_timeout, Some(Duration::from_secs(3600)));
    assert_eq!(o.schedule_to_start_timeout, Some(Duration::from_millis(250)));
    assert_eq!(o.heartbeat_timeout, Some(Duration::from_secs(30)));
    assert_eq!(o.task_queue.as_deref(), Some("payments"));
    let r = &o.retry_policy;
    assert_eq!(r.initial_interval, Duration::from_secs(2));
    assert_eq!(r.backoff_coefficient, 1.5);
    assert_eq!(r.maximum_interval, Some(Duration::from_secs(60)));
    assert_eq!(r.maximum_attempts, 5);
    assert_eq!(r.non_retryable_error_types, vec!["InvalidInput", "Declined"]);

    let o = other_forms.options();
    assert_eq!(o.retry_policy.backoff_coefficient, 2.0);
    assert_eq!(o.retry_policy.maximum_attempts, 0);
    assert_eq!(o.retry_policy.non_retryable_error_types, vec!["Fatal"]);
    assert_eq!(o.start_to_close_timeout, Some(Duration::from_secs(86_400)));

    assert_eq!(defaults.options().retry_policy, RetryPolicy::default());

    // The metadata serializes to JSON: name, kind, options, type names.
    let json = Registry::new().register(charge).to_json();
    let meta = &json["activities"][0];
    assert_eq!(meta["name"], "charge-card");
    assert_eq!(meta["kind"], "activity");
    assert_eq!(meta["input_type"], "u64");
    assert_eq!(meta["output_type"], "u64");
    assert_eq!(meta["cancellable"], true);
    assert_eq!(meta["options"]["heartbeat_timeout"], 30_000);
    assert_eq!(meta["options"]["task_queue"], "payments");
    assert_eq!(meta["options"]["retry_policy"]["maximum_attempts"], 5);
}
