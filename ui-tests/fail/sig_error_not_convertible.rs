use duraflow::prelude::*;

#[derive(Debug)]
pub struct MyError;

#[activity]
pub async fn add_one(x: i64) -> Result<i64, MyError> {
    Ok(x + 1)
}

#[workflow]
pub async fn adder(_ctx: WorkflowContext, x: i64) -> Result<i64, String> {
    Ok(x + 1)
}

fn main() {}
