use duraflow::prelude::*;

#[activity]
pub fn add_one(x: i64) -> Result<i64, ActivityError> {
    Ok(x + 1)
}

#[workflow]
pub fn plus_one(_ctx: WorkflowContext, x: i64) -> Result<i64, WorkflowError> {
    Ok(x + 1)
}

fn main() {
    // The definitions still exist (generated as if the fns were async): no follow-on errors.
    let _ = Registry::new().register(add_one).register(plus_one);
}
