use duraflow::prelude::*;

pub struct NotSerde {
    pub id: u64,
}

#[activity]
pub async fn takes_it(input: NotSerde) -> Result<u64, ActivityError> {
    Ok(input.id)
}

#[activity]
pub async fn returns_it(id: u64) -> Result<NotSerde, ActivityError> {
    Ok(NotSerde { id })
}

#[workflow]
pub async fn several(_ctx: WorkflowContext, id: u64, input: NotSerde) -> Result<u64, WorkflowError> {
    Ok(id + input.id)
}

fn main() {}
