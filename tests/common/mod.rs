//! Helpers shared by the integration tests. Each test binary uses only some of them.
#![allow(dead_code)]

use std::time::Duration;

/// The environment variable naming the Postgres database the tests use.
pub const PG_URL_VAR: &str = "DURAFLOW_TEST_PG_URL";
/// Where the tests look for Postgres when the variable is unset (not in CI).
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The Postgres URL to test against, or `None` to skip (with a message on stdout).
///
/// - `DURAFLOW_TEST_PG_URL` set: that URL.
/// - unset, `CI` set: panics, since Postgres tests must run in CI.
/// - unset otherwise: [`DEFAULT_PG_URL`] if something answers at its address, else `None`.
pub fn postgres_url(test: &str) -> Option<String> {
    if let Ok(url) = std::env::var(PG_URL_VAR) {
        if !url.trim().is_empty() {
            return Some(url);
        }
    }
    if std::env::var_os("CI").is_some() {
        panic!("{PG_URL_VAR} is not set, and CI is: Postgres tests must run in CI; set it to e.g. {DEFAULT_PG_URL}");
    }
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 5432));
    match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
        Ok(_) => Some(DEFAULT_PG_URL.to_string()),
        Err(e) => {
            println!(
                "skipping `{test}`: {PG_URL_VAR} is unset and nothing answers at {addr} ({e})"
            );
            None
        }
    }
}

/// A schema name unique to this test and process, e.g. `t_timer_4242`.
pub fn unique_schema(test: &str) -> String {
    format!("t_{}_{}", test, std::process::id())
}
