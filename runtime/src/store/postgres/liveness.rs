//! Worker liveness leases in the Postgres store (see `engine::liveness`): renew, end, list, and
//! take a lost worker's running attempts.

use super::read::{read_activity, ACTIVITY_COLS};
use super::{db, query, PostgresStore};
use crate::engine::activity::REAPER_LEASE_MS;
use crate::engine::liveness::WorkerLease;
use crate::engine::ClaimedActivity;
use crate::error::Result;
use crate::store::now_ms;
use std::sync::OnceLock;

const SQL_RENEW: &str = "
INSERT INTO workers(worker_id, lease_expires, process) VALUES ($1::TEXT, $2::BIGINT, $3::TEXT)
ON CONFLICT (worker_id) DO UPDATE SET lease_expires = excluded.lease_expires,
                                      process = excluded.process";

const SQL_LEASES: &str = "
SELECT w.worker_id, w.lease_expires, w.process FROM workers w
 WHERE w.worker_id <> $1::TEXT AND EXISTS (
       SELECT 1 FROM activity_tasks a WHERE a.state = 'running' AND a.lease_owner = w.worker_id)";

/// The lost worker's running attempts, while its lease row still ends when it was judged lost
/// (a renewal since means it lives): tokens bumped, deadline set for the reaper should this judge
/// die before it hands them on.
fn sql_claim_lost() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "
WITH live AS (
    SELECT 1 FROM workers WHERE worker_id = $1::TEXT AND lease_expires = $2::BIGINT FOR UPDATE),
c AS (
    SELECT id FROM activity_tasks
     WHERE state = 'running' AND lease_owner = $1::TEXT AND EXISTS (SELECT 1 FROM live)
     ORDER BY id LIMIT $3::BIGINT
       FOR UPDATE SKIP LOCKED)
UPDATE activity_tasks a SET token = a.token + 1, deadline_ms = $4::BIGINT
  FROM c WHERE a.id = c.id
RETURNING {ACTIVITY_COLS}"
        )
    })
}

impl PostgresStore {
    pub(super) async fn renew_lease(
        &self,
        worker_id: &str,
        process: &str,
        lease_ms: i64,
    ) -> Result<()> {
        let client = self.client().await?;
        let expires = now_ms() + lease_ms;
        query(
            &client,
            SQL_RENEW,
            &[&worker_id, &expires, &process],
            "renewing a worker's lease",
        )
        .await?;
        Ok(())
    }

    pub(super) async fn end_lease(&self, worker_id: &str) -> Result<()> {
        let client = self.client().await?;
        query(
            &client,
            "DELETE FROM workers WHERE worker_id = $1::TEXT",
            &[&worker_id],
            "ending a worker's lease",
        )
        .await?;
        Ok(())
    }

    pub(super) async fn leases(&self, except: &str) -> Result<Vec<WorkerLease>> {
        let client = self.client().await?;
        let rows = query(&client, SQL_LEASES, &[&except], "reading workers' leases").await?;
        rows.iter()
            .map(|r| {
                Ok(WorkerLease {
                    worker_id: super::col(r, 0)?,
                    lease_expires_ms: super::col(r, 1)?,
                    process: super::col(r, 2)?,
                })
            })
            .collect()
    }

    pub(super) async fn claim_lost(
        &self,
        worker_id: &str,
        lease_expires_ms: i64,
        max: usize,
    ) -> Result<Vec<ClaimedActivity>> {
        let mut client = self.client().await?;
        let ctx = "taking a lost worker's attempts";
        let tx = client.transaction().await.map_err(db(ctx))?;
        let now = now_ms();
        let rows = query(
            &tx,
            sql_claim_lost(),
            &[
                &worker_id,
                &lease_expires_ms,
                &(max as i64),
                &(now + REAPER_LEASE_MS),
            ],
            ctx,
        )
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(read_activity(r)?.0);
        }
        if out.len() < max {
            query(
                &tx,
                "DELETE FROM workers WHERE worker_id = $1::TEXT AND lease_expires = $2::BIGINT",
                &[&worker_id, &lease_expires_ms],
                ctx,
            )
            .await?;
        }
        tx.commit().await.map_err(db(ctx))?;
        out.sort_by_key(|t| t.task_id);
        Ok(out)
    }
}
