use duraflow::prelude::*;

#[activity]
pub async fn add_one(x: i64) -> Result<i64, ActivityError> {
    let y: String = x + 1;
    Ok(y)
}

#[workflow]
pub async fn adder(ctx: WorkflowContext, x: i64) -> Result<i64, WorkflowError> {
    ctx.sleep(Duration::from_secs(1));
    let s: i64 = ctx.activity(add_one, x).await;
    Ok(s)
}

fn main() {}
