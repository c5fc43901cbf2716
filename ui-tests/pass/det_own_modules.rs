//! The determinism check flags `std`'s and `tokio`'s I/O modules, not modules of the user's that happen
//! to be called `fs`, `net` or `process`.
use duraflow::prelude::*;

mod fs {
    pub fn save(_what: &str) {}
}
mod my {
    pub mod net {
        pub fn x() -> u8 {
            1
        }
    }
}
mod process {
    pub fn step() -> u8 {
        2
    }
}

#[workflow]
pub async fn own_modules(_ctx: WorkflowContext) -> Result<u8, WorkflowError> {
    crate::fs::save("a");
    self::fs::save("b");
    fs::save("c"); // the module above; a bare `fs::` is flagged only after a `use std::fs` in the body
    let n = my::net::x() + process::step();
    {
        use crate::fs as storage;
        storage::save("d");
    }
    // Addresses are data, not I/O.
    let _ip = std::net::Ipv4Addr::new(127, 0, 0, 1);
    let _local = std::net::Ipv4Addr::LOCALHOST;
    Ok(n)
}

fn main() {
    let _ = own_modules;
}
