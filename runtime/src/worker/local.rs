//! Local activities: run in the workflow's worker, retried in process, recorded as markers.

use super::*;

impl Shared {
    pub(super) fn spawn_local(
        self: &Arc<Self>,
        info: &WorkflowInfo,
        seq: u64,
        activity_type: &str,
        input: Value,
        options: crate::definition::ActivityOptions,
    ) {
        let key = (info.workflow_id.clone(), seq);
        if lock(&self.local_tasks).contains_key(&key) {
            return;
        }
        let me = self.clone();
        let info = info.clone();
        let activity_type = activity_type.to_string();
        let span = tracing::info_span!(
            "local_activity",
            workflow_id = %info.workflow_id,
            run_id = %info.run_id,
            activity_type = %activity_type,
            activity_seq = seq,
        );
        let handle = tokio::spawn(
            async move {
                let result = me.run_local(&info, seq, &activity_type, input, options).await;
                lock(&me.local_tasks).remove(&(info.workflow_id.clone(), seq));
                match me
                    .store
                    .backend
                    .record_local_activity(&info.workflow_id, seq, result)
                    .await
                {
                    Ok(_) => me.store.hub.wake_workers(),
                    Err(e) => tracing::warn!(error = %e, "could not record a local activity's result; it runs again on replay"),
                }
            }
            .instrument(span),
        );
        lock(&self.local_tasks).insert(key, handle.abort_handle());
    }

    pub(super) async fn run_local(
        &self,
        info: &WorkflowInfo,
        seq: u64,
        activity_type: &str,
        input: Value,
        options: crate::definition::ActivityOptions,
    ) -> Result<Value, ActivityError> {
        let Some(def) = self.registry.activity(activity_type).cloned() else {
            return Err(ActivityError::Failed {
                activity_type: activity_type.to_string(),
                attempts: 0,
                cause: Box::new(ActivityError::non_retryable(
                    "UnknownActivity",
                    format!(
                        "local activity `{activity_type}` is not registered on the worker that runs workflow `{}`; register it there",
                        info.workflow_id
                    ),
                )),
            });
        };
        let scheduled = now_ms();
        let mut attempt = 1u32;
        loop {
            let started = now_ms();
            let (deadline, kind) = attempt_deadline(&options, scheduled, started, i64::MAX / 2);
            let ainfo = ActivityInfo {
                activity_id: seq.to_string(),
                activity_type: activity_type.to_string(),
                workflow_id: info.workflow_id.clone(),
                run_id: info.run_id.clone(),
                attempt,
                scheduled_time: ms_to_system(scheduled),
                started_time: ms_to_system(started),
                deadline: Some(ms_to_system(deadline)),
                heartbeat_timeout: options.heartbeat_timeout,
                task_queue: info.task_queue.clone(),
                is_local: true,
                idempotency_key: format!("{}/{}", info.run_id, seq),
            };
            let ctx = ActivityContext::new(ainfo, None, CancelFlag::new(), None);
            let fut = AssertUnwindSafe(def.execute_json(ctx, input.clone())).catch_unwind();
            let budget = Duration::from_millis((deadline - started).max(0) as u64);
            let error = match tokio::time::timeout(budget, fut).await {
                Ok(Ok(Ok(v))) => return Ok(v),
                Ok(Ok(Err(e))) if e.is_cancelled() => return Err(e),
                Ok(Ok(Err(e))) => e,
                Ok(Err(p)) => panic_error(p),
                Err(_) => ActivityError::Timeout {
                    kind,
                    details: None,
                },
            };
            match resolve_failure(
                &options,
                activity_type,
                attempt,
                scheduled,
                error,
                None,
                now_ms(),
            ) {
                ActivityResolution::Retry { retry_at_ms } => {
                    let wait = (retry_at_ms - now_ms()).max(0) as u64;
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                    attempt += 1;
                }
                ActivityResolution::Failed(e) | ActivityResolution::TimedOut(e) => return Err(e),
                _ => return Err(ActivityError::cancelled()),
            }
        }
    }

    pub(super) fn cancel_local(self: &Arc<Self>, workflow_id: &str, seq: u64) {
        let key = (workflow_id.to_string(), seq);
        let Some(handle) = lock(&self.local_tasks).remove(&key) else {
            return;
        };
        handle.abort();
        let me = self.clone();
        let workflow_id = workflow_id.to_string();
        tokio::spawn(async move {
            match me
                .store
                .backend
                .record_local_activity(&workflow_id, seq, Err(ActivityError::cancelled()))
                .await
            {
                Ok(_) => me.store.hub.wake_workers(),
                Err(e) => {
                    tracing::warn!(error = %e, "could not record a local activity's cancellation")
                }
            }
        });
    }
}
