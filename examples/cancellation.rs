//! The seed scenario: a workflow starts a heartbeating activity, sleeps 3 s on a durable timer, and
//! cancels it. The activity hears the cancel through its heartbeat, cleans up, and ends cancelled; the
//! run then prints the activity's final state as the durable history recorded it.
//!
//! Run: `cargo run --example cancellation` (embedded SQLite store, WAL + synchronous=FULL). The
//! store file is kept, and its path printed, so you can look at the run afterwards:
//! `duraflow --db <that file> list`, `duraflow --db <that file> ui`. Give a path of your own with
//! `cargo run --example cancellation -- my.db`.

use duraflow::prelude::*;
use duraflow::{Client, EventKind, Store, Worker};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ComposeArgs {
    pub arg1: i64,
    pub arg2: i64,
}

/// Heartbeats every 500 ms until it is cancelled; cleans up and returns the cancellation.
#[activity(heartbeat_timeout = "30s")]
pub async fn cancellable_activity(
    ctx: ActivityContext,
    input: ComposeArgs,
) -> Result<(), ActivityError> {
    let _ = input;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        println!("Heartbeating cancel activity");
        if let Err(cancelled) = ctx.heartbeat(&"some details") {
            // Cleanup goes here, before returning the cancellation.
            println!("Activity cancelled");
            return Err(cancelled);
        }
    }
}

/// Adds the two numbers.
#[activity]
pub async fn run_activity(ctx: ActivityContext, input: ComposeArgs) -> Result<i64, ActivityError> {
    let _ = ctx;
    Ok(input.arg1 + input.arg2)
}

/// Starts the heartbeating activity, sleeps 3 s on a durable timer, cancels it, then runs
/// `run_activity`.
#[workflow]
pub async fn cancellation_workflow(
    ctx: WorkflowContext,
    input: ComposeArgs,
) -> Result<i64, WorkflowError> {
    let handle = ctx
        .activity(cancellable_activity, input.clone())
        .start_to_close_timeout(Duration::from_secs(300))
        .heartbeat_timeout(Duration::from_secs(30))
        .cancellation_type(CancellationType::WaitCancellationCompleted)
        .start();
    ctx.sleep(Duration::from_secs(3)).await?;
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
    let sum = ctx.activity(run_activity, input).await?;
    Ok(sum)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The store file: the first argument, else one in the temp directory. It is kept afterwards.
    let path = match std::env::args_os().nth(1) {
        Some(p) => std::path::PathBuf::from(p),
        None => std::env::temp_dir().join("duraflow-cancellation.db"),
    };
    let store = Store::sqlite(&path)?;
    println!("Embedded store: {} ({})", path.display(), store.kind());

    let worker = Worker::new(&store)
        .register(cancellable_activity)
        .register(run_activity)
        .register(cancellation_workflow)
        .start();
    let client = Client::new(&store);

    let handle = client
        .start(
            cancellation_workflow,
            // A new id on each run, so runs can share one store file.
            format!("cancellation-{}", run_stamp()),
            ComposeArgs { arg1: 1, arg2: 2 },
        )
        .await?;
    println!("Started workflow `{}`", handle.id());
    let sum = handle.result().await?;
    println!("Workflow completed: run_activity returned {sum}");

    println!("History:");
    let mut final_state = "unknown";
    for event in handle.history().await? {
        println!("  #{:<3} {}", event.seq, event.kind.name());
        match event.kind {
            EventKind::ActivityCancelled {
                activity_seq: 1, ..
            } => final_state = "cancelled",
            EventKind::ActivityCompleted {
                activity_seq: 1, ..
            } => final_state = "completed",
            EventKind::ActivityFailed {
                activity_seq: 1, ..
            } => final_state = "failed",
            _ => {}
        }
    }
    println!("Final state of cancellable_activity (from the history): {final_state}");

    worker.shutdown().await;
    drop(store);
    println!(
        "The store is kept at {}; look at the run with:",
        path.display()
    );
    println!(
        "  cargo run -p duraflow-cli -- --db {} list",
        path.display()
    );
    println!("  cargo run -p duraflow-cli -- --db {} ui", path.display());
    if final_state != "cancelled" {
        return Err(
            format!("expected the activity to end cancelled, it ended {final_state}").into(),
        );
    }
    Ok(())
}

/// Seconds since the epoch, for a workflow id that is new on each run.
fn run_stamp() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
