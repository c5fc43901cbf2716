use duraflow::prelude::*;

#[activity(heartbeat_timout = "30s")]
pub async fn typo(x: i64) -> Result<i64, ActivityError> {
    Ok(x)
}

#[activity(colour = "blue")]
pub async fn unknown(x: i64) -> Result<i64, ActivityError> {
    Ok(x)
}

#[workflow(heartbeat_timeout = "30s")]
pub async fn activity_option_on_workflow(_ctx: WorkflowContext) -> Result<(), WorkflowError> {
    Ok(())
}

#[activity(retry(maximum_attempt = 5))]
pub async fn retry_typo(x: i64) -> Result<i64, ActivityError> {
    Ok(x)
}

fn main() {}
