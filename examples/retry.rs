//! An activity that fails twice and then succeeds under its retry policy (backoff 200 ms, 400 ms).
//!
//! Run: `cargo run --example retry`

use duraflow::prelude::*;
use duraflow::{Client, EventKind, Store, Worker};

#[activity(retry(
    initial_interval = "200ms",
    backoff_coefficient = 2.0,
    maximum_attempts = 5
))]
async fn flaky_fetch(ctx: ActivityContext, url: String) -> Result<String, ActivityError> {
    let attempt = ctx.info().attempt;
    if attempt < 3 {
        println!("attempt {attempt}: {url} is unavailable");
        return Err(ActivityError::application("Unavailable", "try again later"));
    }
    println!("attempt {attempt}: fetched {url}");
    Ok(format!("contents of {url}"))
}

#[workflow]
async fn fetch(ctx: WorkflowContext, url: String) -> Result<String, WorkflowError> {
    Ok(ctx.activity(flaky_fetch, url).await?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("duraflow-retry-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store = Store::sqlite(dir.join("retry.db"))?;
    let worker = Worker::new(&store)
        .register(flaky_fetch)
        .register(fetch)
        .start();
    let client = Client::new(&store);
    let handle = client
        .start(
            fetch,
            "retry-example",
            "https://example.com/data".to_string(),
        )
        .await?;
    println!("result: {}", handle.result().await?);
    let attempts = handle
        .history()
        .await?
        .iter()
        .filter(|e| matches!(e.kind, EventKind::ActivityStarted { .. }))
        .count();
    println!("attempts recorded in the history: {attempts}");
    worker.shutdown().await;
    std::fs::remove_dir_all(dir)?;
    Ok(())
}
