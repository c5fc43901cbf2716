//! The snippets of API.md, as written.
#![allow(unused_variables)]
use duraflow::prelude::*;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ComposeArgs {
    pub arg1: i64,
    pub arg2: i64,
}

/// A plain activity: retried by the default policy, not cancellable (it sends no heartbeats).
#[activity]
pub async fn run_activity(ctx: ActivityContext, input: ComposeArgs) -> Result<i64, ActivityError> {
    Ok(input.arg1 + input.arg2)
}

/// A heartbeating activity: it can be cancelled, and it can resume from its last heartbeat.
#[activity(heartbeat_timeout = "30s", start_to_close_timeout = "5m")]
pub async fn cancellable_activity(ctx: ActivityContext, input: ComposeArgs) -> Result<(), ActivityError> {
    let mut done: u64 = ctx.heartbeat_details().unwrap_or(0); // progress of an earlier attempt
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        done += 1;
        ctx.heartbeat(&done)?; // Err(ActivityError::Cancelled { .. }) once a cancel has reached it
    }
}

#[workflow]
pub async fn greeting_workflow(ctx: WorkflowContext, input: ComposeArgs) -> Result<i64, WorkflowError> {
    let handle = ctx
        .activity(cancellable_activity, input.clone())
        .start_to_close_timeout(Duration::from_secs(300))
        .heartbeat_timeout(Duration::from_secs(30))
        .start(); // ActivityHandle: a Future with .cancel()
    ctx.sleep(Duration::from_secs(3)).await?; // durable timer
    handle.cancel();
    let sum = ctx.activity(run_activity, input).await?; // awaiting the call executes it
    Ok(sum)
}

fn main() {
    let registry = Registry::new()
        .register(run_activity)
        .register(cancellable_activity)
        .register(greeting_workflow);
    let json = registry.to_json();
    assert_eq!(json["workflows"][0]["name"], "greeting_workflow");
    assert_eq!(json["activities"].as_array().map(Vec::len), Some(2));
    let all = Registry::all();
    assert!(all.workflow_names().contains(&"greeting_workflow".to_string()));
}
