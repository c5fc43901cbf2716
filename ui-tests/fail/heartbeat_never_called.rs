use duraflow::prelude::*;

#[activity(heartbeat_timeout = "30s")]
pub async fn forgets(ctx: ActivityContext, n: u64) -> Result<u64, ActivityError> {
    let _ = ctx.info();
    Ok(n)
}

#[activity(heartbeat_timeout = "30s")]
pub async fn no_context(n: u64) -> Result<u64, ActivityError> {
    Ok(n)
}

fn main() {}
