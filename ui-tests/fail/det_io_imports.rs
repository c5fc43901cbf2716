use duraflow::prelude::*;

#[workflow]
pub async fn imported_io(_ctx: WorkflowContext) -> Result<(), WorkflowError> {
    // A bare `fs::..` is checked when the body imports the module from `std` or `tokio`.
    use std::{fs, process};
    use tokio::fs as tfs;
    let _text = fs::read_to_string("/etc/hostname");
    let _bytes = tfs::read("/etc/hostname").await;
    let _id = process::id();
    let _conn = ::std::net::TcpStream::connect("127.0.0.1:80");
    Ok(())
}

fn main() {}
