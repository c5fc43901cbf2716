use duraflow::prelude::*;

#[signal]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Approve;

#[signal]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Reject;

#[query(output = u32)]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Count;

#[update(output = u32)]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Bump;

#[workflow(signals(Approve))]
pub async fn order(_ctx: WorkflowContext) -> Result<(), WorkflowError> {
    Ok(())
}

async fn send(client: Client) -> Result<(), duraflow::Error> {
    client.signal(order, "o-1", Reject).await?;
    client.query(order, "o-1", Count).await?;
    client.update(order, "o-1", Bump).await?;
    Ok(())
}

fn main() {}
