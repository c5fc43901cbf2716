//! What breaks replay, by path: the table behind the determinism check, and what to write instead.
//!
//! A path here is the one the body's own imports make of what was written (`I::now` after
//! `use std::time::Instant as I` is `std::time::Instant::now`); `determinism.rs` resolves it.

use proc_macro2::{TokenStream, TokenTree};

/// What breaks replay, and what to write instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    Clock,
    Sleep,
    Timeout,
    Interval,
    Spawn,
    Random,
    Uuid,
    Io,
}

impl Rule {
    /// The message for a use of `path` (already in backticks, with what it resolved to).
    pub fn message(self, path: &str) -> String {
        match self {
            Rule::Clock => format!(
                "{path} reads the wall clock, which differs when the workflow is replayed; use `ctx.now()` (the task's time), or record the reading once with `ctx.side_effect(|| ..)`"
            ),
            Rule::Sleep => format!(
                "{path} waits on a timer that is not recorded in the workflow's history; use the durable timer `ctx.sleep(..).await`"
            ),
            Rule::Timeout => format!(
                "{path} races a timer that is not recorded in the workflow's history; race the call against `ctx.sleep(..)` in `duraflow::select!` instead"
            ),
            Rule::Interval => format!(
                "{path} ticks on a timer that is not recorded in the workflow's history; call `ctx.sleep(..).await` in a loop instead"
            ),
            Rule::Spawn => format!(
                "{path} runs work outside the workflow's deterministic executor; do the work in an `#[activity]` called with `ctx.activity(..)`, or run calls side by side with the deterministic `join!`"
            ),
            Rule::Random => format!(
                "{path} gives different numbers when the workflow is replayed; use `ctx.random_u64()`, or record the value once with `ctx.side_effect(|| ..)`"
            ),
            Rule::Uuid => format!(
                "{path} gives a different id when the workflow is replayed; use `ctx.uuid()`, or record the id once with `ctx.side_effect(|| ..)`"
            ),
            Rule::Io => format!(
                "{path} does I/O whose result is not recorded and may differ on replay; move this I/O into an `#[activity]` and call it with `ctx.activity(..)`"
            ),
        }
    }
}

/// `.elapsed()`, on whatever it is called: it reads the wall clock.
pub const ELAPSED: &str = "`.elapsed()` reads the wall clock, which differs when the workflow is replayed; subtract an earlier `ctx.now()` from a later one instead: `ctx.now().duration_since(start)`";

const HTTP_CLIENTS: &[&str] = &["reqwest", "hyper", "ureq", "surf"];

/// The crates whose `fs`, `net` and `process` modules do I/O.
const IO_CRATES: &[&str] = &["std", "tokio", "async_std"];

/// Types of `std::net` that are data, not I/O: building an address reads nothing.
const NET_DATA: &[&str] = &[
    "IpAddr",
    "Ipv4Addr",
    "Ipv6Addr",
    "SocketAddr",
    "SocketAddrV4",
    "SocketAddrV6",
    "Shutdown",
    "AddrParseError",
];

/// The rule a fn path breaks, if any. `segs` is the path the body's imports make of it.
pub fn rule_for(segs: &[String]) -> Option<Rule> {
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let first = *s.first()?;
    let last = *s.last()?;
    // The user's own items.
    if matches!(first, "crate" | "self" | "super") {
        return None;
    }
    let ends = |tail: &[&str]| s.len() >= tail.len() && s[s.len() - tail.len()..] == *tail;

    // Wall clock.
    if last == "now" && s.len() >= 2 {
        let ty = s[s.len() - 2];
        if matches!(ty, "SystemTime" | "Instant" | "Utc" | "Local") {
            return Some(Rule::Clock);
        }
    }
    // Timers.
    if ends(&["thread", "sleep"]) {
        return Some(Rule::Sleep);
    }
    if s.len() >= 2 && (s[s.len() - 2] == "time" || (first == "tokio" && s.len() == 2)) {
        match last {
            "sleep" | "sleep_until" => return Some(Rule::Sleep),
            "timeout" | "timeout_at" => return Some(Rule::Timeout),
            "interval" | "interval_at" => return Some(Rule::Interval),
            _ => {}
        }
    }
    // Tasks and threads.
    if last == "spawn_blocking"
        || last == "spawn_local"
        || ends(&["tokio", "spawn"])
        || ends(&["task", "spawn"])
        || ends(&["thread", "spawn"])
        || ends(&["thread", "scope"])
    {
        return Some(Rule::Spawn);
    }
    // Randomness and ids.
    if (first == "rand" && matches!(last, "random" | "thread_rng" | "rng" | "random_range"))
        || (s.len() == 1 && last == "thread_rng")
        || ends(&["OsRng", "default"])
    {
        return Some(Rule::Random);
    }
    if s.len() >= 2 && s[s.len() - 2] == "Uuid" && matches!(last, "new_v4" | "new_v7" | "now_v7") {
        return Some(Rule::Uuid);
    }
    // Environment, files, network, processes, HTTP.
    if s.len() >= 2
        && s[s.len() - 2] == "env"
        && matches!(last, "var" | "var_os" | "vars" | "vars_os")
    {
        return Some(Rule::Io);
    }
    // `std::fs::..`, `tokio::net::..`: only the I/O crates' modules. A bare `fs::..` reaches here as
    // `std::fs::..` when the body imported it; otherwise it may be the user's own module.
    if IO_CRATES.contains(&first)
        && s.len() >= 3
        && matches!(s[1], "fs" | "net" | "process")
        && !(s[1] == "net" && NET_DATA.contains(&s[2]))
    {
        return Some(Rule::Io);
    }
    if s.len() >= 2
        && matches!(
            (s[s.len() - 2], last),
            ("File", "open" | "create" | "options")
                | (
                    "TcpStream" | "UdpSocket" | "TcpListener",
                    "connect" | "bind"
                )
                | ("Command", "new")
        )
    {
        return Some(Rule::Io);
    }
    if HTTP_CLIENTS.contains(&first) {
        return Some(Rule::Io);
    }
    None
}

