//! The stored form of the child-workflow events, added beside version 1 (like `messages.rs`):
//! new names with their own frozen stored types; every earlier history reads as it did. Never
//! edit a type here; a change becomes a new version. Golden strings below.

use super::v1::StoredWorkflowErrorV1;
use super::{damaged, to_string, FormatError, IntoPublic};
use crate::history::{EventKind, ParentClosePolicy};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;

pub(crate) const CHILD_WORKFLOW_INITIATED: &str = "child_workflow_initiated";
pub(crate) const CHILD_WORKFLOW_STARTED: &str = "child_workflow_started";
pub(crate) const CHILD_WORKFLOW_START_FAILED: &str = "child_workflow_start_failed";
pub(crate) const CHILD_WORKFLOW_COMPLETED: &str = "child_workflow_completed";
pub(crate) const CHILD_WORKFLOW_FAILED: &str = "child_workflow_failed";
pub(crate) const CHILD_WORKFLOW_CANCELLED: &str = "child_workflow_cancelled";
pub(crate) const CHILD_WORKFLOW_TERMINATED: &str = "child_workflow_terminated";
pub(crate) const CHILD_WORKFLOW_CANCEL_REQUESTED: &str = "child_workflow_cancel_requested";

/// Every child-workflow event name.
pub(super) const ALL: [&str; 8] = [
    CHILD_WORKFLOW_INITIATED,
    CHILD_WORKFLOW_STARTED,
    CHILD_WORKFLOW_START_FAILED,
    CHILD_WORKFLOW_COMPLETED,
    CHILD_WORKFLOW_FAILED,
    CHILD_WORKFLOW_CANCELLED,
    CHILD_WORKFLOW_TERMINATED,
    CHILD_WORKFLOW_CANCEL_REQUESTED,
];

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum StoredParentClosePolicyV1 {
    RequestCancel,
    Terminate,
    Abandon,
}

// The variant names are the stored tags.
#[allow(clippy::enum_variant_names)]
#[derive(Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum StoredChildEventV1<'a> {
    ChildWorkflowInitiated {
        child_seq: u64,
        workflow_type: Cow<'a, str>,
        workflow_id: Cow<'a, str>,
        task_queue: Cow<'a, str>,
        input: Cow<'a, Value>,
        parent_close_policy: StoredParentClosePolicyV1,
        execution_timeout_ms: Option<u64>,
    },
    ChildWorkflowStarted {
        child_seq: u64,
        workflow_id: Cow<'a, str>,
        run_id: Cow<'a, str>,
    },
    ChildWorkflowStartFailed {
        child_seq: u64,
        workflow_id: Cow<'a, str>,
    },
    ChildWorkflowCompleted {
        child_seq: u64,
        result: Cow<'a, Value>,
    },
    ChildWorkflowFailed {
        child_seq: u64,
        error: StoredWorkflowErrorV1<'a>,
    },
    ChildWorkflowCancelled {
        child_seq: u64,
    },
    ChildWorkflowTerminated {
        child_seq: u64,
        reason: Cow<'a, str>,
    },
    ChildWorkflowCancelRequested {
        child_seq: u64,
        workflow_id: Cow<'a, str>,
    },
}

/// The seq a child event concerns (its `history.ref_seq`); `None` for other events.
pub(super) fn child_seq(kind: &EventKind) -> Option<u64> {
    match kind {
        EventKind::ChildWorkflowInitiated { child_seq, .. }
        | EventKind::ChildWorkflowStarted { child_seq, .. }
        | EventKind::ChildWorkflowStartFailed { child_seq, .. }
        | EventKind::ChildWorkflowCompleted { child_seq, .. }
        | EventKind::ChildWorkflowFailed { child_seq, .. }
        | EventKind::ChildWorkflowCancelled { child_seq }
        | EventKind::ChildWorkflowTerminated { child_seq, .. }
        | EventKind::ChildWorkflowCancelRequested { child_seq, .. } => Some(*child_seq),
        _ => None,
    }
}

