//! Worker liveness leases in the SQLite store (see `engine::liveness`): renew, end, list, and take
//! a lost worker's running attempts.

use super::now_ms;
use super::read::{read_activity, ACTIVITY_COLS};
use super::{exec, SqliteStore};
use crate::engine::activity::REAPER_LEASE_MS;
use crate::engine::liveness::WorkerLease;
use crate::engine::ClaimedActivity;
use crate::error::Result;
use rusqlite::params;

impl SqliteStore {
    pub(super) async fn renew_lease(
        &self,
        worker_id: &str,
        process: &str,
        lease_ms: i64,
    ) -> Result<()> {
        let (w, p) = (worker_id.to_string(), process.to_string());
        self.call(move |conn| {
            exec(
                conn,
                "INSERT INTO workers(worker_id, lease_expires, process) VALUES (?1, ?2, ?3)
                 ON CONFLICT(worker_id) DO UPDATE SET lease_expires = excluded.lease_expires,
                                                      process = excluded.process",
                params![w, now_ms() + lease_ms, p],
            )?;
            Ok(())
        })
        .await
    }

    pub(super) async fn end_lease(&self, worker_id: &str) -> Result<()> {
        let w = worker_id.to_string();
        self.call(move |conn| {
            exec(conn, "DELETE FROM workers WHERE worker_id = ?1", params![w])?;
            Ok(())
        })
        .await
    }

    pub(super) async fn leases(&self, except: &str) -> Result<Vec<WorkerLease>> {
        let except = except.to_string();
        self.call(move |conn| {
            let mut st = conn.prepare_cached(
                "SELECT worker_id, lease_expires, process FROM workers w
                  WHERE worker_id <> ?1 AND EXISTS (
                        SELECT 1 FROM activity_tasks a
                         WHERE a.state = 'running' AND a.lease_owner = w.worker_id)",
            )?;
            let rows = st.query_map(params![except], |r| {
                Ok(WorkerLease {
                    worker_id: r.get(0)?,
                    lease_expires_ms: r.get(1)?,
                    process: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    pub(super) async fn claim_lost(
        &self,
        worker_id: &str,
        lease_expires_ms: i64,
        max: usize,
    ) -> Result<Vec<ClaimedActivity>> {
        let w = worker_id.to_string();
        self.call(move |conn| {
            // Renewed since it was judged: it lives, nothing is taken.
            let same: i64 = conn.query_row(
                "SELECT count(*) FROM workers WHERE worker_id = ?1 AND lease_expires = ?2",
                params![w, lease_expires_ms],
                |r| r.get(0),
            )?;
            if same == 0 {
                return Ok(Vec::new());
            }
            let rows: Vec<(ClaimedActivity, Option<String>)> = {
                let mut st = conn.prepare_cached(&format!(
                    "SELECT {ACTIVITY_COLS} FROM activity_tasks
                      WHERE state = 'running' AND lease_owner = ?1 ORDER BY id LIMIT ?2"
                ))?;
                let rows = st.query_map(params![w, max as i64], read_activity)?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let now = now_ms();
            let mut out = Vec::with_capacity(rows.len());
            for (mut task, _) in rows {
                // The token moves on (the lost worker's result, if it lives after all, is fenced);
                // should this judge die before it hands the attempt on, the reaper takes it later.
                task.token += 1;
                exec(
                    conn,
                    "UPDATE activity_tasks SET token = ?2, deadline_ms = ?3 WHERE id = ?1",
                    params![task.task_id, task.token, now + REAPER_LEASE_MS],
                )?;
                out.push(task);
            }
            if out.len() < max {
                exec(
                    conn,
                    "DELETE FROM workers WHERE worker_id = ?1 AND lease_expires = ?2",
                    params![w, lease_expires_ms],
                )?;
            }
            Ok(out)
        })
        .await
    }
}
