//! The replay check: a recorded workflow task's commands against those the code produces now.
//!
//! What is compared, command by command in program order (inputs, options and results never are,
//! so fixing a typo in an input or a timeout does not hold running workflows):
//!
//! | command | compared |
//! |---|---|
//! | activity scheduled | kind, command number, activity type, local or not |
//! | activity cancel requested, timer cancelled | kind, command number |
//! | timer started | kind, command number, duration |
//! | child workflow initiated | kind, command number, workflow type (not its id, input or options) |
//! | child workflow cancel requested | kind, command number |
//! | side effect | kind, command number (not the value: replay reads the recorded one) |
//! | patch marker | kind, patch id (a recorded *deprecated* marker the code no longer produces is skipped) |
//! | workflow completed / failed / cancelled / continued as new | kind |

use crate::history::{EventKind, HistoryEvent};
use crate::workflow::context::WorkflowInfo;

/// Where a workflow's code and its recorded history part: the first mismatch the replay check
/// found, in words, with what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplayMismatch {
    /// The workflow id (a Replayer given a bare history says where it came from instead).
    pub workflow_id: String,
    /// The registered workflow name.
    pub workflow_type: String,
    /// The history event where code and history part: the recorded command, or (when the code
    /// produces a command the history does not have) the workflow-task marker it would go before.
    pub event_seq: u64,
    /// What the history recorded there, in words (`None`: nothing; the code produces more).
    pub recorded: Option<String>,
    /// What the code does there now, in words (`None`: nothing; the code no longer produces it).
    pub produced: Option<String>,
    /// What to do about it.
    pub fix: String,
}

impl std::fmt::Display for ReplayMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "workflow `{}` ({}) no longer replays: ",
            self.workflow_id, self.workflow_type
        )?;
        match (&self.recorded, &self.produced) {
            (Some(r), Some(p)) => write!(
                f,
                "history event #{} is \"{r}\", but the code now produces \"{p}\" at that point",
                self.event_seq
            )?,
            (None, Some(p)) => write!(
                f,
                "the code now produces \"{p}\", which the history does not have before event #{} (workflow task completed)",
                self.event_seq
            )?,
            (Some(r), None) => write!(
                f,
                "history event #{} is \"{r}\", but the code no longer produces it",
                self.event_seq
            )?,
            (None, None) => write!(f, "history event #{}", self.event_seq)?,
        }
        write!(f, ". Fix: {}", self.fix)
    }
}

/// The fix for a change that new runs should take and old runs should not.
pub(crate) const PATCH_FIX: &str = "if the change is meant, put it behind \
    `if ctx.patched(\"<change-id>\") { new code } else { old code }`, so that runs recorded \
    before it replay the old branch and new runs take the new one; otherwise deploy code that \
    matches the history";

fn same_command(a: &EventKind, b: &EventKind) -> bool {
    use EventKind::*;
    match (a, b) {
        (
            ActivityScheduled {
                activity_seq: s1,
                activity_type: t1,
                local: l1,
                ..
            },
            ActivityScheduled {
                activity_seq: s2,
                activity_type: t2,
                local: l2,
                ..
            },
        ) => s1 == s2 && t1 == t2 && l1 == l2,
        (
            ActivityCancelRequested { activity_seq: a },
            ActivityCancelRequested { activity_seq: b },
        ) => a == b,
        // Within one task both are the task's time plus the duration: equal times, equal durations.
        (
            TimerStarted {
                timer_seq: a,
                fire_at_ms: fa,
            },
            TimerStarted {
                timer_seq: b,
                fire_at_ms: fb,
            },
        ) => a == b && fa == fb,
        (TimerCancelled { timer_seq: a }, TimerCancelled { timer_seq: b }) => a == b,
        (
            ChildWorkflowInitiated {
                child_seq: s1,
                workflow_type: t1,
                ..
            },
            ChildWorkflowInitiated {
                child_seq: s2,
                workflow_type: t2,
                ..
            },
        ) => s1 == s2 && t1 == t2,
        (
            ChildWorkflowCancelRequested { child_seq: a, .. },
            ChildWorkflowCancelRequested { child_seq: b, .. },
        ) => a == b,
        (UpdateCompleted { update_id: a, .. }, UpdateCompleted { update_id: b, .. }) => a == b,
        (PatchMarker { patch_id: a, .. }, PatchMarker { patch_id: b, .. }) => a == b,
        (
            SideEffectMarker {
                side_effect_seq: a, ..
            },
            SideEffectMarker {
                side_effect_seq: b, ..
            },
        ) => a == b,
        (WorkflowCompleted { .. }, WorkflowCompleted { .. })
        | (WorkflowFailed { .. }, WorkflowFailed { .. })
        | (WorkflowCancelled {}, WorkflowCancelled {})
        | (WorkflowContinuedAsNew { .. }, WorkflowContinuedAsNew { .. }) => true,
        _ => false,
    }
}

