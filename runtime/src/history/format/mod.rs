//! The stored format: the one place that says what the stores write into a database, and how it is
//! read back.
//!
//! The public types ([`EventKind`], [`ActivityError`], [`WorkflowError`], [`ActivityOptions`],
//! [`RetryPolicy`], [`CancellationType`], [`TimeoutKind`]) are free to change. The stores never
//! serialize them: they call the functions here, which convert each value to a private mirror type of
//! the current [`FORMAT_VERSION`] and serialize that. What a database holds therefore changes only when
//! this file changes, and only in the way its rule allows:
//!
//! - **The stored types of a version are frozen.** `StoredEventV1` and the other `...V1` types write
//!   exactly the JSON that version 1 wrote (field names, tags, renames, durations as whole
//!   milliseconds); the golden strings in the tests below pin it byte for byte, and
//!   `tests/fixtures/v1-histories.db` (workspace root) holds histories written by the version-1 build.
//!   Never edit a `...V1` type, its serde attributes, or a golden string to make a test pass.
//! - **A new version adds a new decoder.** A change of the stored JSON becomes version 2: new
//!   `...V2` types beside the old ones, `FORMAT_VERSION = 2`, the encoders write V2, and the decoders
//!   dispatch on the version the data was written with. The stores do not record a version yet (every
//!   database so far is version 1): version 2 must record it (e.g. `duraflow_meta` key
//!   `format_version`, absent meaning 1) before it writes anything new.
//! - **New events are additions, not a new version.** An event kind added after version 1 was
//!   released (`patch_marker`, `side_effect_marker`: see `added.rs`) gets its own frozen stored
//!   type beside `StoredEventV1`; the JSON of every existing event is unchanged, so the version
//!   stays 1. A build that predates an addition reports its name as an unknown event.
//! - **Old versions keep decoding forever.** The V1 types and their conversions to the public types
//!   stay, so a database written by any earlier release still reads. A public type that changes
//!   changes only the conversions here, never the stored types.
//!
//! A payload that cannot be read is a [`FormatError`] that names what could not be read and why; an
//! event name this build does not know (written by a newer release) says so. Nothing here panics on
//! stored data.
//!
//! Columns and their contents, version 1:
//!
//! | column | content |
//! | --- | --- |
//! | `history.event_type` | [`event_name`] |
//! | `history.ref_seq` | [`ref_seq`] |
//! | `history.payload` | [`encode_event`]: the event, internally tagged with `"event"` |
//! | `activity_tasks.options` | [`encode_options`] |
//! | `workflows.result` of a failed workflow | [`encode_workflow_error`] |
//! | `workflows.input`, `workflows.result` of a completed one, `activity_tasks.input`, `activity_tasks.heartbeat_details` | [`encode_value`]: the JSON as is (the stores still write these through `store::to_json`: the same bytes) |

use crate::definition::ActivityOptions;
use crate::error::{ActivityError, TimeoutKind, WorkflowError};
use crate::history::{CancellationType, EventKind};
use crate::retry::RetryPolicy;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::time::Duration;

/// The version of the stored format this build writes. See the module docs for the rule that goes
/// with it: stored types are frozen per version, a new version adds a new decoder, and old versions
/// keep decoding forever.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// Stored data that cannot be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FormatError {
    /// A history event whose name this build does not know.
    #[error(
        "unknown history event `{name}`: stored format version {FORMAT_VERSION}, which this build \
         reads, has no such event. Was it written by a newer duraflow? Upgrade duraflow to read it"
    )]
    UnknownEvent {
        /// The stored name.
        name: String,
    },
    /// A payload that is not valid JSON, or not the JSON its kind has.
    #[error("{what} cannot be read: {source} (the stored JSON is damaged, or not duraflow's)")]
    Damaged {
        /// What was being read, e.g. "history event `activity_scheduled`".
        what: Cow<'static, str>,
        /// Why it could not be read.
        source: serde_json::Error,
    },
}

// ---------------------------------------------------------------------------------------------
// Event names, as stored in `history.event_type` and in the payload's `"event"` tag.

