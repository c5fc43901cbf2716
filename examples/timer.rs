//! A durable timer that survives a restart: the first worker stops while the workflow sleeps, a new
//! store handle and worker (as after a crash and restart) pick it up and finish it.
//!
//! Run: `cargo run --example timer`

use duraflow::prelude::*;
use duraflow::{Client, Store, Worker};

#[activity]
async fn send_reminder(who: String) -> Result<String, ActivityError> {
    Ok(format!("reminder sent to {who}"))
}

#[workflow]
async fn remind_later(ctx: WorkflowContext, who: String) -> Result<String, WorkflowError> {
    ctx.sleep(Duration::from_secs(2)).await?;
    Ok(ctx.activity(send_reminder, who).await?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("duraflow-timer-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("timer.db");

    {
        let store = Store::sqlite(&path)?;
        let worker = Worker::new(&store)
            .register(remind_later)
            .register(send_reminder)
            .start();
        Client::new(&store)
            .start(remind_later, "timer-example", "ada".to_string())
            .await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        println!("stopping the first worker while the workflow sleeps on its 2 s timer");
        worker.shutdown().await;
    }

    let store = Store::sqlite(&path)?;
    let worker = Worker::new(&store)
        .register(remind_later)
        .register(send_reminder)
        .start();
    let started = std::time::Instant::now();
    let result = Client::new(&store)
        .handle::<String>("timer-example")
        .result()
        .await?;
    println!(
        "a new worker finished it {:?} later: {result}",
        started.elapsed()
    );
    worker.shutdown().await;
    std::fs::remove_dir_all(dir)?;
    Ok(())
}
