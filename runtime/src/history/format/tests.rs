use super::*;
use serde_json::json;

fn full_options() -> ActivityOptions {
    ActivityOptions {
        start_to_close_timeout: Some(Duration::from_secs(30)),
        schedule_to_close_timeout: Some(Duration::from_secs(120)),
        schedule_to_start_timeout: Some(Duration::from_millis(2500)),
        heartbeat_timeout: Some(Duration::from_millis(750)),
        retry_policy: RetryPolicy {
            initial_interval: Duration::from_millis(250),
            backoff_coefficient: 1.5,
            maximum_interval: Some(Duration::from_secs(10)),
            maximum_attempts: 5,
            non_retryable_error_types: vec!["InvalidInput".into(), "Fatal".into()],
        },
        task_queue: Some("fast".into()),
    }
}

fn failed(cause: ActivityError) -> ActivityError {
    ActivityError::Failed {
        activity_type: "charge_card".into(),
        attempts: 3,
        cause: Box::new(cause),
    }
}

/// One case per shape the stored format has: every event kind, every activity and workflow error,
/// every timeout kind and cancellation type, options with every field set and with none. Each JSON
/// string is what the build before this module (which serialized the public types with serde)
/// wrote for the value beside it: it was printed by that build, not written by hand.
fn golden() -> Vec<(&'static str, EventKind)> {
    vec![
        (
            r#"{"event":"workflow_started","workflow_type":"order_wf","input":{"items":[1,2],"note":"ünï \"q\"","z":null},"task_queue":"default","run_id":"000001a2-3127-45d9-52b6-571608009337"}"#,
            EventKind::WorkflowStarted {
                workflow_type: "order_wf".into(),
                input: json!({"items": [1, 2], "note": "ünï \"q\"", "z": null}),
                task_queue: "default".into(),
                run_id: "000001a2-3127-45d9-52b6-571608009337".into(),
            },
        ),
        (
            r#"{"event":"workflow_task_completed","processed_through":5,"task_time_ms":1700000000123}"#,
            EventKind::WorkflowTaskCompleted {
                processed_through: 5,
                task_time_ms: 1_700_000_000_123,
            },
        ),
        (
            r#"{"event":"activity_scheduled","activity_seq":1,"activity_type":"charge_card","input":{"amount":12.5,"currency":"EUR"},"options":{"start_to_close_timeout":30000,"schedule_to_close_timeout":120000,"schedule_to_start_timeout":2500,"heartbeat_timeout":750,"retry_policy":{"initial_interval":250,"backoff_coefficient":1.5,"maximum_interval":10000,"maximum_attempts":5,"non_retryable_error_types":["InvalidInput","Fatal"]},"task_queue":"fast"},"task_queue":"fast","local":false,"cancellation_type":"wait_cancellation_completed"}"#,
            EventKind::ActivityScheduled {
                activity_seq: 1,
                activity_type: "charge_card".into(),
                input: json!({"amount": 12.5, "currency": "EUR"}),
                options: full_options(),
                task_queue: "fast".into(),
                local: false,
                cancellation_type: CancellationType::WaitCancellationCompleted,
            },
        ),
        (
            r#"{"event":"activity_scheduled","activity_seq":2,"activity_type":"add_one","input":41,"options":{"start_to_close_timeout":null,"schedule_to_close_timeout":null,"schedule_to_start_timeout":null,"heartbeat_timeout":null,"retry_policy":{"initial_interval":1000,"backoff_coefficient":2.0,"maximum_interval":null,"maximum_attempts":0,"non_retryable_error_types":[]},"task_queue":null},"task_queue":"default","local":true,"cancellation_type":"try_cancel"}"#,
            EventKind::ActivityScheduled {
                activity_seq: 2,
                activity_type: "add_one".into(),
                input: json!(41),
                options: ActivityOptions::default(),
                task_queue: "default".into(),
                local: true,
                cancellation_type: CancellationType::TryCancel,
            },
        ),
        (
            r#"{"event":"activity_scheduled","activity_seq":3,"activity_type":"fire_and_forget","input":null,"options":{"start_to_close_timeout":null,"schedule_to_close_timeout":null,"schedule_to_start_timeout":null,"heartbeat_timeout":null,"retry_policy":{"initial_interval":1000,"backoff_coefficient":2.0,"maximum_interval":null,"maximum_attempts":0,"non_retryable_error_types":[]},"task_queue":null},"task_queue":"default","local":false,"cancellation_type":"abandon"}"#,
            EventKind::ActivityScheduled {
                activity_seq: 3,
                activity_type: "fire_and_forget".into(),
                input: Value::Null,
                options: ActivityOptions::default(),
                task_queue: "default".into(),
                local: false,
                cancellation_type: CancellationType::Abandon,
            },
        ),
        (
            r#"{"event":"activity_started","activity_seq":1,"attempt":2,"worker":"14205-1-87097"}"#,
            EventKind::ActivityStarted {
                activity_seq: 1,
                attempt: 2,
                worker: "14205-1-87097".into(),
            },
        ),
        (
            r#"{"event":"activity_completed","activity_seq":1,"result":{"ok":true,"receipt":"r-1"}}"#,
            EventKind::ActivityCompleted {
                activity_seq: 1,
                result: json!({"ok": true, "receipt": "r-1"}),
            },
        ),
        (
            r#"{"event":"activity_failed","activity_seq":1,"error":{"type":"failed","activity_type":"charge_card","attempts":3,"cause":{"type":"application","error_type":"CardDeclined","message":"insufficient funds","non_retryable":true,"details":{"code":51}}}}"#,
            EventKind::ActivityFailed {
                activity_seq: 1,
                error: failed(ActivityError::Application {
                    error_type: "CardDeclined".into(),
                    message: "insufficient funds".into(),
                    non_retryable: true,
                    details: Some(json!({"code": 51})),
                }),
            },
        ),
        (
            r#"{"event":"activity_failed","activity_seq":2,"error":{"type":"application","error_type":"Flaky","message":"no details","non_retryable":false,"details":null}}"#,
            EventKind::ActivityFailed {
                activity_seq: 2,
                error: ActivityError::application("Flaky", "no details"),
            },
        ),
        (
            r#"{"event":"activity_timed_out","activity_seq":1,"error":{"type":"failed","activity_type":"charge_card","attempts":3,"cause":{"type":"timeout","kind":"heartbeat","details":{"progress":7}}}}"#,
            EventKind::ActivityTimedOut {
                activity_seq: 1,
                error: failed(ActivityError::Timeout {
                    kind: TimeoutKind::Heartbeat,
                    details: Some(json!({"progress": 7})),
                }),
            },
        ),
        (
            r#"{"event":"activity_timed_out","activity_seq":2,"error":{"type":"failed","activity_type":"charge_card","attempts":3,"cause":{"type":"timeout","kind":"start_to_close","details":null}}}"#,
            EventKind::ActivityTimedOut {
                activity_seq: 2,
                error: failed(ActivityError::Timeout {
                    kind: TimeoutKind::StartToClose,
                    details: None,
                }),
            },
        ),
        (
            r#"{"event":"activity_timed_out","activity_seq":3,"error":{"type":"timeout","kind":"schedule_to_close","details":null}}"#,
            EventKind::ActivityTimedOut {
                activity_seq: 3,
                error: ActivityError::Timeout {
                    kind: TimeoutKind::ScheduleToClose,
                    details: None,
                },
            },
        ),
        (
            r#"{"event":"activity_timed_out","activity_seq":4,"error":{"type":"timeout","kind":"schedule_to_start","details":null}}"#,
            EventKind::ActivityTimedOut {
                activity_seq: 4,
                error: ActivityError::Timeout {
                    kind: TimeoutKind::ScheduleToStart,
                    details: None,
                },
            },
        ),
        (
            r#"{"event":"activity_cancel_requested","activity_seq":4}"#,
            EventKind::ActivityCancelRequested { activity_seq: 4 },
        ),
        (
            r#"{"event":"activity_cancelled","activity_seq":4,"details":"some details"}"#,
            EventKind::ActivityCancelled {
                activity_seq: 4,
                details: Some(json!("some details")),
            },
        ),
        (
            r#"{"event":"activity_cancelled","activity_seq":5,"details":null}"#,
            EventKind::ActivityCancelled {
                activity_seq: 5,
                details: None,
            },
        ),
        (
            r#"{"event":"local_activity_marker","activity_seq":6,"result":{"Ok":[42,"x"]}}"#,
            EventKind::LocalActivityMarker {
                activity_seq: 6,
                result: Ok(json!([42, "x"])),
            },
        ),
        (
            r#"{"event":"local_activity_marker","activity_seq":7,"result":{"Err":{"type":"failed","activity_type":"charge_card","attempts":3,"cause":{"type":"application","error_type":"Flaky","message":"attempt 3 fails","non_retryable":false,"details":null}}}}"#,
            EventKind::LocalActivityMarker {
                activity_seq: 7,
                result: Err(failed(ActivityError::application(
                    "Flaky",
                    "attempt 3 fails",
                ))),
            },
        ),
        (
            r#"{"event":"local_activity_marker","activity_seq":8,"result":{"Err":{"type":"cancelled","details":3}}}"#,
            EventKind::LocalActivityMarker {
                activity_seq: 8,
                result: Err(ActivityError::Cancelled {
                    details: Some(json!(3)),
                }),
            },
        ),
        (
            r#"{"event":"timer_started","timer_seq":9,"fire_at_ms":1700000060000}"#,
            EventKind::TimerStarted {
                timer_seq: 9,
                fire_at_ms: 1_700_000_060_000,
            },
        ),
        (
            r#"{"event":"timer_fired","timer_seq":9}"#,
            EventKind::TimerFired { timer_seq: 9 },
        ),
        (
            r#"{"event":"timer_cancelled","timer_seq":10}"#,
            EventKind::TimerCancelled { timer_seq: 10 },
        ),
        (
            r#"{"event":"workflow_cancel_requested"}"#,
            EventKind::WorkflowCancelRequested {},
        ),
        (
            r#"{"event":"workflow_completed","result":[1,"two",null,3.5,{"a":2,"b":1}]}"#,
            EventKind::WorkflowCompleted {
                result: json!([1, "two", null, 3.5, {"b": 1, "a": 2}]),
            },
        ),
        (
            r#"{"event":"workflow_failed","error":{"type":"cancelled"}}"#,
            EventKind::WorkflowFailed {
                error: WorkflowError::Cancelled,
            },
        ),
        (
            r#"{"event":"workflow_failed","error":{"type":"activity","detail":{"type":"failed","activity_type":"charge_card","attempts":3,"cause":{"type":"cancelled","details":null}}}}"#,
            EventKind::WorkflowFailed {
                error: WorkflowError::Activity(failed(ActivityError::cancelled())),
            },
        ),
        (
            r#"{"event":"workflow_failed","error":{"type":"application","detail":{"error_type":"ExecutionTimeout","message":"the workflow ran past its execution_timeout"}}}"#,
            EventKind::WorkflowFailed {
                error: WorkflowError::application(
                    "ExecutionTimeout",
                    "the workflow ran past its execution_timeout",
                ),
            },
        ),
        (
            r#"{"event":"workflow_failed","error":{"type":"nondeterminism","detail":"replay scheduled `b` where the history has `a`"}}"#,
            EventKind::WorkflowFailed {
                error: WorkflowError::Nondeterminism(
                    "replay scheduled `b` where the history has `a`".into(),
                ),
            },
        ),
        (
            r#"{"event":"workflow_cancelled"}"#,
            EventKind::WorkflowCancelled {},
        ),
    ]
}

