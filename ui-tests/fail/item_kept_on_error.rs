//! A macro error never drops the user's item: only the macro's own errors appear, and every use of the
//! names below compiles.
use duraflow::prelude::*;

#[activity(colour = "blue")]
pub async fn add_one(_ctx: ActivityContext, x: i64) -> Result<i64, ActivityError> {
    Ok(x + 1)
}

#[workflow(name = "adder")]
pub async fn adder(ctx: WorkflowContext, x: i64) -> Result<i64, WorkflowError> {
    let _started = std::time::Instant::now();
    Ok(ctx.activity(add_one, x).await?)
}

#[activity]
pub async fn generic<T>(x: i64) -> Result<i64, ActivityError> {
    Ok(x)
}

fn main() {
    let _ = Registry::new().register(add_one).register(adder);
    let (ctx, _probe) = ActivityContext::for_test("add_one");
    let _fut = add_one::call(ctx, 1);
    let _ = generic;
}
