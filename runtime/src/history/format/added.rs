//! Events added to stored format version 1 after its release: new names with their own frozen
//! stored types, beside `StoredEventV1` (whose events keep their exact JSON). Never edit a type
//! here either; a change of one becomes a new version, as the module docs say.

use super::*;

/// Every name this file adds.
pub(super) const NAMES: [&str; 2] = [names::PATCH_MARKER, names::SIDE_EFFECT_MARKER];

#[derive(Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(super) enum StoredAddedEventV1<'a> {
    PatchMarker {
        patch_id: Cow<'a, str>,
        deprecated: bool,
    },
    SideEffectMarker {
        side_effect_seq: u64,
        value: Cow<'a, Value>,
    },
}

impl<'a> StoredAddedEventV1<'a> {
    /// The stored form of an event this file adds; `None` for the others.
    pub(super) fn from_public(kind: &'a EventKind) -> Option<Self> {
        Some(match kind {
            EventKind::PatchMarker {
                patch_id,
                deprecated,
            } => StoredAddedEventV1::PatchMarker {
                patch_id: Cow::Borrowed(patch_id),
                deprecated: *deprecated,
            },
            EventKind::SideEffectMarker {
                side_effect_seq,
                value,
            } => StoredAddedEventV1::SideEffectMarker {
                side_effect_seq: *side_effect_seq,
                value: Cow::Borrowed(value),
            },
            _ => return None,
        })
    }
}

/// Reads a payload whose tag is one of [`NAMES`]; `None` for any other payload.
pub(super) fn decode(payload: &str) -> Option<Result<EventKind, FormatError>> {
    let tag = serde_json::from_str::<Value>(payload)
        .ok()?
        .get("event")?
        .as_str()?
        .to_string();
    if !NAMES.contains(&tag.as_str()) {
        return None;
    }
    Some(
        match serde_json::from_str::<StoredAddedEventV1<'static>>(payload) {
            Ok(StoredAddedEventV1::PatchMarker {
                patch_id,
                deprecated,
            }) => Ok(EventKind::PatchMarker {
                patch_id: patch_id.into_owned(),
                deprecated,
            }),
            Ok(StoredAddedEventV1::SideEffectMarker {
                side_effect_seq,
                value,
            }) => Ok(EventKind::SideEffectMarker {
                side_effect_seq,
                value: value.into_owned(),
            }),
            Err(source) => Err(damaged(format!("history event `{tag}`"), source)),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The JSON these events are stored as: frozen, byte for byte.
    fn golden() -> Vec<(&'static str, EventKind)> {
        vec![
            (
                r#"{"event":"patch_marker","patch_id":"new-pricing","deprecated":false}"#,
                EventKind::PatchMarker {
                    patch_id: "new-pricing".into(),
                    deprecated: false,
                },
            ),
            (
                r#"{"event":"side_effect_marker","side_effect_seq":3,"value":{"token":7}}"#,
                EventKind::SideEffectMarker {
                    side_effect_seq: 3,
                    value: json!({"token": 7}),
                },
            ),
        ]
    }

    #[test]
    fn added_events_encode_and_decode_byte_identical() {
        for (json, kind) in golden() {
            assert_eq!(encode_event(&kind), json);
            assert_eq!(decode_event(json).unwrap(), kind);
            assert!(kind.is_command(), "{json}");
            assert_eq!(event_name(&kind), kind.name());
        }
        let names: Vec<&str> = golden().iter().map(|(_, k)| event_name(k)).collect();
        assert_eq!(names, NAMES);
    }

    #[test]
    fn a_damaged_added_event_names_itself() {
        let e = decode_event(r#"{"event":"patch_marker","patch_id":7}"#).unwrap_err();
        assert!(e.to_string().contains("`patch_marker`"), "{e}");
        let e = decode_event(r#"{"event":"unsupported"}"#).unwrap_err();
        assert!(matches!(e, FormatError::UnknownEvent { .. }), "{e}");
        let e = decode_event(r#"{"event":"signal_from_the_future"}"#).unwrap_err();
        assert!(matches!(e, FormatError::UnknownEvent { .. }), "{e}");
    }

    #[test]
    fn only_side_effects_have_a_ref_seq() {
        let [patch, side] = &golden()[..] else {
            unreachable!()
        };
        assert_eq!(ref_seq(&patch.1), None);
        assert_eq!(ref_seq(&side.1), Some(3));
    }
}
