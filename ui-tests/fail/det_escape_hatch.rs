use duraflow::prelude::*;

#[workflow]
pub async fn unexplained(_ctx: WorkflowContext) -> Result<(), WorkflowError> {
    #[allow_nondeterminism]
    let _a = std::time::SystemTime::now();
    #[allow_nondeterminism(reason = "")]
    let _b = std::time::SystemTime::now();
    #[allow_nondeterminism(because = "x")]
    let _c = std::time::SystemTime::now();
    Ok(())
}

#[activity]
pub async fn not_in_activities(x: i64) -> Result<i64, ActivityError> {
    #[allow_nondeterminism(reason = "activities may do anything")]
    let _now = std::time::SystemTime::now();
    Ok(x)
}

fn main() {}