/// A command in words, with a timer's duration (from the task's time `task_ms`).
pub(crate) fn words(kind: &EventKind, task_ms: i64) -> String {
    match kind {
        EventKind::TimerStarted {
            timer_seq,
            fire_at_ms,
        } => format!(
            "timer #{timer_seq} started ({})",
            human_ms(fire_at_ms.saturating_sub(task_ms))
        ),
        k => k.describe(),
    }
}

/// `1d2h`, `5m30s`, `250ms`: a duration as the options write it.
pub(crate) fn human_ms(ms: i64) -> String {
    if ms <= 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, len) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if rest >= len {
            out.push_str(&format!("{}{unit}", rest / len));
            rest %= len;
        }
    }
    out
}

/// The fix for a mismatch between `recorded` and `produced` (either may be missing).
fn fix_for(recorded: Option<&EventKind>, produced: Option<&EventKind>) -> String {
    match (recorded, produced) {
        (Some(EventKind::PatchMarker { patch_id, .. }), _) => format!(
            "this run passed `ctx.patched(\"{patch_id}\")` at this point: keep that call where \
             it was (or write `ctx.deprecate_patch(\"{patch_id}\")` there once no run from before \
             the patch is left)"
        ),
        (_, Some(EventKind::PatchMarker { patch_id, .. })) => format!(
            "the code now calls `ctx.patched(\"{patch_id}\")` before a command the history \
             recorded without it; call it where the changed code begins"
        ),
        (Some(EventKind::SideEffectMarker { .. }), _)
        | (_, Some(EventKind::SideEffectMarker { .. })) => {
            format!("a `ctx.side_effect(..)` was added, removed or moved; {PATCH_FIX}")
        }
        _ => PATCH_FIX.to_string(),
    }
}