#[test]
fn golden_v1_json_decodes_and_reencodes_byte_identical() {
    for (json, expected) in golden() {
        let decoded = decode_event(json).unwrap_or_else(|e| panic!("{json}: {e}"));
        assert_eq!(decoded, expected, "{json}");
        assert_eq!(encode_event(&expected), json, "encoding {expected:?}");
    }
}

#[test]
fn the_golden_cases_cover_every_event_kind() {
    let covered: std::collections::BTreeSet<&str> =
        golden().iter().map(|(_, k)| event_name(k)).collect();
    let all: std::collections::BTreeSet<&str> = names::ALL_V1.into_iter().collect();
    assert_eq!(covered, all);
}

#[test]
fn every_kind_round_trips() {
    for (_, kind) in golden() {
        let encoded = encode_event(&kind);
        assert_eq!(decode_event(&encoded).unwrap(), kind, "{encoded}");
    }
}

#[test]
fn names_agree_with_the_stored_tags() {
    for (json, kind) in golden() {
        let tag = serde_json::from_str::<Value>(json).unwrap()["event"].clone();
        assert_eq!(tag, json!(event_name(&kind)));
        assert_eq!(kind.name(), event_name(&kind));
    }
    let commands = [
        "activity_scheduled",
        "activity_cancel_requested",
        "timer_started",
        "timer_cancelled",
        "workflow_completed",
        "workflow_failed",
        "workflow_cancelled",
    ];
    for name in names::ALL_V1 {
        assert_eq!(is_command_name(name), commands.contains(&name), "{name}");
        assert_eq!(is_marker_name(name), name == "workflow_task_completed");
    }
    for (_, kind) in golden() {
        assert_eq!(kind.is_command(), commands.contains(&kind.name()));
    }
}

