use duraflow::prelude::*;
use std::time::{Instant, SystemTime};

mod chrono {
    pub struct Utc;
    impl Utc {
        pub fn now() -> u64 {
            0
        }
    }
    pub struct Local;
    impl Local {
        pub fn now() -> u64 {
            0
        }
    }
}

#[workflow]
pub async fn clocks(_ctx: WorkflowContext) -> Result<(), WorkflowError> {
    let _a = SystemTime::now();
    let _b = std::time::Instant::now();
    let _c = Instant::now();
    let _d = chrono::Utc::now();
    let _e = chrono::Local::now();
    Ok(())
}

fn main() {}
