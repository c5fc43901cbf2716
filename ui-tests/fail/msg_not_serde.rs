use duraflow::prelude::*;

#[signal]
#[derive(Clone, Debug)]
pub struct Approve;

#[query(output = u32)]
#[derive(Clone, Debug, Serialize)]
pub struct Count;

fn main() {}
