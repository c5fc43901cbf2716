use duraflow::prelude::*;

#[workflow]
pub async fn aliases(ctx: WorkflowContext) -> Result<(), WorkflowError> {
    // Imports and renames inside the body are resolved, also in groups.
    use std::thread::{self as th};
    use std::time::Instant as I;
    use std::time::{Duration as D, SystemTime as Wall};
    use tokio::time::{sleep, timeout as deadline};
    let _a = I::now();
    let _b = Wall::now();
    sleep(D::from_secs(1)).await;
    let _ = deadline(D::from_secs(1), ctx.sleep(D::from_secs(2))).await;
    th::sleep(D::from_millis(1));
    {
        use tokio::spawn as go;
        let _h = go(async {});
    }
    {
        // The block's own fn shadows the import: not flagged.
        async fn sleep(_d: D) {}
        sleep(D::from_secs(1)).await;
    }
    Ok(())
}

#[workflow]
pub async fn globs(_ctx: WorkflowContext) -> Result<(), WorkflowError> {
    use tokio::time::*;
    sleep(Duration::from_secs(1)).await;
    Ok(())
}

fn main() {}
