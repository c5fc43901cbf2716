use duraflow::prelude::*;

#[activity]
pub struct Charge {
    pub cents: u64,
}

fn main() {
    let _ = Charge { cents: 1 };
}
