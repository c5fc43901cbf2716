// A value read inside `ctx.side_effect(|| ..)` is recorded once and replayed: the check allows it.
use duraflow::prelude::*;

#[workflow]
pub async fn tokens(ctx: WorkflowContext) -> Result<(u64, u128), WorkflowError> {
    let started: u128 = ctx.side_effect(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    });
    let host: String = ctx.side_effect(|| std::env::var("HOSTNAME").unwrap_or_default());
    Ok((host.len() as u64, started))
}

fn main() {}
