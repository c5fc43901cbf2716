use duraflow::prelude::*;
use std::time::{Instant, SystemTime};

#[workflow]
pub async fn references(_ctx: WorkflowContext) -> Result<(), WorkflowError> {
    // A forbidden fn named without a call is still a use of it.
    let f = SystemTime::now;
    let _a = f();
    let _b: Option<Instant> = None.or_else(|| Some(Instant::now()));
    let _c = None.unwrap_or_else(Instant::now);
    let nap = tokio::time::sleep;
    nap(Duration::from_secs(1)).await;
    let _d: Vec<_> = std::iter::repeat_with(SystemTime::now).take(2).collect();
    Ok(())
}

fn main() {}
