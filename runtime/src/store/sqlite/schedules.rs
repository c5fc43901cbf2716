//! The SQLite store's schedule transitions: each reads the schedule's row and whether the
//! workflow it started last still runs (the facts), asks `engine::schedule`, and applies the plan:
//! the row (guarded by its revision) and the starts (each unless its id exists).

use super::{exec, now_ms, qrow};
use crate::engine::schedule::{
    self as schedule_engine, ScheduleChange, ScheduleFacts, SchedulePlan, ScheduleWrite,
};
use crate::error::{Error, Result};
use crate::schedule::{ScheduleDescription, Triggered};
use crate::store::to_json;
use rusqlite::{params, Connection, OptionalExtension};

use crate::store::decode_schedule as decode;

/// The facts of one schedule, or `None`.
fn facts(conn: &Connection, schedule_id: &str) -> Result<Option<ScheduleFacts>> {
    let row: Option<(i64, String)> = conn
        .prepare_cached("SELECT revision, body FROM schedules WHERE schedule_id = ?1")?
        .query_row(params![schedule_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((revision, body)) = row else {
        return Ok(None);
    };
    let record = decode(schedule_id, &body)?;
    let last_running = match &record.last_workflow_id {
        None => false,
        Some(id) => conn
            .prepare_cached("SELECT status FROM workflows WHERE workflow_id = ?1")?
            .query_row(params![id], |r| r.get::<_, String>(0))
            .optional()?
            .is_some_and(|s| s == "running"),
    };
    Ok(Some(ScheduleFacts {
        record,
        revision,
        last_running,
    }))
}

/// Applies a schedule plan; false (nothing written by it) when the row's revision moved on.
pub(super) fn apply(conn: &Connection, plan: &SchedulePlan) -> Result<bool> {
    let written = match &plan.write {
        ScheduleWrite::Insert { record, due_ms } => exec(
            conn,
            "INSERT INTO schedules(schedule_id, revision, due_ms, body) VALUES (?1, 0, ?2, ?3)
             ON CONFLICT(schedule_id) DO NOTHING",
            params![plan.schedule_id, due_ms, to_json(record)],
        )?,
        ScheduleWrite::Update {
            revision,
            record,
            due_ms,
        } => exec(
            conn,
            "UPDATE schedules SET revision = revision + 1, due_ms = ?3, body = ?4
             WHERE schedule_id = ?1 AND revision = ?2",
            params![plan.schedule_id, revision, due_ms, to_json(record)],
        )?,
        ScheduleWrite::Delete { revision } => exec(
            conn,
            "DELETE FROM schedules WHERE schedule_id = ?1 AND revision = ?2",
            params![plan.schedule_id, revision],
        )?,
    };
    if written == 0 {
        return Ok(false);
    }
    let now = now_ms();
    for wf in &plan.starts {
        // A tick's workflow that exists already (the same tick acted on before) is left alone.
        super::messages::create(conn, wf, now)?;
    }
    Ok(true)
}

fn new_run_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// `StoreBackend::create_schedule`.
pub(super) fn create(conn: &Connection, plan: &SchedulePlan) -> Result<()> {
    if !apply(conn, plan)? {
        return Err(Error::DuplicateScheduleId(plan.schedule_id.clone()));
    }
    Ok(())
}

/// `StoreBackend::read_schedule`.
pub(super) fn read(conn: &Connection, schedule_id: &str) -> Result<Option<ScheduleDescription>> {
    Ok(facts(conn, schedule_id)?.map(|f| f.record))
}

/// `StoreBackend::list_schedules`.
pub(super) fn list(conn: &Connection) -> Result<Vec<ScheduleDescription>> {
    let mut st =
        conn.prepare_cached("SELECT schedule_id, body FROM schedules ORDER BY schedule_id")?;
    let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, body) = row?;
        out.push(decode(&id, &body)?);
    }
    Ok(out)
}

/// `StoreBackend::change_schedule`.
pub(super) fn change(
    conn: &Connection,
    schedule_id: &str,
    change: &ScheduleChange,
) -> Result<Option<Triggered>> {
    let f = facts(conn, schedule_id)?
        .ok_or_else(|| Error::ScheduleNotFound(schedule_id.to_string()))?;
    let (plan, triggered) = schedule_engine::change(&f, change, now_ms(), &mut new_run_id)?;
    // The single writer read the row in this transaction: its revision cannot have moved.
    if !apply(conn, &plan)? {
        return Err(Error::Store(format!(
            "schedule `{schedule_id}` changed while it was being changed; try again"
        )));
    }
    Ok(triggered)
}

/// `StoreBackend::fire_due_schedules`.
pub(super) fn fire_due(conn: &Connection, max: usize) -> Result<usize> {
    let now = now_ms();
    let ids: Vec<String> = {
        let mut st = conn.prepare_cached(
            "SELECT schedule_id FROM schedules WHERE due_ms <= ?1 ORDER BY due_ms LIMIT ?2",
        )?;
        let rows = st.query_map(params![now, max as i64], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut n = 0;
    for id in ids {
        let f = match facts(conn, &id) {
            Ok(Some(f)) => f,
            Ok(None) => continue,
            Err(e @ Error::StoredData { .. }) => {
                // A row this build cannot read is parked (not due) rather than retried forever;
                // `describe_schedule` reports the same error, and the row is left as it was.
                tracing::warn!(schedule_id = %id, error = %e, "a schedule cannot be read; it is not fired");
                exec(
                    conn,
                    "UPDATE schedules SET due_ms = NULL WHERE schedule_id = ?1",
                    params![id],
                )?;
                continue;
            }
            Err(e) => return Err(e),
        };
        let plan = schedule_engine::fire(&f, now, &mut new_run_id)?;
        if apply(conn, &plan)? {
            n += 1;
        }
    }
    Ok(n)
}

/// `StoreBackend::next_schedule_due_ms`.
pub(super) fn next_due(conn: &Connection) -> Result<Option<i64>> {
    Ok(qrow(conn, "SELECT min(due_ms) FROM schedules", [], |r| {
        r.get::<_, Option<i64>>(0)
    })?)
}