/// The payload of a child event; `None` for other events.
pub(super) fn encode(kind: &EventKind) -> Option<String> {
    use Cow::Borrowed as B;
    let stored = match kind {
        EventKind::ChildWorkflowInitiated {
            child_seq,
            workflow_type,
            workflow_id,
            task_queue,
            input,
            parent_close_policy,
            execution_timeout_ms,
        } => StoredChildEventV1::ChildWorkflowInitiated {
            child_seq: *child_seq,
            workflow_type: B(workflow_type),
            workflow_id: B(workflow_id),
            task_queue: B(task_queue),
            input: B(input),
            parent_close_policy: match parent_close_policy {
                ParentClosePolicy::RequestCancel => StoredParentClosePolicyV1::RequestCancel,
                ParentClosePolicy::Terminate => StoredParentClosePolicyV1::Terminate,
                ParentClosePolicy::Abandon => StoredParentClosePolicyV1::Abandon,
            },
            execution_timeout_ms: *execution_timeout_ms,
        },
        EventKind::ChildWorkflowStarted {
            child_seq,
            workflow_id,
            run_id,
        } => StoredChildEventV1::ChildWorkflowStarted {
            child_seq: *child_seq,
            workflow_id: B(workflow_id),
            run_id: B(run_id),
        },
        EventKind::ChildWorkflowStartFailed {
            child_seq,
            workflow_id,
        } => StoredChildEventV1::ChildWorkflowStartFailed {
            child_seq: *child_seq,
            workflow_id: B(workflow_id),
        },
        EventKind::ChildWorkflowCompleted { child_seq, result } => {
            StoredChildEventV1::ChildWorkflowCompleted {
                child_seq: *child_seq,
                result: B(result),
            }
        }
        EventKind::ChildWorkflowFailed { child_seq, error } => {
            StoredChildEventV1::ChildWorkflowFailed {
                child_seq: *child_seq,
                error: StoredWorkflowErrorV1::from(error),
            }
        }
        EventKind::ChildWorkflowCancelled { child_seq } => {
            StoredChildEventV1::ChildWorkflowCancelled {
                child_seq: *child_seq,
            }
        }
        EventKind::ChildWorkflowTerminated { child_seq, reason } => {
            StoredChildEventV1::ChildWorkflowTerminated {
                child_seq: *child_seq,
                reason: B(reason),
            }
        }
        EventKind::ChildWorkflowCancelRequested {
            child_seq,
            workflow_id,
        } => StoredChildEventV1::ChildWorkflowCancelRequested {
            child_seq: *child_seq,
            workflow_id: B(workflow_id),
        },
        _ => return None,
    };
    Some(to_string(&stored))
}

