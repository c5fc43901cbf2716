use duraflow::prelude::*;

#[signal]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Approve;

#[workflow(signals(Approve, Approve))]
pub async fn order(_ctx: WorkflowContext) -> Result<(), WorkflowError> {
    Ok(())
}

fn main() {}
