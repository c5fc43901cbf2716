use duraflow::prelude::*;

// A stand-in with the real crate's path: the check is syntactic.
mod futures {
    macro_rules! select {
        ($($t:tt)*) => {};
    }
    pub(crate) use select;
}

#[workflow]
pub async fn imported_select(ctx: WorkflowContext) -> Result<(), WorkflowError> {
    use tokio::select;
    select! {
        _ = ctx.sleep(Duration::from_secs(1)) => {}
        _ = ctx.sleep(Duration::from_secs(2)) => {}
    }
    // Fine: polled in the order written.
    select! {
        biased;
        _ = ctx.sleep(Duration::from_secs(1)) => {}
        _ = ctx.sleep(Duration::from_secs(2)) => {}
    }
    Ok(())
}

#[workflow]
pub async fn renamed_select(ctx: WorkflowContext) -> Result<(), WorkflowError> {
    use futures::select as pick;
    use tokio::select as race;
    race! {
        _ = ctx.sleep(Duration::from_secs(1)) => {}
        _ = ctx.sleep(Duration::from_secs(2)) => {}
    }
    pick! {
        _ = ctx.sleep(Duration::from_secs(1)) => {}
    }
    Ok(())
}

fn main() {}