/// Reads a payload if it is a child event's (its tag, written first, says so); `None` otherwise.
pub(super) fn decode(payload: &str) -> Option<Result<EventKind, FormatError>> {
    let name = ALL
        .into_iter()
        .find(|n| payload.starts_with(&format!("{{\"event\":\"{n}\"")))?;
    let stored = match serde_json::from_str::<StoredChildEventV1<'static>>(payload) {
        Ok(s) => s,
        Err(e) => return Some(Err(damaged(format!("history event `{name}`"), e))),
    };
    Some(Ok(match stored {
        StoredChildEventV1::ChildWorkflowInitiated {
            child_seq,
            workflow_type,
            workflow_id,
            task_queue,
            input,
            parent_close_policy,
            execution_timeout_ms,
        } => EventKind::ChildWorkflowInitiated {
            child_seq,
            workflow_type: workflow_type.into_owned(),
            workflow_id: workflow_id.into_owned(),
            task_queue: task_queue.into_owned(),
            input: input.into_owned(),
            parent_close_policy: match parent_close_policy {
                StoredParentClosePolicyV1::RequestCancel => ParentClosePolicy::RequestCancel,
                StoredParentClosePolicyV1::Terminate => ParentClosePolicy::Terminate,
                StoredParentClosePolicyV1::Abandon => ParentClosePolicy::Abandon,
            },
            execution_timeout_ms,
        },
        StoredChildEventV1::ChildWorkflowStarted {
            child_seq,
            workflow_id,
            run_id,
        } => EventKind::ChildWorkflowStarted {
            child_seq,
            workflow_id: workflow_id.into_owned(),
            run_id: run_id.into_owned(),
        },
        StoredChildEventV1::ChildWorkflowStartFailed {
            child_seq,
            workflow_id,
        } => EventKind::ChildWorkflowStartFailed {
            child_seq,
            workflow_id: workflow_id.into_owned(),
        },
        StoredChildEventV1::ChildWorkflowCompleted { child_seq, result } => {
            EventKind::ChildWorkflowCompleted {
                child_seq,
                result: result.into_owned(),
            }
        }
        StoredChildEventV1::ChildWorkflowFailed { child_seq, error } => {
            EventKind::ChildWorkflowFailed {
                child_seq,
                error: error.into_public(),
            }
        }
        StoredChildEventV1::ChildWorkflowCancelled { child_seq } => {
            EventKind::ChildWorkflowCancelled { child_seq }
        }
        StoredChildEventV1::ChildWorkflowTerminated { child_seq, reason } => {
            EventKind::ChildWorkflowTerminated {
                child_seq,
                reason: reason.into_owned(),
            }
        }
        StoredChildEventV1::ChildWorkflowCancelRequested {
            child_seq,
            workflow_id,
        } => EventKind::ChildWorkflowCancelRequested {
            child_seq,
            workflow_id: workflow_id.into_owned(),
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::WorkflowError;
    use serde_json::json;

    /// The stored JSON of each child event, byte for byte: frozen once released.
    fn golden() -> Vec<(&'static str, EventKind)> {
        vec![
            (
                r#"{"event":"child_workflow_initiated","child_seq":3,"workflow_type":"charge","workflow_id":"charge-1","task_queue":"default","input":{"cents":5},"parent_close_policy":"abandon","execution_timeout_ms":60000}"#,
                EventKind::ChildWorkflowInitiated {
                    child_seq: 3,
                    workflow_type: "charge".into(),
                    workflow_id: "charge-1".into(),
                    task_queue: "default".into(),
                    input: json!({"cents": 5}),
                    parent_close_policy: ParentClosePolicy::Abandon,
                    execution_timeout_ms: Some(60_000),
                },
            ),
            (
                r#"{"event":"child_workflow_started","child_seq":3,"workflow_id":"charge-1","run_id":"r-9"}"#,
                EventKind::ChildWorkflowStarted {
                    child_seq: 3,
                    workflow_id: "charge-1".into(),
                    run_id: "r-9".into(),
                },
            ),
            (
                r#"{"event":"child_workflow_start_failed","child_seq":3,"workflow_id":"charge-1"}"#,
                EventKind::ChildWorkflowStartFailed {
                    child_seq: 3,
                    workflow_id: "charge-1".into(),
                },
            ),
            (
                r#"{"event":"child_workflow_completed","child_seq":3,"result":7}"#,
                EventKind::ChildWorkflowCompleted {
                    child_seq: 3,
                    result: json!(7),
                },
            ),
            (
                r#"{"event":"child_workflow_failed","child_seq":3,"error":{"type":"application","detail":{"error_type":"Declined","message":"no funds"}}}"#,
                EventKind::ChildWorkflowFailed {
                    child_seq: 3,
                    error: WorkflowError::application("Declined", "no funds"),
                },
            ),
            (
                r#"{"event":"child_workflow_cancelled","child_seq":3}"#,
                EventKind::ChildWorkflowCancelled { child_seq: 3 },
            ),
            (
                r#"{"event":"child_workflow_terminated","child_seq":3,"reason":"stuck"}"#,
                EventKind::ChildWorkflowTerminated {
                    child_seq: 3,
                    reason: "stuck".into(),
                },
            ),
            (
                r#"{"event":"child_workflow_cancel_requested","child_seq":3,"workflow_id":"charge-1"}"#,
                EventKind::ChildWorkflowCancelRequested {
                    child_seq: 3,
                    workflow_id: "charge-1".into(),
                },
            ),
        ]
    }

    #[test]
    fn child_events_keep_their_json_and_round_trip() {
        for (json, kind) in golden() {
            assert_eq!(super::super::encode_event(&kind), json);
            assert_eq!(super::super::decode_event(json).unwrap(), kind);
            assert!(ALL.contains(&kind.name()));
            assert_eq!(super::super::ref_seq(&kind), Some(3));
        }
    }

    #[test]
    fn only_the_initiation_and_the_cancel_request_are_commands() {
        for (_, kind) in golden() {
            assert_eq!(
                kind.is_command(),
                matches!(
                    kind,
                    EventKind::ChildWorkflowInitiated { .. }
                        | EventKind::ChildWorkflowCancelRequested { .. }
                )
            );
        }
    }

    #[test]
    fn a_damaged_child_event_says_which() {
        let e = super::super::decode_event(r#"{"event":"child_workflow_completed","result":1}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("child_workflow_completed"), "{e}");
    }
}
