//! The stored form of the events that link the runs of one workflow id (continue-as-new, reset,
//! a reused id), added beside version 1. New names, not a change of a version-1 event: every
//! history written before them reads as it did. Frozen once released; golden strings below.

use super::{damaged, to_string, FormatError};
use crate::history::{CarriedSignal, EventKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;

pub(crate) const WORKFLOW_CONTINUED_AS_NEW: &str = "workflow_continued_as_new";
pub(crate) const RUN_CONTINUED: &str = "run_continued";
pub(crate) const WORKFLOW_RESET: &str = "workflow_reset";

/// Every name this file adds.
pub(super) const ALL: [&str; 3] = [WORKFLOW_CONTINUED_AS_NEW, RUN_CONTINUED, WORKFLOW_RESET];

#[derive(Serialize, Deserialize)]
struct StoredCarriedSignalV1<'a> {
    signal_name: Cow<'a, str>,
    input: Cow<'a, Value>,
    request_id: Cow<'a, str>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum StoredRunEventV1<'a> {
    WorkflowContinuedAsNew {
        new_run_id: Cow<'a, str>,
        workflow_type: Cow<'a, str>,
        task_queue: Cow<'a, str>,
        input: Cow<'a, Value>,
        carried_signals: Vec<StoredCarriedSignalV1<'a>>,
    },
    RunContinued {
        previous_run_id: Cow<'a, str>,
        cause: Cow<'a, str>,
    },
    WorkflowReset {
        previous_run_id: Cow<'a, str>,
        workflow_task: u64,
        reason: Cow<'a, str>,
    },
}

/// The payload of an event of this file; `None` for every other event.
pub(super) fn encode(kind: &EventKind) -> Option<String> {
    use Cow::Borrowed as B;
    let stored = match kind {
        EventKind::WorkflowContinuedAsNew {
            new_run_id,
            workflow_type,
            task_queue,
            input,
            carried_signals,
        } => StoredRunEventV1::WorkflowContinuedAsNew {
            new_run_id: B(new_run_id),
            workflow_type: B(workflow_type),
            task_queue: B(task_queue),
            input: B(input),
            carried_signals: carried_signals
                .iter()
                .map(|s| StoredCarriedSignalV1 {
                    signal_name: B(&s.signal_name),
                    input: B(&s.input),
                    request_id: B(&s.request_id),
                })
                .collect(),
        },
        EventKind::RunContinued {
            previous_run_id,
            cause,
        } => StoredRunEventV1::RunContinued {
            previous_run_id: B(previous_run_id),
            cause: B(cause),
        },
        EventKind::WorkflowReset {
            previous_run_id,
            workflow_task,
            reason,
        } => StoredRunEventV1::WorkflowReset {
            previous_run_id: B(previous_run_id),
            workflow_task: *workflow_task,
            reason: B(reason),
        },
        _ => return None,
    };
    Some(to_string(&stored))
}

/// Reads a payload if it is an event of this file (its tag, written first, says so); `None` for
/// every other event.
pub(super) fn decode(payload: &str) -> Option<Result<EventKind, FormatError>> {
    let name = ALL
        .into_iter()
        .find(|n| payload.starts_with(&format!("{{\"event\":\"{n}\"")))?;
    Some(
        match serde_json::from_str::<StoredRunEventV1<'static>>(payload) {
            Ok(StoredRunEventV1::WorkflowContinuedAsNew {
                new_run_id,
                workflow_type,
                task_queue,
                input,
                carried_signals,
            }) => Ok(EventKind::WorkflowContinuedAsNew {
                new_run_id: new_run_id.into_owned(),
                workflow_type: workflow_type.into_owned(),
                task_queue: task_queue.into_owned(),
                input: input.into_owned(),
                carried_signals: carried_signals
                    .into_iter()
                    .map(|s| CarriedSignal {
                        signal_name: s.signal_name.into_owned(),
                        input: s.input.into_owned(),
                        request_id: s.request_id.into_owned(),
                    })
                    .collect(),
            }),
            Ok(StoredRunEventV1::RunContinued {
                previous_run_id,
                cause,
            }) => Ok(EventKind::RunContinued {
                previous_run_id: previous_run_id.into_owned(),
                cause: cause.into_owned(),
            }),
            Ok(StoredRunEventV1::WorkflowReset {
                previous_run_id,
                workflow_task,
                reason,
            }) => Ok(EventKind::WorkflowReset {
                previous_run_id: previous_run_id.into_owned(),
                workflow_task,
                reason: reason.into_owned(),
            }),
            Err(e) => Err(damaged(format!("history event `{name}`"), e)),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The stored JSON of each event of this file, byte for byte: frozen once released.
    fn golden() -> Vec<(&'static str, EventKind)> {
        vec![
            (
                r#"{"event":"workflow_continued_as_new","new_run_id":"r2","workflow_type":"loop","task_queue":"default","input":[100,4950],"carried_signals":[{"signal_name":"Add","input":{"n":1},"request_id":"q-1"}]}"#,
                EventKind::WorkflowContinuedAsNew {
                    new_run_id: "r2".into(),
                    workflow_type: "loop".into(),
                    task_queue: "default".into(),
                    input: json!([100, 4950]),
                    carried_signals: vec![CarriedSignal {
                        signal_name: "Add".into(),
                        input: json!({"n": 1}),
                        request_id: "q-1".into(),
                    }],
                },
            ),
            (
                r#"{"event":"run_continued","previous_run_id":"r1","cause":"continue_as_new"}"#,
                EventKind::RunContinued {
                    previous_run_id: "r1".into(),
                    cause: "continue_as_new".into(),
                },
            ),
            (
                r#"{"event":"workflow_reset","previous_run_id":"r1","workflow_task":2,"reason":"bad deploy"}"#,
                EventKind::WorkflowReset {
                    previous_run_id: "r1".into(),
                    workflow_task: 2,
                    reason: "bad deploy".into(),
                },
            ),
        ]
    }

    #[test]
    fn run_events_keep_their_json_and_round_trip() {
        for (json, kind) in golden() {
            assert_eq!(super::super::encode_event(&kind), json);
            assert_eq!(super::super::decode_event(json).unwrap(), kind);
            assert!(ALL.contains(&kind.name()));
            assert_eq!(
                kind.is_command(),
                matches!(kind, EventKind::WorkflowContinuedAsNew { .. }),
                "only continue-as-new is the code's own command"
            );
        }
    }

    #[test]
    fn a_damaged_run_event_says_which() {
        let e = super::super::decode_event(r#"{"event":"run_continued","cause":1}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("run_continued"), "{e}");
    }
}
