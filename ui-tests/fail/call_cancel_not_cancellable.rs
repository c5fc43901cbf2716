use duraflow::prelude::*;

#[activity]
pub async fn no_heartbeats(x: i64) -> Result<i64, ActivityError> {
    Ok(x)
}

#[workflow]
pub async fn cancels(ctx: WorkflowContext) -> Result<(), WorkflowError> {
    let handle = ctx.activity(no_heartbeats, 1).start();
    handle.cancel();
    Ok(())
}

fn main() {}
