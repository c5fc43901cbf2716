use duraflow::prelude::*;
use std::time::Instant;

// A stand-in with the real crate's path: the check is syntactic.
mod rand {
    pub mod rngs {
        #[derive(Default)]
        pub struct OsRng;
    }
}

#[workflow]
pub async fn qualified(_ctx: WorkflowContext) -> Result<(), WorkflowError> {
    let _a = <Instant>::now();
    let _b = <std::time::SystemTime>::now();
    let _c = <rand::rngs::OsRng as Default>::default();
    Ok(())
}

fn main() {}
