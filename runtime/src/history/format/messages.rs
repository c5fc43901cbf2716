//! The stored form of the message events (signals and updates), added beside version 1.
//!
//! These kinds are new names, not a change of a version-1 event: every history written before
//! them reads as it did, and a build without them reports their names as unknown events (asking
//! for an upgrade), as the rule of the format says. Like the `...V1` types, the types here are
//! frozen once released; their golden strings are in `tests.rs`.

use super::{damaged, to_string, FormatError};
use crate::history::EventKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;

pub(crate) const SIGNAL_RECEIVED: &str = "signal_received";
pub(crate) const UPDATE_ACCEPTED: &str = "update_accepted";
pub(crate) const UPDATE_COMPLETED: &str = "update_completed";

/// Every message event name.
pub(super) const ALL: [&str; 3] = [SIGNAL_RECEIVED, UPDATE_ACCEPTED, UPDATE_COMPLETED];

#[derive(Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum StoredMessageEventV1<'a> {
    SignalReceived {
        signal_name: Cow<'a, str>,
        input: Cow<'a, Value>,
        request_id: Cow<'a, str>,
    },
    UpdateAccepted {
        update_id: Cow<'a, str>,
        update_name: Cow<'a, str>,
        input: Cow<'a, Value>,
    },
    UpdateCompleted {
        update_id: Cow<'a, str>,
        outcome: StoredOutcomeV1<'a>,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum StoredOutcomeV1<'a> {
    Ok(Cow<'a, Value>),
    Err(Cow<'a, str>),
}

/// The `history.ref_seq` of a message event: a 63-bit FNV-1a hash of its request or update id, so
/// that a store finds an id's events with its index instead of reading every payload.
pub(crate) fn id_ref(id: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h >> 1) as i64
}

/// The payload of a message event. The caller hands only message events here.
pub(super) fn encode(kind: &EventKind) -> String {
    use Cow::Borrowed as B;
    let stored = match kind {
        EventKind::SignalReceived {
            signal_name,
            input,
            request_id,
        } => StoredMessageEventV1::SignalReceived {
            signal_name: B(signal_name),
            input: B(input),
            request_id: B(request_id),
        },
        EventKind::UpdateAccepted {
            update_id,
            update_name,
            input,
        } => StoredMessageEventV1::UpdateAccepted {
            update_id: B(update_id),
            update_name: B(update_name),
            input: B(input),
        },
        EventKind::UpdateCompleted { update_id, outcome } => {
            StoredMessageEventV1::UpdateCompleted {
                update_id: B(update_id),
                outcome: match outcome {
                    Ok(v) => StoredOutcomeV1::Ok(B(v)),
                    Err(e) => StoredOutcomeV1::Err(B(e)),
                },
            }
        }
        // Not a message event: version 1 stores it (see `encode_event`); `null` never decodes.
        _ => return "null".into(),
    };
    to_string(&stored)
}

/// Reads a payload if it is a message event's (its tag, which is written first, says so); `None`
/// for every other event.
pub(super) fn decode(payload: &str) -> Option<Result<EventKind, FormatError>> {
    let name = ALL
        .into_iter()
        .find(|n| payload.starts_with(&format!("{{\"event\":\"{n}\"")))?;
    Some(
        match serde_json::from_str::<StoredMessageEventV1<'static>>(payload) {
            Ok(StoredMessageEventV1::SignalReceived {
                signal_name,
                input,
                request_id,
            }) => Ok(EventKind::SignalReceived {
                signal_name: signal_name.into_owned(),
                input: input.into_owned(),
                request_id: request_id.into_owned(),
            }),
            Ok(StoredMessageEventV1::UpdateAccepted {
                update_id,
                update_name,
                input,
            }) => Ok(EventKind::UpdateAccepted {
                update_id: update_id.into_owned(),
                update_name: update_name.into_owned(),
                input: input.into_owned(),
            }),
            Ok(StoredMessageEventV1::UpdateCompleted { update_id, outcome }) => {
                Ok(EventKind::UpdateCompleted {
                    update_id: update_id.into_owned(),
                    outcome: match outcome {
                        StoredOutcomeV1::Ok(v) => Ok(v.into_owned()),
                        StoredOutcomeV1::Err(e) => Err(e.into_owned()),
                    },
                })
            }
            Err(e) => Err(damaged(format!("history event `{name}`"), e)),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The stored JSON of each message event, byte for byte: frozen once released.
    fn golden() -> Vec<(&'static str, EventKind)> {
        vec![
            (
                r#"{"event":"signal_received","signal_name":"Approve","input":{"by":"ann"},"request_id":"r-1"}"#,
                EventKind::SignalReceived {
                    signal_name: "Approve".into(),
                    input: json!({"by": "ann"}),
                    request_id: "r-1".into(),
                },
            ),
            (
                r#"{"event":"update_accepted","update_id":"u-1","update_name":"SetLimit","input":{"limit":5}}"#,
                EventKind::UpdateAccepted {
                    update_id: "u-1".into(),
                    update_name: "SetLimit".into(),
                    input: json!({"limit": 5}),
                },
            ),
            (
                r#"{"event":"update_completed","update_id":"u-1","outcome":{"ok":5}}"#,
                EventKind::UpdateCompleted {
                    update_id: "u-1".into(),
                    outcome: Ok(json!(5)),
                },
            ),
            (
                r#"{"event":"update_completed","update_id":"u-2","outcome":{"err":"limit must be positive"}}"#,
                EventKind::UpdateCompleted {
                    update_id: "u-2".into(),
                    outcome: Err("limit must be positive".into()),
                },
            ),
        ]
    }

    #[test]
    fn message_events_keep_their_json_and_round_trip() {
        for (json, kind) in golden() {
            assert_eq!(super::super::encode_event(&kind), json);
            assert_eq!(super::super::decode_event(json).unwrap(), kind);
            assert!(ALL.contains(&kind.name()));
        }
    }

    #[test]
    fn only_the_update_answer_is_a_command() {
        for (_, kind) in golden() {
            assert_eq!(
                kind.is_command(),
                matches!(kind, EventKind::UpdateCompleted { .. })
            );
        }
    }

    #[test]
    fn a_damaged_message_event_says_which() {
        let e = super::super::decode_event(r#"{"event":"signal_received","input":1}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("signal_received"), "{e}");
    }

    #[test]
    fn ids_hash_to_stable_non_negative_refs() {
        assert_eq!(id_ref("r-1"), id_ref("r-1"));
        assert_ne!(id_ref("r-1"), id_ref("r-2"));
        assert!(id_ref("anything") >= 0);
        let ev = EventKind::SignalReceived {
            signal_name: "S".into(),
            input: json!(null),
            request_id: "r-1".into(),
        };
        assert_eq!(super::super::ref_seq(&ev), Some(id_ref("r-1")));
    }
}
