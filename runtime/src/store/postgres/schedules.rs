//! The Postgres store's schedule transitions. Each locks the schedule's row (a worker firing due
//! schedules skips rows another worker holds), reads whether the workflow it started last still
//! runs, asks `engine::schedule`, and applies the plan in the same transaction: the row, guarded
//! by its revision, and the starts, each unless its id exists. Two workers can therefore never
//! both act on one tick, and a tick acted on twice (a crash between two transactions cannot
//! cause it, but a trigger in the same millisecond as a tick can) starts its workflow once.

use super::apply::push_plan;
use super::{col, p, query, Batch, PostgresStore, Tx};
use crate::engine::schedule::{
    self as schedule_engine, ScheduleChange, ScheduleFacts, SchedulePlan, ScheduleWrite,
};
use crate::engine::start as start_engine;
use crate::error::{Error, Result};
use crate::schedule::{ScheduleDescription, Triggered};
use crate::store::{now_ms, to_json};
use tokio_postgres::Row;

/// The row and the status of the workflow it started last, locked; `$2`: only if due by then.
const SQL_LOCK_DUE: &str = "
SELECT s.revision, s.body, w.status
  FROM schedules s
  LEFT JOIN workflows w ON w.workflow_id = (s.body::jsonb ->> 'last_workflow_id')
 WHERE s.schedule_id = $1::TEXT AND s.due_ms <= $2::BIGINT
   FOR UPDATE OF s SKIP LOCKED";

/// The same for a client's change: waits for the lock.
const SQL_LOCK: &str = "
SELECT s.revision, s.body, w.status
  FROM schedules s
  LEFT JOIN workflows w ON w.workflow_id = (s.body::jsonb ->> 'last_workflow_id')
 WHERE s.schedule_id = $1::TEXT
   FOR UPDATE OF s";

const SQL_DUE_IDS: &str = "
SELECT schedule_id FROM schedules WHERE due_ms <= $1::BIGINT ORDER BY due_ms LIMIT $2::BIGINT";

const SQL_INSERT: &str = "
INSERT INTO schedules(schedule_id, revision, due_ms, body) VALUES ($1::TEXT, 0, $2::BIGINT, $3::TEXT)
ON CONFLICT (schedule_id) DO NOTHING RETURNING 1";

const SQL_UPDATE: &str = "
UPDATE schedules SET revision = revision + 1, due_ms = $3::BIGINT, body = $4::TEXT
 WHERE schedule_id = $1::TEXT AND revision = $2::BIGINT RETURNING 1";

const SQL_DELETE: &str =
    "DELETE FROM schedules WHERE schedule_id = $1::TEXT AND revision = $2::BIGINT RETURNING 1";

const SQL_CREATE_IF_ABSENT: &str = "
INSERT INTO workflows(workflow_id, run_id, workflow_type, task_queue, status, input,
                      next_event_seq, created_ms)
VALUES ($1::TEXT, $2::TEXT, $3::TEXT, $4::TEXT, 'running', $5::TEXT, 1, $6::BIGINT)
ON CONFLICT (workflow_id) DO NOTHING
RETURNING 1";

const SQL_READ: &str = "SELECT body FROM schedules WHERE schedule_id = $1::TEXT";
const SQL_LIST: &str = "SELECT schedule_id, body FROM schedules ORDER BY schedule_id";
const SQL_NEXT_DUE: &str = "SELECT min(due_ms) FROM schedules";
const SQL_PARK: &str = "UPDATE schedules SET due_ms = NULL WHERE schedule_id = $1::TEXT";

use crate::store::decode_schedule as decode;

fn facts_of(schedule_id: &str, row: &Row) -> Result<ScheduleFacts> {
    let revision: i64 = col(row, 0)?;
    let body: String = col(row, 1)?;
    let status: Option<String> = col(row, 2)?;
    Ok(ScheduleFacts {
        record: decode(schedule_id, &body)?,
        revision,
        last_running: status.as_deref() == Some("running"),
    })
}

fn new_run_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

