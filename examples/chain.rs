//! A chain of activities: each step's output is the next step's input, every step recorded durably.
//!
//! Run: `cargo run --example chain`

use duraflow::prelude::*;
use duraflow::{Client, Store, Worker};

#[activity]
async fn add(x: i64, y: i64) -> Result<i64, ActivityError> {
    Ok(x + y)
}

#[activity]
async fn describe_number(n: i64) -> Result<String, ActivityError> {
    Ok(format!("the chain ended at {n}"))
}

#[workflow]
async fn chain(ctx: WorkflowContext, steps: i64) -> Result<String, WorkflowError> {
    let mut total = 0;
    for i in 1..=steps {
        total = ctx.activity(add, (total, i)).await?;
    }
    Ok(ctx.activity(describe_number, total).await?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile_dir("chain")?;
    let store = Store::sqlite(dir.join("chain.db"))?;
    let worker = Worker::new(&store).register_all().start();
    let client = Client::new(&store);
    let handle = client.start(chain, "chain-example", 10).await?;
    println!("{}", handle.result().await?);
    println!("{} history events recorded", handle.history().await?.len());
    worker.shutdown().await;
    std::fs::remove_dir_all(dir)?;
    Ok(())
}

fn tempfile_dir(name: &str) -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("duraflow-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
