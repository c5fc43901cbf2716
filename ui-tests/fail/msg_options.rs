use duraflow::prelude::*;

#[signal(nmae = "approve")]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Approve;

#[signal(output = u32)]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Reject;

#[query]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Count;

#[update(output = u32, name = "a", name = "b")]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Bump;

#[workflow(signal(Approve))]
pub async fn order(_ctx: WorkflowContext) -> Result<(), WorkflowError> {
    Ok(())
}

#[signal]
pub fn not_a_type() {}

fn main() {}
