//! A broken signature does not hide the errors inside the body: the determinism errors show beside
//! the signature's, and the body is kept, so the compiler's own errors in it show too.
use duraflow::prelude::*;

#[workflow]
pub async fn generic<T>(_ctx: WorkflowContext) -> Result<(), WorkflowError> {
    let _now = std::time::SystemTime::now();
    Ok(())
}

#[workflow]
pub async fn no_result(_ctx: WorkflowContext) {
    let _started = std::time::Instant::now();
    let _n: u32 = "not a number";
}

pub struct Orders;

impl Orders {
    #[workflow]
    pub async fn method(&self, _ctx: WorkflowContext) -> Result<(), WorkflowError> {
        let _now = std::time::SystemTime::now();
        Ok(())
    }
}

fn main() {
    let _ = generic;
    let _ = no_result;
}
