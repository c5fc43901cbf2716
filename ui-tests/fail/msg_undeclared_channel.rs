use duraflow::prelude::*;

#[signal]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Approve;

#[signal]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Reject;

#[workflow(signals(Approve))]
pub async fn order(ctx: WorkflowContext) -> Result<(), WorkflowError> {
    let mut rejections = ctx.signal_channel::<Reject>();
    rejections.recv().await?;
    Ok(())
}

fn main() {}
