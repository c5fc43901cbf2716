use duraflow::prelude::*;

#[workflow]
pub async fn spawns(_ctx: WorkflowContext) -> Result<(), WorkflowError> {
    let _a = tokio::spawn(async {});
    let _b = std::thread::spawn(|| {});
    let _c = tokio::task::spawn_blocking(|| {});
    Ok(())
}

fn main() {}
