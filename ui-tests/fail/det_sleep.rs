use duraflow::prelude::*;

#[workflow]
pub async fn sleeps(_ctx: WorkflowContext) -> Result<(), WorkflowError> {
    std::thread::sleep(Duration::from_millis(1));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), async {}).await;
    let _tick = tokio::time::interval(Duration::from_secs(1));
    Ok(())
}

fn main() {}
