use duraflow::prelude::*;

#[activity]
pub async fn add_one(x: i64) -> i64 {
    x + 1
}

#[workflow]
pub async fn nothing(_ctx: WorkflowContext) {}

fn main() {}
