use duraflow::prelude::*;

// A stand-in with the real crate's path: the check is syntactic.
mod reqwest {
    pub async fn get(_url: &str) -> Result<(), std::io::Error> {
        Ok(())
    }
}

#[workflow]
pub async fn io(_ctx: WorkflowContext) -> Result<(), WorkflowError> {
    let _home = std::env::var("HOME");
    let _text = std::fs::read_to_string("/etc/hostname");
    let _bytes = tokio::fs::read("/etc/hostname").await;
    let _conn = std::net::TcpStream::connect("127.0.0.1:80");
    let _page = reqwest::get("https://example.com").await;
    Ok(())
}

fn main() {}
