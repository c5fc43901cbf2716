use duraflow::prelude::*;

#[activity(start_to_close_timeout = "30")]
pub async fn no_unit(x: i64) -> Result<i64, ActivityError> {
    Ok(x)
}

#[activity(schedule_to_close_timeout = "5 minutes")]
pub async fn bad_unit(x: i64) -> Result<i64, ActivityError> {
    Ok(x)
}

#[activity(schedule_to_start_timeout = 30)]
pub async fn integer(x: i64) -> Result<i64, ActivityError> {
    Ok(x)
}

#[activity(start_to_close_timeout = "0s")]
pub async fn zero(x: i64) -> Result<i64, ActivityError> {
    Ok(x)
}

#[workflow(execution_timeout = "1y")]
pub async fn bad_workflow_timeout(_ctx: WorkflowContext) -> Result<(), WorkflowError> {
    Ok(())
}

fn main() {}
