//! The seed scenario of `examples/cancellation.rs`, for the CLI's and the UI's tests: a heartbeating
//! activity that the workflow cancels after a durable sleep, then a second activity.

use duraflow::prelude::*;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ComposeArgs {
    pub arg1: i64,
    pub arg2: i64,
}

/// Heartbeats every 500 ms (details `"some details"`) until it is cancelled.
#[activity(heartbeat_timeout = "30s")]
pub async fn cancellable_activity(
    ctx: ActivityContext,
    input: ComposeArgs,
) -> Result<(), ActivityError> {
    let _ = input;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        ctx.heartbeat(&"some details")?;
    }
}

/// Adds the two numbers.
#[activity]
pub async fn run_activity(input: ComposeArgs) -> Result<i64, ActivityError> {
    Ok(input.arg1 + input.arg2)
}

/// Starts the heartbeating activity, sleeps 1.6 s (three heartbeats), cancels it, waits for its
/// cancellation, then runs `run_activity`.
#[workflow]
pub async fn cancellation_workflow(
    ctx: WorkflowContext,
    input: ComposeArgs,
) -> Result<i64, WorkflowError> {
    let handle = ctx
        .activity(cancellable_activity, input.clone())
        .cancellation_type(CancellationType::WaitCancellationCompleted)
        .start();
    ctx.sleep(Duration::from_millis(1600)).await?;
    handle.cancel();
    match handle.await {
        Err(e) if e.is_cancelled() => {}
        other => {
            return Err(WorkflowError::application(
                "Unexpected",
                format!("the activity was expected to end cancelled, got {other:?}"),
            ))
        }
    }
    Ok(ctx.activity(run_activity, input).await?)
}

/// Returns its input: the XSS test's payload comes back as the result.
#[workflow]
pub async fn echo_workflow(ctx: WorkflowContext, input: String) -> Result<String, WorkflowError> {
    let _ = ctx;
    Ok(input)
}

/// A store with the seed run (`cancellation-seed`, completed, its activity cancelled) and an echo
/// run, served by a worker that is shut down again.
pub async fn seed(store: &duraflow::Store) {
    let worker = duraflow::Worker::new(store)
        .register(cancellable_activity)
        .register(run_activity)
        .register(cancellation_workflow)
        .register(echo_workflow)
        .start();
    let client = duraflow::Client::new(store);
    let run = client
        .start(
            cancellation_workflow,
            "cancellation-seed",
            ComposeArgs { arg1: 1, arg2: 2 },
        )
        .await
        .expect("start the seed workflow");
    let echo = client
        .start(echo_workflow, "echo-1", "hello".to_string())
        .await
        .expect("start echo");
    assert_eq!(run.result().await.expect("seed result"), 3);
    assert_eq!(echo.result().await.expect("echo result"), "hello");
    worker.shutdown().await;
}
