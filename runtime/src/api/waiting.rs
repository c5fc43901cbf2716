//! Why a workflow waits: `describe`'s poller information and notes, from the workers' poller
//! heartbeats (Temporal's "no pollers").

use crate::store::{PollKind, PollerRecord, Pollers, Store, WorkflowDescription, WorkflowStatus};
use std::collections::HashMap;
use std::time::Duration;

/// A worker whose last poller heartbeat is older than this no longer counts as polling (workers
/// record one every 10 s while they run).
pub(crate) const POLLER_STALE_AFTER: Duration = Duration::from_secs(60);

/// Fills in the description's pollers (its own and its pending activities') and its notes, as of
/// `now_ms`.
pub(crate) async fn explain(
    store: &Store,
    d: &mut WorkflowDescription,
    now_ms: i64,
) -> crate::Result<()> {
    if d.status != WorkflowStatus::Running {
        return Ok(());
    }
    let mut by_queue: HashMap<String, Vec<PollerRecord>> = HashMap::new();
    let mut queues: Vec<&str> = vec![d.task_queue.as_str()];
    queues.extend(d.pending_activities.iter().map(|a| a.task_queue.as_str()));
    for q in queues {
        if !by_queue.contains_key(q) {
            by_queue.insert(q.to_string(), store.backend.pollers(q).await?);
        }
    }
    let records = |q: &str| by_queue.get(q).map(Vec::as_slice).unwrap_or(&[]);
    d.pollers = Pollers::of(records(&d.task_queue), PollKind::Workflow, &d.workflow_type);
    for a in &mut d.pending_activities {
        a.pollers = Pollers::of(records(&a.task_queue), PollKind::Activity, &a.activity_type);
    }
    let mut notes = Vec::new();
    if let Some(t) = d.pending_task.as_ref().filter(|t| t.state == "pending") {
        if let Some(why) = no_worker(
            &d.pollers,
            "workflow",
            &d.workflow_type,
            &d.task_queue,
            now_ms,
        ) {
            notes.push(format!(
                "its workflow task has waited {} for a worker: {why}",
                age(now_ms.saturating_sub(t.due_ms))
            ));
        }
    }
    for a in d.pending_activities.iter().filter(|a| a.state == "pending") {
        if let Some(why) = no_worker(
            &a.pollers,
            "activity",
            &a.activity_type,
            &a.task_queue,
            now_ms,
        ) {
            let waited = if a.due_ms <= now_ms {
                format!(
                    "has waited {} for a worker",
                    age(now_ms.saturating_sub(a.due_ms))
                )
            } else {
                format!("is due in {}", age(a.due_ms.saturating_sub(now_ms)))
            };
            notes.push(format!(
                "activity #{} (`{}`) {waited}: {why}",
                a.activity_seq, a.activity_type
            ));
        }
    }
    d.notes = notes;
    Ok(())
}

/// Why no worker will take a task of this kind and type from this queue, if none will.
fn no_worker(
    pollers: &Pollers,
    kind: &str,
    type_name: &str,
    queue: &str,
    now_ms: i64,
) -> Option<String> {
    let stale = POLLER_STALE_AFTER.as_millis() as i64;
    let recent = |t: Option<i64>| t.is_some_and(|t| now_ms.saturating_sub(t) <= stale);
    if recent(pollers.type_last_poll_ms) {
        return None;
    }
    let last = |t: Option<i64>| match t {
        Some(t) => format!("last {} ago", age(now_ms.saturating_sub(t))),
        None => "never".to_string(),
    };
    Some(if !recent(pollers.queue_last_poll_ms) {
        format!(
            "no pollers: no worker has polled task queue `{queue}` recently ({}); start a worker that registers {kind} `{type_name}` on that queue",
            last(pollers.queue_last_poll_ms)
        )
    } else {
        format!(
            "no worker serves {kind} type `{type_name}`: workers poll task queue `{queue}`, but none that registers it has ({}); register `{type_name}` in a worker of that queue",
            last(pollers.type_last_poll_ms)
        )
    })
}

/// A duration, for people: `850ms`, `12s`, `3m 4s`, `2h 5m`.
fn age(ms: i64) -> String {
    let ms = ms.max(0);
    match ms {
        0..=999 => format!("{ms}ms"),
        1_000..=59_999 => format!("{}s", ms / 1000),
        60_000..=3_599_999 => format!("{}m {}s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{}h {}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000_000;

    #[test]
    fn no_worker_says_which_is_missing() {
        let served = Pollers {
            queue_last_poll_ms: Some(NOW - 5_000),
            type_last_poll_ms: Some(NOW - 5_000),
        };
        assert_eq!(no_worker(&served, "workflow", "w", "q", NOW), None);
        let other_types = Pollers {
            type_last_poll_ms: None,
            ..served.clone()
        };
        let why = no_worker(&other_types, "workflow", "w", "q", NOW).unwrap();
        assert!(why.contains("no worker serves workflow type `w`"), "{why}");
        let nobody = Pollers::default();
        let why = no_worker(&nobody, "activity", "a", "q", NOW).unwrap();
        assert!(why.starts_with("no pollers"), "{why}");
        assert!(why.contains("(never)"), "{why}");
        let gone = Pollers {
            queue_last_poll_ms: Some(NOW - 120_000),
            type_last_poll_ms: Some(NOW - 120_000),
        };
        let why = no_worker(&gone, "activity", "a", "q", NOW).unwrap();
        assert!(why.contains("last 2m 0s ago"), "{why}");
    }

    #[test]
    fn ages_read_as_people_say_them() {
        assert_eq!(age(850), "850ms");
        assert_eq!(age(12_400), "12s");
        assert_eq!(age(184_000), "3m 4s");
        assert_eq!(age(7_500_000), "2h 5m");
        assert_eq!(age(-5), "0ms");
    }
}
