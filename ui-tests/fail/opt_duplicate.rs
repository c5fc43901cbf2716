use duraflow::prelude::*;

#[activity(start_to_close_timeout = "30s", name = "a", start_to_close_timeout = "1m")]
pub async fn twice(x: i64) -> Result<i64, ActivityError> {
    Ok(x)
}

#[activity(retry(maximum_attempts = 3, maximum_attempts = 4))]
pub async fn twice_in_retry(x: i64) -> Result<i64, ActivityError> {
    Ok(x)
}

#[workflow(task_queue = "a", task_queue = "b")]
pub async fn twice_workflow(_ctx: WorkflowContext) -> Result<(), WorkflowError> {
    Ok(())
}

fn main() {}