pub(crate) mod names {
    pub(crate) const WORKFLOW_STARTED: &str = "workflow_started";
    pub(crate) const WORKFLOW_TASK_COMPLETED: &str = "workflow_task_completed";
    pub(crate) const ACTIVITY_SCHEDULED: &str = "activity_scheduled";
    pub(crate) const ACTIVITY_STARTED: &str = "activity_started";
    pub(crate) const ACTIVITY_COMPLETED: &str = "activity_completed";
    pub(crate) const ACTIVITY_FAILED: &str = "activity_failed";
    pub(crate) const ACTIVITY_TIMED_OUT: &str = "activity_timed_out";
    pub(crate) const ACTIVITY_CANCEL_REQUESTED: &str = "activity_cancel_requested";
    pub(crate) const ACTIVITY_CANCELLED: &str = "activity_cancelled";
    pub(crate) const LOCAL_ACTIVITY_MARKER: &str = "local_activity_marker";
    pub(crate) const TIMER_STARTED: &str = "timer_started";
    pub(crate) const TIMER_FIRED: &str = "timer_fired";
    pub(crate) const TIMER_CANCELLED: &str = "timer_cancelled";
    pub(crate) const WORKFLOW_CANCEL_REQUESTED: &str = "workflow_cancel_requested";
    pub(crate) const WORKFLOW_COMPLETED: &str = "workflow_completed";
    pub(crate) const WORKFLOW_FAILED: &str = "workflow_failed";
    pub(crate) const WORKFLOW_CANCELLED: &str = "workflow_cancelled";
    pub(crate) const PATCH_MARKER: &str = "patch_marker";
    pub(crate) const SIDE_EFFECT_MARKER: &str = "side_effect_marker";
    pub(crate) use super::children::CHILD_WORKFLOW_STARTED;

    /// Every name of version 1 (the `"event"` tags of `StoredEventV1`; a test checks they agree).
    pub(super) const ALL_V1: [&str; 17] = [
        WORKFLOW_STARTED,
        WORKFLOW_TASK_COMPLETED,
        ACTIVITY_SCHEDULED,
        ACTIVITY_STARTED,
        ACTIVITY_COMPLETED,
        ACTIVITY_FAILED,
        ACTIVITY_TIMED_OUT,
        ACTIVITY_CANCEL_REQUESTED,
        ACTIVITY_CANCELLED,
        LOCAL_ACTIVITY_MARKER,
        TIMER_STARTED,
        TIMER_FIRED,
        TIMER_CANCELLED,
        WORKFLOW_CANCEL_REQUESTED,
        WORKFLOW_COMPLETED,
        WORKFLOW_FAILED,
        WORKFLOW_CANCELLED,
    ];
}

/// The event's stored name.
pub(crate) fn event_name(kind: &EventKind) -> &'static str {
    use names::*;
    match kind {
        EventKind::WorkflowStarted { .. } => WORKFLOW_STARTED,
        EventKind::WorkflowTaskCompleted { .. } => WORKFLOW_TASK_COMPLETED,
        EventKind::ActivityScheduled { .. } => ACTIVITY_SCHEDULED,
        EventKind::ActivityStarted { .. } => ACTIVITY_STARTED,
        EventKind::ActivityCompleted { .. } => ACTIVITY_COMPLETED,
        EventKind::ActivityFailed { .. } => ACTIVITY_FAILED,
        EventKind::ActivityTimedOut { .. } => ACTIVITY_TIMED_OUT,
        EventKind::ActivityCancelRequested { .. } => ACTIVITY_CANCEL_REQUESTED,
        EventKind::ActivityCancelled { .. } => ACTIVITY_CANCELLED,
        EventKind::LocalActivityMarker { .. } => LOCAL_ACTIVITY_MARKER,
        EventKind::TimerStarted { .. } => TIMER_STARTED,
        EventKind::TimerFired { .. } => TIMER_FIRED,
        EventKind::TimerCancelled { .. } => TIMER_CANCELLED,
        EventKind::WorkflowCancelRequested { .. } => WORKFLOW_CANCEL_REQUESTED,
        EventKind::WorkflowCompleted { .. } => WORKFLOW_COMPLETED,
        EventKind::WorkflowFailed { .. } => WORKFLOW_FAILED,
        EventKind::WorkflowCancelled { .. } => WORKFLOW_CANCELLED,
        EventKind::PatchMarker { .. } => PATCH_MARKER,
        EventKind::SideEffectMarker { .. } => SIDE_EFFECT_MARKER,
        EventKind::SignalReceived { .. } => messages::SIGNAL_RECEIVED,
        EventKind::UpdateAccepted { .. } => messages::UPDATE_ACCEPTED,
        EventKind::UpdateCompleted { .. } => messages::UPDATE_COMPLETED,
        EventKind::WorkflowContinuedAsNew { .. } => runs::WORKFLOW_CONTINUED_AS_NEW,
        EventKind::RunContinued { .. } => runs::RUN_CONTINUED,
        EventKind::WorkflowReset { .. } => runs::WORKFLOW_RESET,
        EventKind::ChildWorkflowInitiated { .. } => children::CHILD_WORKFLOW_INITIATED,
        EventKind::ChildWorkflowStarted { .. } => children::CHILD_WORKFLOW_STARTED,
        EventKind::ChildWorkflowStartFailed { .. } => children::CHILD_WORKFLOW_START_FAILED,
        EventKind::ChildWorkflowCompleted { .. } => children::CHILD_WORKFLOW_COMPLETED,
        EventKind::ChildWorkflowFailed { .. } => children::CHILD_WORKFLOW_FAILED,
        EventKind::ChildWorkflowCancelled { .. } => children::CHILD_WORKFLOW_CANCELLED,
        EventKind::ChildWorkflowTerminated { .. } => children::CHILD_WORKFLOW_TERMINATED,
        EventKind::ChildWorkflowCancelRequested { .. } => children::CHILD_WORKFLOW_CANCEL_REQUESTED,
    }
}

