use duraflow::prelude::*;

// Stand-ins with the real crates' paths: the check is syntactic.
mod rand {
    pub fn random<T: Default>() -> T {
        T::default()
    }
    pub fn thread_rng() -> u64 {
        0
    }
    pub fn rng() -> u64 {
        0
    }
}
mod uuid {
    pub struct Uuid;
    impl Uuid {
        pub fn new_v4() -> u128 {
            0
        }
    }
}
use uuid::Uuid;

#[workflow]
pub async fn randomness(_ctx: WorkflowContext) -> Result<(), WorkflowError> {
    let _a: u64 = rand::random();
    let _b = rand::thread_rng();
    let _c = rand::rng();
    let _d = Uuid::new_v4();
    Ok(())
}

fn main() {}
