use duraflow::prelude::*;

#[activity]
pub async fn fetch(ctx: WorkflowContext, id: u64) -> Result<u64, ActivityError> {
    Ok(id)
}

#[workflow]
pub async fn order(ctx: ActivityContext, id: u64) -> Result<u64, WorkflowError> {
    Ok(id)
}

#[activity]
pub async fn by_reference(ctx: &ActivityContext, id: u64) -> Result<u64, ActivityError> {
    Ok(id)
}

fn main() {}