/// The message for a macro the workflow must not use, if `segs` (resolved) names one.
pub fn macro_rule(segs: &[String], tokens: &TokenStream, written: &str) -> Option<String> {
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    match s.as_slice() {
        ["tokio", "select"] if !starts_biased(tokens) => Some(format!(
            "{written} without `biased;` picks a random ready branch, which differs when the workflow is replayed; use the deterministic `duraflow::select!` (branches are polled in the order written)"
        )),
        ["futures", "select"] | ["futures", "select_biased"] | ["futures", "future", "select"] => {
            Some(format!(
                "{written} is not the workflow's deterministic select; use `duraflow::select!` (branches are polled in the order written)"
            ))
        }
        _ => None,
    }
}

/// `biased;` first in a `select!`.
pub fn starts_biased(tokens: &TokenStream) -> bool {
    let mut it = tokens.clone().into_iter();
    matches!(
        (it.next(), it.next()),
        (Some(TokenTree::Ident(i)), Some(TokenTree::Punct(p))) if i == "biased" && p.as_char() == ';'
    )
}

/// Whether the last segment of a path names a fn (`now`, `sleep`), not a type, variant or constant
/// (`Client`, `LOCALHOST`): a path named without a call is flagged only when it is a fn.
pub fn names_a_fn(segs: &[String]) -> bool {
    segs.last()
        .and_then(|s| s.chars().next())
        .is_some_and(|c| c.is_lowercase() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::rule_for;

    fn rule(path: &str) -> bool {
        let segs: Vec<String> = path.split("::").map(str::to_string).collect();
        rule_for(&segs).is_some()
    }

    #[test]
    fn flagged() {
        for p in [
            "std::time::SystemTime::now",
            "SystemTime::now",
            "Instant::now",
            "chrono::Utc::now",
            "Local::now",
            "std::thread::sleep",
            "thread::sleep",
            "tokio::time::sleep",
            "time::sleep",
            "tokio::time::timeout",
            "tokio::time::interval",
            "tokio::spawn",
            "tokio::task::spawn",
            "std::thread::spawn",
            "tokio::task::spawn_blocking",
            "spawn_blocking",
            "rand::random",
            "rand::thread_rng",
            "rand::rng",
            "thread_rng",
            "uuid::Uuid::new_v4",
            "Uuid::new_v4",
            "std::env::var",
            "env::var",
            "std::fs::read_to_string",
            "tokio::fs::read",
            "async_std::fs::read",
            "std::fs::File::open",
            "File::create",
            "std::net::TcpStream::connect",
            "tokio::net::lookup_host",
            "std::process::id",
            "std::process::Command::new",
            "TcpStream::connect",
            "reqwest::get",
            "reqwest::Client::new",
            "hyper::Client::new",
            "ureq::get",
            "surf::get",
        ] {
            assert!(rule(p), "{p} should be flagged");
        }
    }

    #[test]
    fn allowed() {
        for p in [
            "Duration::from_secs",
            "ctx::sleep",
            "sleep",
            "spawn",
            "random",
            "Uuid::nil",
            "String::from",
            "serde_json::to_value",
            "Ok",
            "time::Duration::from_secs",
            // The user's own modules called `fs`, `net`, `process`.
            "fs::write",
            "fs::save",
            "net::x",
            "process::step",
            "crate::fs::save",
            "self::fs::save",
            "super::net::send",
            "my::net::x",
            "crate::time::sleep",
            // Addresses are data.
            "std::net::Ipv4Addr::new",
            "std::net::SocketAddr::from",
        ] {
            assert!(!rule(p), "{p} should not be flagged");
        }
    }
}
