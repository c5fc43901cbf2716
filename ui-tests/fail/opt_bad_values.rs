use duraflow::prelude::*;

#[activity(name = 5, task_queue = "")]
pub async fn bad_strings(x: i64) -> Result<i64, ActivityError> {
    Ok(x)
}

#[activity(retry(backoff_coefficient = 0.5, maximum_attempts = -1))]
pub async fn bad_retry_numbers(x: i64) -> Result<i64, ActivityError> {
    Ok(x)
}

#[activity(retry(initial_interval = "10s", maximum_interval = "5s"))]
pub async fn max_below_initial(x: i64) -> Result<i64, ActivityError> {
    Ok(x)
}

#[activity(retry(non_retryable = [InvalidInput]), heartbeat_timeout)]
pub async fn bad_list_and_missing_value(ctx: ActivityContext, x: i64) -> Result<i64, ActivityError> {
    ctx.heartbeat(&x)?;
    Ok(x)
}

#[activity(retry = 3)]
pub async fn retry_without_parens(x: i64) -> Result<i64, ActivityError> {
    Ok(x)
}

fn main() {}
