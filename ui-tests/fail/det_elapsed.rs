use duraflow::prelude::*;

#[workflow]
pub async fn elapsed(ctx: WorkflowContext) -> Result<(), WorkflowError> {
    // `.elapsed()` reads the wall clock, whatever it is called on.
    let started = ctx.now();
    ctx.sleep(Duration::from_secs(1)).await?;
    let _took = started.elapsed();
    let _also = ctx.now().elapsed().map(|d| d.as_secs());
    // Fine: both readings come from the workflow's clock.
    let _ok = ctx.now().duration_since(started);
    Ok(())
}

fn main() {}
