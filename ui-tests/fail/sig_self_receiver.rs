use duraflow::prelude::*;

pub struct Payments;

impl Payments {
    #[activity]
    pub async fn charge(&self, cents: u64) -> Result<u64, ActivityError> {
        Ok(cents)
    }
}

fn main() {}
