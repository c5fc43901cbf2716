use duraflow::prelude::*;

#[activity]
pub async fn add(a: i64, b: i64) -> Result<i64, ActivityError> {
    Ok(a + b)
}

#[activity]
pub async fn shout(text: String) -> Result<String, ActivityError> {
    Ok(text.to_uppercase())
}

#[workflow]
pub async fn calls(ctx: WorkflowContext) -> Result<(), WorkflowError> {
    let _sum: i64 = ctx.activity(add, 1).await?;
    let _loud: String = ctx.activity(shout, "hi").await?;
    let _wrong_output: bool = ctx.activity(add, (1, 2)).await?;
    Ok(())
}

fn main() {}
