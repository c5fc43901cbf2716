//! The fuzz targets: each takes arbitrary bytes, feeds them to one reader of untrusted or stored
//! data, and panics only on a bug: a panic of the code under test, a value that changes when
//! written and read back, an error that does not say what it could not read, or a timing computed
//! from a stored duration that lands before the moment it counts from. Each returns a short label
//! of the outcome (what was decoded, or which error), which the driver uses to keep the mutants that
//! reached a new outcome.

use crate::definition::ActivityOptions;
use crate::engine::activity::{attempt_deadline, pending_deadline, resolve_failure};
use crate::error::ActivityError;
use crate::history::format;
use crate::store::ActivityResolution;
use serde_json::Value;
use std::collections::BTreeMap;

/// A moment to count from: a plausible wall clock in ms since the epoch.
const NOW: i64 = 1_800_000_000_000;

/// Text from bytes, as a `TEXT` column would hand it over (invalid UTF-8 replaced).
fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// The label of an error: its message up to serde's position ("at line 1 column 5"), so that the
/// same error at another place is not a new outcome.
fn label(prefix: &str, message: &str) -> String {
    let cut = message.find(" at line ").unwrap_or(message.len());
    // Quoted values and numbers vary with the input, not with the code path: leave them out.
    let mut l = format!("{prefix}:");
    let mut quote = None;
    for c in message[..cut].chars() {
        match (quote, c) {
            (None, '`' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_ascii_alphabetic() || c == ' ' || c == ':' => l.push(c),
            _ => {}
        }
    }
    l.chars().take(100).collect()
}

/// Checks that an error message says what could not be read.
fn says(message: &str, what: &[&str], input: &str) {
    assert!(
        what.iter().any(|w| message.contains(w)),
        "the error `{message}` does not say what could not be read (expected one of {what:?}); input: {input:.300}"
    );
}

/// A stored history event (`history.payload`): decoded, and if it decodes, encoded and decoded
/// again to the same event under the same name.
pub fn stored_event(data: &[u8]) -> String {
    let payload = text(data);
    match format::decode_event(&payload) {
        Ok(kind) => {
            let again = format::encode_event(&kind);
            let back = format::decode_event(&again).unwrap_or_else(|e| {
                panic!("an event read from `{payload:.300}` does not read back once written as `{again:.300}`: {e}")
            });
            assert_eq!(back, kind, "an event changes when written and read back");
            let name = format::event_name(&kind);
            assert!(
                again.contains(&format!("\"event\":\"{name}\"")),
                "the event is stored under another name than `{name}`: {again:.300}"
            );
            let _ = format::ref_seq(&kind);
            let _ = kind.describe();
            format!("ok:{name}")
        }
        Err(e) => {
            let m = e.to_string();
            says(&m, &["history event"], &payload);
            label("err", &m)
        }
    }
}

/// An activity task's stored options (`activity_tasks.options`): decoded, written back unchanged,
/// and every deadline and retry time the engine computes from them counts forward.
pub fn activity_options(data: &[u8]) -> String {
    let stored = text(data);
    match format::decode_options(&stored) {
        Ok(options) => {
            let again = format::encode_options(&options);
            let back = format::decode_options(&again).unwrap_or_else(|e| {
                panic!("options read from `{stored:.300}` do not read back once written as `{again:.300}`: {e}")
            });
            assert_eq!(back, options, "options change when written and read back");
            check_timing(&options);
            let _ = options.retry_policy.validate();
            "ok".into()
        }
        Err(e) => {
            let m = e.to_string();
            says(&m, &["activity task's options"], &stored);
            label("err", &m)
        }
    }
}

/// Every time the engine derives from options lies at or after the moment it counts from: a long
/// timeout or backoff saturates, it never wraps into the past (which would time an attempt out, or
/// retry it, at once).
pub fn check_timing(options: &ActivityOptions) {
    let (deadline, kind) = attempt_deadline(options, NOW, NOW, NOW);
    assert!(
        deadline >= NOW,
        "an attempt started now gets a {kind:?} deadline {} ms in the past, from options {options:?}",
        NOW - deadline
    );
    for first in [true, false] {
        if let Some((at, kind)) = pending_deadline(options, NOW, NOW, first) {
            assert!(
                at >= NOW,
                "a task scheduled now gets a {kind:?} deadline in the past ({at}), from options {options:?}"
            );
        }
    }
    for attempt in [1, 2, 3, 10, 64, 1000, u32::MAX] {
        let error = ActivityError::application("Flaky", "try again");
        match resolve_failure(options, "fuzzed", attempt, NOW, error, None, NOW) {
            ActivityResolution::Retry { retry_at_ms, .. } => assert!(
                retry_at_ms >= NOW,
                "attempt {attempt} is retried in the past ({retry_at_ms}), from options {options:?}"
            ),
            ActivityResolution::Failed(_) | ActivityResolution::TimedOut(_) => {}
            other => panic!("a failure resolved as {other:?}"),
        }
    }
}

/// A failed workflow's stored error (`workflows.result`): decoded, written back unchanged, and shown.
pub fn workflow_error(data: &[u8]) -> String {
    let stored = text(data);
    match format::decode_workflow_error(&stored) {
        Ok(error) => {
            let again = format::encode_workflow_error(&error);
            let back = format::decode_workflow_error(&again).unwrap_or_else(|e| {
                panic!("an error read from `{stored:.300}` does not read back once written as `{again:.300}`: {e}")
            });
            assert_eq!(
                back, error,
                "a workflow error changes when written and read back"
            );
            let _ = error.to_string();
            "ok".into()
        }
        Err(e) => {
            let m = e.to_string();
            says(&m, &["workflow's error"], &stored);
            label("err", &m)
        }
    }
}

/// An input, a result or heartbeat details (the JSON payload columns), then decoded as the typed
/// input of a definition would be: each type that does not match is an error naming the mismatch.
pub fn payload(data: &[u8]) -> String {
    let stored = text(data);
    let value = match format::decode_value(&stored) {
        Ok(v) => v,
        Err(e) => {
            let m = e.to_string();
            says(&m, &["JSON payload"], &stored);
            return label("err", &m);
        }
    };
    let again = format::encode_value(&value);
    assert_eq!(
        format::decode_value(&again).ok().as_ref(),
        Some(&value),
        "a payload changes when written and read back"
    );
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Order {
        id: u64,
        items: Vec<(String, u32)>,
        note: Option<String>,
        kind: Kind,
    }
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    enum Kind {
        Small,
        Big { weight: f64 },
    }
    let mut outcome = String::from("ok");
    let mut typed = |ok: bool| outcome.push(if ok { '+' } else { '-' });
    typed(decode_typed::<Order>(&value));
    typed(decode_typed::<(i64, String)>(&value));
    typed(decode_typed::<BTreeMap<String, Value>>(&value));
    typed(decode_typed::<Vec<u8>>(&value));
    typed(decode_typed::<Option<u32>>(&value));
    typed(decode_typed::<ActivityError>(&value));
    typed(decode_typed::<crate::WorkflowError>(&value));
    outcome
}

/// Decodes a payload as `T` the way the definitions and the client do; a mismatch must be an error
/// that says something.
fn decode_typed<T: serde::de::DeserializeOwned>(value: &Value) -> bool {
    match serde_json::from_value::<T>(value.clone()) {
        Ok(_) => true,
        Err(e) => {
            assert!(!e.to_string().is_empty(), "an empty payload error");
            false
        }
    }
}

/// A duration as users write them (`"1m30s"`): parsed, and a parsed one parses again from its
/// seconds and milliseconds to the same value; an error quotes the text or says it is about a duration.
pub fn duration(data: &[u8]) -> String {
    let written = text(data);
    match crate::parse_duration(&written) {
        Ok(d) => {
            // In seconds and milliseconds: humantime refuses a count of milliseconds past
            // u64::MAX nanoseconds (about 584 years) that it takes in hours.
            let ms = format!("{}s{}ms", d.as_secs(), d.subsec_millis());
            assert_eq!(
                crate::parse_duration(&ms),
                Ok(d),
                "`{written}` parsed as {d:?}, which does not parse again as `{ms}`"
            );
            "ok".into()
        }
        Err(m) => {
            assert!(
                m.contains("duration") || m.contains(written.as_ref()),
                "the error `{m}` neither quotes `{written}` nor says it is about a duration"
            );
            let cut = m.find(';').unwrap_or(m.len());
            label("err", &m[..cut].replace(written.trim(), ""))
        }
    }
}