impl PostgresStore {
    /// Applies `plan` in `tx` and commits; false (rolled back, nothing written) when the row's
    /// revision moved on, or, for an insert, the id exists.
    async fn apply_schedule(&self, mut tx: Tx, plan: &SchedulePlan, ctx: &str) -> Result<bool> {
        let now = now_ms();
        let mut batch = Batch::default();
        let id = || p(plan.schedule_id.clone());
        match &plan.write {
            ScheduleWrite::Insert { record, due_ms } => {
                batch.push(SQL_INSERT, vec![id(), p(*due_ms), p(to_json(record))])
            }
            ScheduleWrite::Update {
                revision,
                record,
                due_ms,
            } => batch.push(
                SQL_UPDATE,
                vec![id(), p(*revision), p(*due_ms), p(to_json(record))],
            ),
            ScheduleWrite::Delete { revision } => batch.push(SQL_DELETE, vec![id(), p(*revision)]),
        };
        for wf in &plan.starts {
            batch.push(
                SQL_CREATE_IF_ABSENT,
                vec![
                    p(wf.workflow_id.clone()),
                    p(wf.run_id.clone()),
                    p(wf.workflow_type.clone()),
                    p(wf.task_queue.clone()),
                    p(to_json(&wf.input)),
                    p(now),
                ],
            );
        }
        let res = tx.run(batch, false, ctx).await?;
        if res.first().is_none_or(|rows| rows.is_empty()) {
            // Dropping the transaction rolls it back.
            return Ok(false);
        }
        let mut batch = Batch::default();
        let mut started = false;
        for (k, wf) in plan.starts.iter().enumerate() {
            // A tick's workflow that exists already is left alone.
            if res.get(k + 1).is_some_and(|rows| !rows.is_empty()) {
                let _ = push_plan(
                    &mut batch,
                    &start_engine::start(wf, now),
                    Some(&self.channel),
                );
                started = true;
            }
        }
        if started {
            self.notify(&mut batch);
        }
        tx.run(batch, true, ctx).await?;
        Ok(true)
    }

    pub(super) async fn create_schedule_impl(&self, plan: SchedulePlan) -> Result<()> {
        let tx = Tx::new(self.client().await?);
        if !self
            .apply_schedule(tx, &plan, "creating a schedule")
            .await?
        {
            return Err(Error::DuplicateScheduleId(plan.schedule_id));
        }
        Ok(())
    }

    pub(super) async fn read_schedule_impl(
        &self,
        schedule_id: &str,
    ) -> Result<Option<ScheduleDescription>> {
        let client = self.client().await?;
        let rows = query(&client, SQL_READ, &[&schedule_id], "reading a schedule").await?;
        match rows.first() {
            None => Ok(None),
            Some(r) => Ok(Some(decode(schedule_id, &col::<String>(r, 0)?)?)),
        }
    }

    pub(super) async fn list_schedules_impl(&self) -> Result<Vec<ScheduleDescription>> {
        let client = self.client().await?;
        let rows = query(&client, SQL_LIST, &[], "listing schedules").await?;
        rows.iter()
            .map(|r| decode(&col::<String>(r, 0)?, &col::<String>(r, 1)?))
            .collect()
    }

    pub(super) async fn change_schedule_impl(
        &self,
        schedule_id: &str,
        change: ScheduleChange,
    ) -> Result<Option<Triggered>> {
        let ctx = "changing a schedule";
        let mut tx = Tx::new(self.client().await?);
        let mut batch = Batch::default();
        batch.push(SQL_LOCK, vec![p(schedule_id.to_string())]);
        let res = tx.run(batch, false, ctx).await?;
        let row = res
            .first()
            .and_then(|rows| rows.first())
            .ok_or_else(|| Error::ScheduleNotFound(schedule_id.to_string()))?;
        let f = facts_of(schedule_id, row)?;
        let (plan, triggered) = schedule_engine::change(&f, &change, now_ms(), &mut new_run_id)?;
        if !self.apply_schedule(tx, &plan, ctx).await? {
            return Err(Error::Store(format!(
                "schedule `{schedule_id}` changed while it was being changed; try again"
            )));
        }
        Ok(triggered)
    }

    pub(super) async fn fire_due_schedules_impl(&self, max: usize) -> Result<usize> {
        let ctx = "firing schedules";
        let now = now_ms();
        let ids: Vec<String> = {
            let client = self.client().await?;
            let rows = query(&client, SQL_DUE_IDS, &[&now, &(max as i64)], ctx).await?;
            rows.iter().map(|r| col(r, 0)).collect::<Result<_>>()?
        };
        let mut n = 0;
        for id in ids {
            let mut tx = Tx::new(self.client().await?);
            let mut batch = Batch::default();
            batch.push(SQL_LOCK_DUE, vec![p(id.clone()), p(now)]);
            let res = tx.run(batch, false, ctx).await?;
            // Another worker holds it, or acted on it since: it is theirs.
            let Some(row) = res.first().and_then(|rows| rows.first()) else {
                continue;
            };
            let f = match facts_of(&id, row) {
                Ok(f) => f,
                Err(e @ Error::StoredData { .. }) => {
                    tracing::warn!(schedule_id = %id, error = %e, "a schedule cannot be read; it is not fired");
                    let mut batch = Batch::default();
                    batch.push(SQL_PARK, vec![p(id.clone())]);
                    tx.run(batch, true, ctx).await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let plan = schedule_engine::fire(&f, now, &mut new_run_id)?;
            if self.apply_schedule(tx, &plan, ctx).await? {
                n += 1;
            }
        }
        Ok(n)
    }

    pub(super) async fn next_schedule_due_ms_impl(&self) -> Result<Option<i64>> {
        let client = self.client().await?;
        let rows = query(&client, SQL_NEXT_DUE, &[], "reading the next due schedule").await?;
        match rows.first() {
            None => Ok(None),
            Some(r) => col(r, 0),
        }
    }
}