/// Whether a stored name is that of a command: an event the workflow's own code produced, compared on
/// replay.
pub(crate) fn is_command_name(name: &str) -> bool {
    use names::*;
    matches!(
        name,
        ACTIVITY_SCHEDULED
            | ACTIVITY_CANCEL_REQUESTED
            | TIMER_STARTED
            | TIMER_CANCELLED
            | WORKFLOW_COMPLETED
            | WORKFLOW_FAILED
            | WORKFLOW_CANCELLED
            | PATCH_MARKER
            | SIDE_EFFECT_MARKER
            | messages::UPDATE_COMPLETED
            | runs::WORKFLOW_CONTINUED_AS_NEW
            | children::CHILD_WORKFLOW_INITIATED
            | children::CHILD_WORKFLOW_CANCEL_REQUESTED
    )
}

/// Whether a stored name is that of the marker that ends a workflow task's commands.
pub(crate) fn is_marker_name(name: &str) -> bool {
    name == names::WORKFLOW_TASK_COMPLETED
}

/// Whether a stored name is a command's or the marker's: what a workflow task itself writes.
pub(crate) fn is_command_or_marker_name(name: &str) -> bool {
    is_command_name(name) || is_marker_name(name)
}

/// The number an event concerns, stored in `history.ref_seq`: the activity's or the timer's; for a
/// message event, a hash of its request or update id ([`messages::id_ref`]), which a store looks up
/// before it compares the ids themselves.
pub(crate) fn ref_seq(kind: &EventKind) -> Option<i64> {
    match kind {
        EventKind::ActivityScheduled { activity_seq, .. }
        | EventKind::ActivityStarted { activity_seq, .. }
        | EventKind::ActivityCompleted { activity_seq, .. }
        | EventKind::ActivityFailed { activity_seq, .. }
        | EventKind::ActivityTimedOut { activity_seq, .. }
        | EventKind::ActivityCancelRequested { activity_seq }
        | EventKind::ActivityCancelled { activity_seq, .. }
        | EventKind::LocalActivityMarker { activity_seq, .. } => Some(*activity_seq as i64),
        EventKind::TimerStarted { timer_seq, .. }
        | EventKind::TimerFired { timer_seq }
        | EventKind::TimerCancelled { timer_seq } => Some(*timer_seq as i64),
        EventKind::WorkflowStarted { .. }
        | EventKind::WorkflowTaskCompleted { .. }
        | EventKind::WorkflowCancelRequested { .. }
        | EventKind::WorkflowCompleted { .. }
        | EventKind::WorkflowFailed { .. }
        | EventKind::WorkflowCancelled { .. }
        | EventKind::PatchMarker { .. }
        | EventKind::WorkflowContinuedAsNew { .. }
        | EventKind::RunContinued { .. }
        | EventKind::WorkflowReset { .. } => None,
        EventKind::SideEffectMarker {
            side_effect_seq, ..
        } => Some(*side_effect_seq as i64),
        EventKind::SignalReceived { request_id, .. } => Some(messages::id_ref(request_id)),
        EventKind::UpdateAccepted { update_id, .. }
        | EventKind::UpdateCompleted { update_id, .. } => Some(messages::id_ref(update_id)),
        other => children::child_seq(other).map(|s| s as i64),
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding and decoding, as the stores call them.

/// Serializes a stored type. It cannot fail: no stored type has a map with non-string keys, and a
/// JSON `Value` holds no non-finite number. Should it ever, the `null` written fails to decode with a
/// [`FormatError`] rather than stopping the writer.
fn to_string(v: &impl Serialize) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn damaged(what: impl Into<Cow<'static, str>>, source: serde_json::Error) -> FormatError {
    FormatError::Damaged {
        what: what.into(),
        source,
    }
}

/// The `history.payload` of an event.
pub(crate) fn encode_event(kind: &EventKind) -> String {
    // Every kind has a stored form in one of the three; were one missing, the `null` written
    // would fail to decode with a `FormatError` rather than stop the writer.
    match StoredEventV1::from_public(kind) {
        Some(stored) => to_string(&stored),
        None => match StoredAddedEventV1::from_public(kind) {
            Some(added) => to_string(&added),
            None => match runs::encode(kind) {
                Some(run) => run,
                None => children::encode(kind).unwrap_or_else(|| messages::encode(kind)),
            },
        },
    }
}

/// Reads a `history.payload`.
pub(crate) fn decode_event(payload: &str) -> Result<EventKind, FormatError> {
    if let Some(decoded) = messages::decode(payload) {
        return decoded;
    }
    if let Some(decoded) = runs::decode(payload) {
        return decoded;
    }
    if let Some(decoded) = children::decode(payload) {
        return decoded;
    }
    match serde_json::from_str::<StoredEventV1<'static>>(payload) {
        Ok(stored) => Ok(stored.into_public()),
        Err(source) => match added::decode(payload) {
            Some(decoded) => decoded,
            None => Err(explain_event_error(payload, source)),
        },
    }
}

/// Names the event a payload that did not decode claims to be, and tells an unknown name (a newer
/// release's event) apart from damage.
fn explain_event_error(payload: &str, source: serde_json::Error) -> FormatError {
    let tag = serde_json::from_str::<Value>(payload).ok().and_then(|v| {
        v.get("event")
            .and_then(Value::as_str)
            .map(|name| name.to_string())
    });
    match tag {
        Some(name)
            if !names::ALL_V1.contains(&name.as_str())
                && !added::NAMES.contains(&name.as_str())
                && !messages::ALL.contains(&name.as_str())
                && !runs::ALL.contains(&name.as_str())
                && !children::ALL.contains(&name.as_str()) =>
        {
            FormatError::UnknownEvent { name }
        }
        Some(name) => damaged(format!("history event `{name}`"), source),
        None => damaged("a history event", source),
    }
}

/// The `activity_tasks.options` of an activity task.
pub(crate) fn encode_options(options: &ActivityOptions) -> String {
    to_string(&StoredOptionsV1::from(options))
}

/// Reads an `activity_tasks.options`.
pub(crate) fn decode_options(stored: &str) -> Result<ActivityOptions, FormatError> {
    serde_json::from_str::<StoredOptionsV1<'static>>(stored)
        .map(IntoPublic::into_public)
        .map_err(|e| damaged("an activity task's options", e))
}

/// The `workflows.result` of a failed workflow.
pub(crate) fn encode_workflow_error(error: &WorkflowError) -> String {
    to_string(&StoredWorkflowErrorV1::from(error))
}

/// Reads the `workflows.result` of a failed workflow.
pub(crate) fn decode_workflow_error(stored: &str) -> Result<WorkflowError, FormatError> {
    serde_json::from_str::<StoredWorkflowErrorV1<'static>>(stored)
        .map(IntoPublic::into_public)
        .map_err(|e| damaged("a workflow's error", e))
}

/// The `activity_tasks.last_failure` of an activity waiting for its next attempt.
pub(crate) fn encode_activity_error(error: &ActivityError) -> String {
    to_string(&StoredActivityErrorV1::from(error))
}

/// Reads an `activity_tasks.last_failure`.
pub(crate) fn decode_activity_error(stored: &str) -> Result<ActivityError, FormatError> {
    serde_json::from_str::<StoredActivityErrorV1<'static>>(stored)
        .map(IntoPublic::into_public)
        .map_err(|e| damaged("an activity's last failure", e))
}

/// A JSON payload column (inputs, results, heartbeat details): the JSON as is.
#[allow(dead_code)] // The stores still write these columns with `store::to_json`, the same bytes.
pub(crate) fn encode_value(value: &Value) -> String {
    to_string(value)
}

/// Reads a JSON payload column.
#[allow(dead_code)] // The stores still read these columns with `serde_json`, the same parse.
pub(crate) fn decode_value(stored: &str) -> Result<Value, FormatError> {
    serde_json::from_str(stored).map_err(|e| damaged("a JSON payload", e))
}

mod added;
pub(crate) mod children;
pub(crate) mod messages;
mod runs;
#[cfg(test)]
mod tests;
mod v1;

use added::StoredAddedEventV1;
use v1::*;
