//! The Postgres store (in progress: being written in this session).

use crate::error::{Error, Result};

pub(crate) struct PostgresStore;

impl PostgresStore {
    pub(crate) async fn connect(_url: &str, _schema: Option<&str>) -> Result<Self> {
        Err(Error::Store("the Postgres store is not built yet".into()))
    }
}

#[async_trait::async_trait]
impl super::StoreBackend for PostgresStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }
    async fn create_workflow(&self, _: super::NewWorkflow) -> Result<()> { unimplemented_store() }
    async fn claim_workflow_tasks(&self, _: &str, _: &[String], _: &[String], _: usize, _: i64) -> Result<Vec<super::ClaimedWorkflowTask>> { unimplemented_store() }
    async fn read_history(&self, _: &str, _: u64) -> Result<Vec<crate::HistoryEvent>> { unimplemented_store() }
    async fn commit_workflow_task(&self, _: super::WorkflowTaskCommit) -> Result<Option<super::CommitOutcome>> { unimplemented_store() }
    async fn hold_workflow_task(&self, _: &str, _: i64, _: &str, _: i64) -> Result<()> { unimplemented_store() }
    async fn release_held(&self) -> Result<u64> { unimplemented_store() }
    async fn claim_activity_tasks(&self, _: &str, _: &[String], _: &[String], _: usize) -> Result<Vec<super::ClaimedActivity>> { unimplemented_store() }
    async fn claim_expired_activities(&self, _: usize) -> Result<Vec<super::ExpiredActivity>> { unimplemented_store() }
    async fn heartbeat(&self, _: i64, _: i64, _: Option<serde_json::Value>, _: (i64, crate::TimeoutKind)) -> Result<Option<bool>> { unimplemented_store() }
    async fn finish_activity(&self, _: i64, _: i64, _: super::ActivityResolution, _: Option<serde_json::Value>) -> Result<bool> { unimplemented_store() }
    async fn record_local_activity(&self, _: &str, _: u64, _: std::result::Result<serde_json::Value, crate::ActivityError>) -> Result<bool> { unimplemented_store() }
    async fn fire_due_timers(&self, _: usize) -> Result<usize> { unimplemented_store() }
    async fn next_due_ms(&self, _: &[String], _: &[String], _: &[String]) -> Result<Option<i64>> { unimplemented_store() }
    async fn request_cancel_workflow(&self, _: &str) -> Result<bool> { unimplemented_store() }
    async fn describe(&self, _: &str) -> Result<Option<super::WorkflowDescription>> { unimplemented_store() }
    async fn list(&self, _: &super::ListFilter) -> Result<Vec<super::WorkflowSummary>> { unimplemented_store() }
}

fn unimplemented_store<T>() -> Result<T> {
    Err(Error::Store("the Postgres store is not built yet".into()))
}
