//! The SQLite store's message transitions: signals, signal-with-start, accepted updates. Each
//! reads the facts, asks the engine (`engine::signal`, `engine::update`), and applies its plan.

use super::apply::{apply, workflow_facts};
use super::exec;
use super::now_ms;
use crate::engine::signal::{self as signal_engine, DirectClaim, NewSignal};
use crate::engine::start as start_engine;
use crate::engine::update::{self as update_engine, NewUpdate};
use crate::error::{Error, Result};
use crate::history::format;
use crate::store::{closed, to_json, NewWorkflow, SignalOutcome};
use rusqlite::{params, Connection};

/// Whether the history of `workflow_id` has a signal with this request id.
fn signal_recorded(conn: &Connection, workflow_id: &str, request_id: &str) -> Result<bool> {
    let mut st = conn.prepare_cached(
        // The partial index `history_signals` (its literal event type is what makes it usable;
        // without statistics SQLite would rather read the workflow's whole history by its key).
        "SELECT seq, payload FROM history INDEXED BY history_signals
          WHERE workflow_id = ?1 AND ref_seq = ?2 AND event_type = 'signal_received'",
    )?;
    let rows = st.query_map(
        params![workflow_id, format::messages::id_ref(request_id)],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
    )?;
    crate::store::signal_among(rows.map(|r| r.map_err(Into::into)), workflow_id, request_id)
}

/// Inserts a new workflow's row and applies its start plan; false if the id exists.
pub(super) fn create(conn: &Connection, wf: &NewWorkflow, now: i64) -> Result<bool> {
    let inserted = exec(
        conn,
        "INSERT INTO workflows(workflow_id, run_id, workflow_type, task_queue, status, input,
             next_event_seq, created_ms)
         VALUES (?1, ?2, ?3, ?4, 'running', ?5, 1, ?6)
         ON CONFLICT(workflow_id) DO NOTHING",
        params![
            wf.workflow_id,
            wf.run_id,
            wf.workflow_type,
            wf.task_queue,
            to_json(&wf.input),
            now
        ],
    )?;
    if inserted == 0 {
        return Ok(false);
    }
    apply(conn, &mut start_engine::start(wf, now))?;
    Ok(true)
}

/// `StoreBackend::start_workflow`: the row inserted when the id is free, else the engine's
/// decision applied.
pub(super) fn start(
    conn: &Connection,
    wf: &NewWorkflow,
    policy: start_engine::StartPolicy,
    now: i64,
) -> Result<start_engine::StartOutcome> {
    let started = start_engine::StartOutcome {
        started: true,
        run_id: wf.run_id.clone(),
    };
    if create(conn, wf, now)? {
        return Ok(started);
    }
    let facts = workflow_facts(conn, &wf.workflow_id, &[], None)?
        .ok_or_else(|| Error::WorkflowNotFound(wf.workflow_id.clone()))?;
    match start_engine::decide(&facts, wf, policy, now) {
        start_engine::StartDecision::Replace(mut plan) => {
            apply(conn, &mut plan)?;
            Ok(started)
        }
        start_engine::StartDecision::Existing { run_id } => Ok(start_engine::StartOutcome {
            started: false,
            run_id,
        }),
        start_engine::StartDecision::Refused(e) => Err(e),
    }
}

/// `StoreBackend::signal_workflow`.
pub(super) fn signal(
    conn: &Connection,
    workflow_id: &str,
    signal: &NewSignal,
    direct: Option<&DirectClaim>,
) -> Result<SignalOutcome> {
    let facts = workflow_facts(conn, workflow_id, &[], None)?
        .ok_or_else(|| Error::WorkflowNotFound(workflow_id.to_string()))?;
    let recorded = signal_recorded(conn, workflow_id, &signal.request_id)?;
    let mut decision = signal_engine::send(&facts, signal, recorded, now_ms(), direct);
    if let Some(plan) = decision.plan_mut() {
        apply(conn, plan)?;
    }
    let recorded = decision.outcome().map_err(|s| closed(workflow_id, s))?;
    Ok(SignalOutcome {
        recorded,
        claimed: decision.claimed_token(),
    })
}

/// `StoreBackend::signal_with_start`.
pub(super) fn signal_with_start(
    conn: &Connection,
    wf: &NewWorkflow,
    sig: &NewSignal,
) -> Result<bool> {
    let started = create(conn, wf, now_ms())?;
    signal(conn, &wf.workflow_id, sig, None)?;
    Ok(started)
}

/// `StoreBackend::accept_update`.
pub(super) fn accept_update(
    conn: &Connection,
    workflow_id: &str,
    update: &NewUpdate,
) -> Result<Option<u64>> {
    let facts = workflow_facts(conn, workflow_id, &[], None)?
        .ok_or_else(|| Error::WorkflowNotFound(workflow_id.to_string()))?;
    let mut decision = update_engine::accept(&facts, update, now_ms());
    if let Some(plan) = decision.plan_mut() {
        apply(conn, plan)?;
    }
    decision.outcome().map_err(|s| closed(workflow_id, s))
}

#[cfg(test)]
mod index_tests {
    use super::super::schema::MIGRATIONS;
    use rusqlite::Connection;

    /// The signal lookup is answered by its partial index, not a scan of the workflow's history.
    #[test]
    fn the_signal_lookup_uses_its_index() {
        let conn = Connection::open_in_memory().unwrap();
        for m in MIGRATIONS {
            conn.execute_batch(m).unwrap();
        }
        let plan: Vec<String> = conn
            .prepare(&format!(
                "EXPLAIN QUERY PLAN {}",
                "SELECT seq, payload FROM history INDEXED BY history_signals
                  WHERE workflow_id = ?1 AND ref_seq = ?2 AND event_type = 'signal_received'"
            ))
            .unwrap()
            .query_map(["wf", "1"], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter().any(|p| p.contains("history_signals")),
            "{plan:?}"
        );
        // The literal in the index and the query is the stored name of the event.
        assert_eq!(
            crate::history::format::messages::SIGNAL_RECEIVED,
            "signal_received"
        );
    }
}