#[test]
fn ref_seq_is_the_activity_or_timer_number() {
    for (_, kind) in golden() {
        let expected = match &kind {
            EventKind::TimerStarted { timer_seq, .. }
            | EventKind::TimerFired { timer_seq }
            | EventKind::TimerCancelled { timer_seq } => Some(*timer_seq as i64),
            EventKind::WorkflowStarted { .. }
            | EventKind::WorkflowTaskCompleted { .. }
            | EventKind::WorkflowCancelRequested {}
            | EventKind::WorkflowCompleted { .. }
            | EventKind::WorkflowFailed { .. }
            | EventKind::WorkflowCancelled {} => None,
            _ => {
                let v: Value = serde_json::from_str(&encode_event(&kind)).unwrap();
                Some(v["activity_seq"].as_i64().unwrap())
            }
        };
        assert_eq!(ref_seq(&kind), expected, "{kind:?}");
    }
}

#[test]
fn options_and_workflow_errors_keep_their_v1_json() {
    let options = [
        (
            r#"{"start_to_close_timeout":30000,"schedule_to_close_timeout":120000,"schedule_to_start_timeout":2500,"heartbeat_timeout":750,"retry_policy":{"initial_interval":250,"backoff_coefficient":1.5,"maximum_interval":10000,"maximum_attempts":5,"non_retryable_error_types":["InvalidInput","Fatal"]},"task_queue":"fast"}"#,
            full_options(),
        ),
        (
            r#"{"start_to_close_timeout":null,"schedule_to_close_timeout":null,"schedule_to_start_timeout":null,"heartbeat_timeout":null,"retry_policy":{"initial_interval":1000,"backoff_coefficient":2.0,"maximum_interval":null,"maximum_attempts":0,"non_retryable_error_types":[]},"task_queue":null}"#,
            ActivityOptions::default(),
        ),
    ];
    for (json, expected) in options {
        assert_eq!(decode_options(json).unwrap(), expected);
        assert_eq!(encode_options(&expected), json);
    }
    let errors = [
        (r#"{"type":"cancelled"}"#, WorkflowError::Cancelled),
        (
            r#"{"type":"application","detail":{"error_type":"A","message":"b"}}"#,
            WorkflowError::application("A", "b"),
        ),
        (
            r#"{"type":"nondeterminism","detail":"n"}"#,
            WorkflowError::Nondeterminism("n".into()),
        ),
        (
            r#"{"type":"activity","detail":{"type":"cancelled","details":null}}"#,
            WorkflowError::Activity(ActivityError::cancelled()),
        ),
    ];
    for (json, expected) in errors {
        assert_eq!(decode_workflow_error(json).unwrap(), expected);
        assert_eq!(encode_workflow_error(&expected), json);
    }
    for json in [r#"{"b":[1,2.5,null],"a":"ü"}"#, "null", r#""text""#] {
        let v = decode_value(json).unwrap();
        assert_eq!(v, serde_json::from_str::<Value>(json).unwrap());
        assert_eq!(encode_value(&v), serde_json::to_string(&v).unwrap());
    }
    // Sub-millisecond parts are not stored (as version 1 did).
    let o = ActivityOptions {
        heartbeat_timeout: Some(Duration::from_micros(1500)),
        ..ActivityOptions::default()
    };
    let back = decode_options(&encode_options(&o)).unwrap();
    assert_eq!(back.heartbeat_timeout, Some(Duration::from_millis(1)));
}

#[test]
fn an_unknown_event_asks_for_an_upgrade() {
    let e = decode_event(r#"{"event":"workflow_paused","by":"ops"}"#).unwrap_err();
    assert!(
        matches!(&e, FormatError::UnknownEvent { name } if name == "workflow_paused"),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(msg.contains("`workflow_paused`"), "{msg}");
    assert!(msg.contains("newer duraflow"), "{msg}");
    assert!(msg.contains("Upgrade duraflow"), "{msg}");
}

#[test]
fn damaged_json_says_what_could_not_be_read() {
    let cases = [
        // A known event with a field of the wrong type.
        (
            r#"{"event":"activity_started","activity_seq":"one","attempt":1,"worker":"w"}"#,
            "history event `activity_started`",
        ),
        // A known event with a field missing.
        (r#"{"event":"timer_fired"}"#, "history event `timer_fired`"),
        // Cut short.
        (
            r#"{"event":"activity_completed","activity_seq":1,"res"#,
            "a history event",
        ),
        // Not an event at all.
        ("[1, 2]", "a history event"),
        ("", "a history event"),
        (r#"{"event": 7}"#, "a history event"),
    ];
    for (payload, what) in cases {
        let e = decode_event(payload).unwrap_err();
        assert!(matches!(e, FormatError::Damaged { .. }), "{payload}: {e:?}");
        let msg = e.to_string();
        assert!(msg.starts_with(what), "{payload}: {msg}");
        assert!(msg.contains("damaged"), "{payload}: {msg}");
    }
    let e = decode_options(r#"{"start_to_close_timeout":"30s"}"#).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("an activity task's options cannot be read"),
        "{e}"
    );
    let e = decode_workflow_error(r#"{"type":"exploded"}"#).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("a workflow's error cannot be read"),
        "{e}"
    );
    let e = decode_value("{").unwrap_err();
    assert!(
        e.to_string().starts_with("a JSON payload cannot be read"),
        "{e}"
    );
}

/// Every stored string of the database that the version-1 build wrote
/// (`tests/fixtures/v1-histories.db` in the workspace, see `tests/format_fixtures.rs`) decodes and
/// re-encodes byte for byte.
#[test]
fn the_v1_fixture_database_reencodes_byte_identical() {
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/v1-histories.db");
    assert!(fixture.exists(), "{} is missing", fixture.display());
    // A copy: opening the WAL-mode fixture in place would create files beside it.
    let copy = std::env::temp_dir().join(format!(
        "duraflow-format-v1-{}-{:?}.db",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::copy(&fixture, &copy).unwrap();
    let conn = rusqlite::Connection::open(&copy).unwrap();
    let rows = |sql: &str| -> Vec<(String, Option<String>)> {
        let mut st = conn.prepare(sql).unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    let events = rows("SELECT payload, event_type FROM history ORDER BY workflow_id, seq");
    assert!(events.len() > 40, "{} events", events.len());
    let mut seen = std::collections::BTreeSet::new();
    for (payload, name) in &events {
        let kind = decode_event(payload).unwrap_or_else(|e| panic!("{payload}: {e}"));
        assert_eq!(&encode_event(&kind), payload);
        assert_eq!(Some(event_name(&kind)), name.as_deref());
        seen.insert(event_name(&kind));
    }
    let mut ref_seqs = conn
        .prepare("SELECT payload, ref_seq FROM history")
        .unwrap();
    let pairs = ref_seqs
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?))
        })
        .unwrap();
    for pair in pairs {
        let (payload, stored) = pair.unwrap();
        assert_eq!(
            ref_seq(&decode_event(&payload).unwrap()),
            stored,
            "{payload}"
        );
    }
    assert!(seen.len() >= 15, "the fixture has most kinds: {seen:?}");
    let options = rows("SELECT options, input FROM activity_tasks");
    assert!(!options.is_empty());
    for (stored, input) in options {
        assert_eq!(encode_options(&decode_options(&stored).unwrap()), stored);
        let input = input.unwrap();
        assert_eq!(encode_value(&decode_value(&input).unwrap()), input);
    }
    for (status, result) in rows("SELECT status, result FROM workflows") {
        let Some(result) = result else { continue };
        let again = if status == "failed" {
            encode_workflow_error(&decode_workflow_error(&result).unwrap())
        } else {
            encode_value(&decode_value(&result).unwrap())
        };
        assert_eq!(again, result);
    }
    drop(ref_seqs);
    drop(conn);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", copy.display()));
    }
}
