use duraflow::prelude::*;

// A stand-in with the real crate's path: the check is syntactic.
mod futures {
    macro_rules! select {
        ($($t:tt)*) => {};
    }
    pub(crate) use select;
}

#[workflow]
pub async fn races(ctx: WorkflowContext) -> Result<(), WorkflowError> {
    tokio::select! {
        _ = ctx.sleep(Duration::from_secs(1)) => {}
        _ = ctx.sleep(Duration::from_secs(2)) => {}
    }
    futures::select! {
        _ = ctx.sleep(Duration::from_secs(1)) => {}
    }
    // Fine: polled in the order written.
    tokio::select! {
        biased;
        _ = ctx.sleep(Duration::from_secs(1)) => {}
        _ = ctx.sleep(Duration::from_secs(2)) => {}
    }
    Ok(())
}

#[workflow]
pub async fn inside_macros(ctx: WorkflowContext) -> Result<(), WorkflowError> {
    // Calls in the arguments of `join!`, `select!` and `format!` are checked too.
    let _ = join!(ctx.sleep(Duration::from_secs(1)), tokio::time::sleep(Duration::from_secs(1)));
    duraflow::select! {
        _ = ctx.sleep(Duration::from_secs(1)) => {}
        _ = async {} => { std::thread::sleep(Duration::from_secs(1)); }
    }
    let _s = format!("{:?}", std::time::SystemTime::now());
    Ok(())
}

fn main() {}
