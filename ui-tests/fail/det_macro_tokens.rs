use duraflow::prelude::*;
use std::time::{Instant, SystemTime};

// A stand-in with the real crate's path: the check is syntactic.
mod tracing {
    macro_rules! info {
        ($($t:tt)*) => {};
    }
    pub(crate) use info;
}

// A macro of the user's with its own syntax.
macro_rules! record {
    ($($t:tt)*) => {};
}

#[workflow]
pub async fn macro_arguments(ctx: WorkflowContext) -> Result<(), WorkflowError> {
    // Arguments that are not a plain list of expressions are scanned token by token.
    tracing::info!(at = ?SystemTime::now(), "step done");
    tracing::info!(target: "orders", took = ?ctx.now().elapsed(), "step done");
    let _v = vec![Instant::now(); 2];
    let _m = matches!(Some(1), Some(_) if rand_like() > 0 && SystemTime::now() > ctx.now());
    record! { started => <Instant>::now(), nap => tokio::time::sleep }
    // Tokens that parse as nothing in particular are fine.
    record! { ~~ @ ## => }
    Ok(())
}

fn rand_like() -> u8 {
    1
}

fn main() {}