/// Checks a recorded task's commands (`recorded`, ended by `marker`) against those the code
/// produced; the first mismatch, if any.
pub(crate) fn check_commands(
    info: &WorkflowInfo,
    produced: &[EventKind],
    recorded: &[&HistoryEvent],
    marker: &HistoryEvent,
) -> Result<(), Box<ReplayMismatch>> {
    let task_ms = match marker.kind {
        EventKind::WorkflowTaskCompleted { task_time_ms, .. } => task_time_ms,
        _ => marker.time_ms,
    };
    // A deprecated patch's marker replays whether or not the code still calls deprecate_patch.
    let recorded: Vec<&HistoryEvent> = recorded
        .iter()
        .copied()
        .filter(|r| match &r.kind {
            EventKind::PatchMarker {
                patch_id,
                deprecated: true,
            } => produced
                .iter()
                .any(|p| matches!(p, EventKind::PatchMarker { patch_id: q, .. } if q == patch_id)),
            _ => true,
        })
        .collect();
    let n = produced.len().max(recorded.len());
    for i in 0..n {
        let (p, r) = (produced.get(i), recorded.get(i));
        if let (Some(p), Some(r)) = (p, r) {
            if same_command(p, &r.kind) {
                continue;
            }
        }
        return Err(Box::new(ReplayMismatch {
            workflow_id: info.workflow_id.clone(),
            workflow_type: info.workflow_type.clone(),
            event_seq: r.map_or(marker.seq, |r| r.seq),
            recorded: r.map(|r| words(&r.kind, task_ms)),
            produced: p.map(|p| words(p, task_ms)),
            fix: fix_for(r.map(|r| &r.kind), p),
        }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn info() -> WorkflowInfo {
        WorkflowInfo {
            workflow_id: "w".into(),
            run_id: "r".into(),
            workflow_type: "t".into(),
            task_queue: "q".into(),
            history_length: 0,
            previous_run_id: None,
        }
    }

    fn ev(seq: u64, kind: EventKind) -> HistoryEvent {
        HistoryEvent {
            seq,
            time_ms: 0,
            kind,
        }
    }

    fn marker(seq: u64) -> HistoryEvent {
        ev(
            seq,
            EventKind::WorkflowTaskCompleted {
                processed_through: 1,
                task_time_ms: 1_000,
            },
        )
    }

    fn timer(seq: u64, secs: i64) -> EventKind {
        EventKind::TimerStarted {
            timer_seq: seq,
            fire_at_ms: 1_000 + secs * 1_000,
        }
    }

    fn activity(seq: u64, t: &str, input: i64) -> EventKind {
        EventKind::ActivityScheduled {
            activity_seq: seq,
            activity_type: t.into(),
            input: json!(input),
            options: Default::default(),
            task_queue: "q".into(),
            local: false,
            cancellation_type: Default::default(),
        }
    }

    fn check(produced: &[EventKind], recorded: &[EventKind]) -> Result<(), Box<ReplayMismatch>> {
        let rec: Vec<HistoryEvent> = recorded
            .iter()
            .enumerate()
            .map(|(i, k)| ev(2 + i as u64, k.clone()))
            .collect();
        let refs: Vec<&HistoryEvent> = rec.iter().collect();
        check_commands(&info(), produced, &refs, &marker(2 + rec.len() as u64))
    }

    #[test]
    fn inputs_are_not_compared_types_are() {
        assert!(check(&[activity(1, "a", 1)], &[activity(1, "a", 2)]).is_ok());
        let m = check(&[activity(1, "b", 1)], &[activity(1, "a", 1)]).unwrap_err();
        assert_eq!(m.event_seq, 2);
        assert_eq!(m.recorded.as_deref(), Some("activity scheduled #1 of `a`"));
        assert_eq!(m.produced.as_deref(), Some("activity scheduled #1 of `b`"));
        assert!(m.to_string().contains("ctx.patched("), "{m}");
    }

    #[test]
    fn child_workflows_compare_by_number_and_type_not_id_or_input() {
        let child = |seq: u64, t: &str, id: &str, input: i64| EventKind::ChildWorkflowInitiated {
            child_seq: seq,
            workflow_type: t.into(),
            workflow_id: id.into(),
            task_queue: "q".into(),
            input: json!(input),
            parent_close_policy: Default::default(),
            execution_timeout_ms: None,
        };
        assert!(check(&[child(1, "pay", "a", 1)], &[child(1, "pay", "b", 2)]).is_ok());
        let m = check(&[child(1, "ship", "a", 1)], &[child(1, "pay", "a", 1)]).unwrap_err();
        assert_eq!(
            m.recorded.as_deref(),
            Some("child workflow #1 of `pay` initiated")
        );
        assert_eq!(
            m.produced.as_deref(),
            Some("child workflow #1 of `ship` initiated")
        );
        assert!(check(&[child(2, "pay", "a", 1)], &[child(1, "pay", "a", 1)]).is_err());
        let cancel = |seq: u64| EventKind::ChildWorkflowCancelRequested {
            child_seq: seq,
            workflow_id: "a".into(),
        };
        assert!(check(&[cancel(1)], &[cancel(1)]).is_ok());
        assert!(check(&[cancel(2)], &[cancel(1)]).is_err());
        // A child started where the history has an activity: a mismatch.
        assert!(check(&[child(1, "pay", "a", 1)], &[activity(1, "pay", 1)]).is_err());
    }

    #[test]
    fn timer_durations_are_compared_in_words() {
        assert!(check(&[timer(1, 5)], &[timer(1, 5)]).is_ok());
        let m = check(&[timer(1, 90)], &[timer(1, 5)]).unwrap_err();
        assert_eq!(m.recorded.as_deref(), Some("timer #1 started (5s)"));
        assert_eq!(m.produced.as_deref(), Some("timer #1 started (1m30s)"));
    }

    #[test]
    fn missing_and_extra_commands_name_the_event() {
        let m = check(&[], &[timer(1, 5)]).unwrap_err();
        assert_eq!((m.event_seq, m.produced), (2, None));
        let m = check(&[timer(1, 5), timer(2, 5)], &[timer(1, 5)]).unwrap_err();
        assert_eq!(m.event_seq, 3, "the marker the extra command would precede");
        assert_eq!(m.recorded, None);
        assert!(m.to_string().contains("before event #3"), "{m}");
    }

    #[test]
    fn patch_markers_compare_by_id_and_deprecated_ones_may_go() {
        let patch = |id: &str, deprecated| EventKind::PatchMarker {
            patch_id: id.into(),
            deprecated,
        };
        assert!(check(&[patch("p", true)], &[patch("p", false)]).is_ok());
        assert!(check(&[timer(1, 5)], &[patch("p", true), timer(1, 5)]).is_ok());
        let m = check(&[timer(1, 5)], &[patch("p", false), timer(1, 5)]).unwrap_err();
        assert!(m.fix.contains("ctx.patched(\"p\")"), "{}", m.fix);
        assert!(check(&[patch("q", false)], &[patch("p", false)]).is_err());
    }

    #[test]
    fn durations_read_like_options() {
        assert_eq!(human_ms(250), "250ms");
        assert_eq!(human_ms(90_000), "1m30s");
        assert_eq!(human_ms(30 * 86_400_000), "30d");
        assert_eq!(human_ms(0), "0s");
    }
}
