//! Activity attempts: running one, its heartbeats, its outcome, the one-commit step, timeouts.

use super::*;

impl Shared {
    pub(super) fn spawn_attempt(
        self: &Arc<Self>,
        task: ClaimedActivity,
        permit: Option<OwnedSemaphorePermit>,
    ) {
        // Under the run's span when this worker holds the run (one trace per run), else a root.
        let run_span = lock(&self.cache)
            .get(&task.workflow_id)
            .filter(|c| c.run_id == task.run_id)
            .map(|c| c.instance.span.clone())
            .unwrap_or_else(tracing::Span::none);
        self.spawn_attempt_under(task, permit, run_span)
    }

    /// [`Shared::spawn_attempt`] with the run's span as the attempt span's parent.
    pub(super) fn spawn_attempt_under(
        self: &Arc<Self>,
        task: ClaimedActivity,
        permit: Option<OwnedSemaphorePermit>,
        run_span: tracing::Span,
    ) {
        let me = self.clone();
        let span = tracing::info_span!(
            parent: &run_span,
            "activity_attempt",
            workflow_id = %task.workflow_id,
            run_id = %task.run_id,
            activity_type = %task.activity_type,
            activity_id = task.activity_seq,
            attempt = task.attempt,
        );
        self.tasks.spawn(
            async move {
                me.run_attempt(task).await;
                drop(permit);
            }
            .instrument(span),
        );
    }

    pub(super) async fn run_attempt(self: Arc<Self>, task: ClaimedActivity) {
        let Some(def) = self.registry.activity(&task.activity_type).cloned() else {
            return;
        };
        let key = (task.workflow_id.clone(), task.activity_seq);
        let flag = self.cancel_flag();
        if task.cancel_requested {
            flag.cancel();
        }
        lock(&self.store.hub.running).insert(key.clone(), (task.token, flag.clone()));
        let (hb_tx, hb_rx) = watch::channel::<Option<Value>>(None);
        let last_details = hb_rx.clone();
        let info = ActivityInfo {
            activity_id: task.activity_seq.to_string(),
            activity_type: task.activity_type.clone(),
            workflow_id: task.workflow_id.clone(),
            run_id: task.run_id.clone(),
            attempt: task.attempt,
            scheduled_time: ms_to_system(task.scheduled_ms),
            started_time: ms_to_system(task.started_ms),
            deadline: task.deadline_ms.map(ms_to_system),
            heartbeat_timeout: task.options.heartbeat_timeout,
            task_queue: task.task_queue.clone(),
            is_local: false,
            idempotency_key: format!("{}/{}", task.run_id, task.activity_seq),
        };
        let ctx = ActivityContext::new(
            info,
            task.heartbeat_details.clone(),
            flag.clone(),
            Some(hb_tx),
        );
        // Without a heartbeat timeout, details are stored when the attempt ends (no flusher task).
        let flusher = task.options.heartbeat_timeout.map(|_| {
            self.tasks.spawn(heartbeat_flusher(
                self.store.clone(),
                task.clone(),
                hb_rx,
                flag.clone(),
            ))
        });
        let fut = AssertUnwindSafe(def.execute_json(ctx, task.input.clone())).catch_unwind();
        // Here only the start-to-close and schedule-to-close deadlines are enforced; the heartbeat
        // deadline moves with every stored heartbeat and is the store's (the reaper's) to enforce.
        let (hard_deadline, hard_kind) = attempt_deadline(
            &task.options,
            task.scheduled_ms,
            task.started_ms,
            i64::MAX / 2,
        );
        let budget = Duration::from_millis((hard_deadline - self.now_ms()).max(0) as u64);
        let began = std::time::Instant::now();
        // At the end of a shutdown's grace the attempt is stopped: its future is dropped here.
        let outcome = tokio::select! {
            r = self.store.clock.timeout(budget, fut) => Some(r),
            _ = self.kill.cancelled() => None,
        };
        if let Some(f) = flusher {
            f.abort();
        }
        {
            // A later attempt of the same activity may have replaced this entry: leave it alone.
            let mut running = lock(&self.store.hub.running);
            if running.get(&key).map(|(t, _)| *t) == Some(task.token) {
                running.remove(&key);
            }
        }
        let details = last_details.borrow().clone();
        let result = match outcome {
            None => Err(ActivityError::WorkerShutdown),
            Some(Err(_)) => Err(ActivityError::Timeout {
                kind: hard_kind,
                details: details.clone(),
            }),
            Some(Ok(Err(p))) => Err(panic_error(p)),
            Some(Ok(Ok(r))) => r,
        };
        let result = interrupted_by_shutdown(&flag, result);
        let resolution = resolve_result(&task, result, details.clone(), self.now_ms());
        report::attempt_outcome(&task, &resolution, self.now_ms());
        crate::telemetry::attempt(
            &resolution,
            began.elapsed(),
            self.now_ms() - task.scheduled_ms,
        );
        if self.try_continue(&task, &resolution, &details).await {
            return;
        }
        self.record_result(&task, resolution, details).await;
        self.store.hub.wake_workers();
    }

    /// Records an attempt's result, waiting through a short outage of the store: a transient error
    /// is retried with backoff for up to [`RECORD_PATIENCE`] (a retry after a commit whose answer
    /// was lost is fenced by the attempt's token: nothing is recorded twice). After that, or on a
    /// permanent error, the attempt is retried elsewhere when its timeout or its worker's liveness
    /// lease ends.
    async fn record_result(
        self: &Arc<Self>,
        task: &ClaimedActivity,
        resolution: ActivityResolution,
        details: Option<Value>,
    ) {
        let mut backoff = crate::backoff::Backoff::store();
        let give_up = tokio::time::Instant::now() + RECORD_PATIENCE;
        loop {
            let r = self
                .store
                .backend
                .finish_activity(
                    task.task_id,
                    task.token,
                    resolution.clone(),
                    details.clone(),
                )
                .await;
            match r {
                Ok(true) => {
                    if backoff.failures() > 0 {
                        tracing::info!(
                            failures = backoff.failures(),
                            "attempt result recorded after the store came back"
                        );
                    }
                    return;
                }
                Ok(false) => {
                    tracing::info!("attempt result dropped: its lease was taken over (fenced)");
                    return;
                }
                Err(e)
                    if e.is_transient()
                        && tokio::time::Instant::now() < give_up
                        && !self.kill.is_cancelled() =>
                {
                    let wait = backoff.next_delay();
                    tracing::warn!(error = %e, retry_in = ?wait, "could not record the attempt's result; retrying after a backoff");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.kill.cancelled() => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not record the attempt's result; it is retried when its timeout or this worker's lease ends");
                    return;
                }
            }
        }
    }

    /// The one-commit step: when this worker holds the workflow's instance, it runs the workflow's
    /// next task in memory with the activity's outcome and stores both in one transaction. Returns
    /// false when it did not apply (the caller records the outcome the ordinary way).
    pub(super) async fn try_continue(
        self: &Arc<Self>,
        task: &ClaimedActivity,
        resolution: &ActivityResolution,
        details: &Option<Value>,
    ) -> bool {
        let Some(event) = resolution.clone().event(task.activity_seq) else {
            return false;
        };
        let Some((mut inst, _busy)) = self.cache_take_busy(&task.workflow_id, &task.run_id) else {
            return false;
        };
        if inst.has_unresolved_local() {
            // Its workflow task is leased while its local activities run: the ordinary way.
            self.cache_put(&task.workflow_id, &task.run_id, inst);
            return false;
        }
        if inst.info_read() {
            // The code reads `ctx.info()`, whose `history_length` counts the outcome's event, whose
            // number only the store knows: the ordinary workflow task (with this cached instance)
            // gives it, the same as a replay will.
            self.cache_put(&task.workflow_id, &task.run_id, inst);
            return false;
        }
        inst.deliver_kind(&event);
        let now = self.now_ms();
        let Ok(commands) = inst.activate(now) else {
            // Let the ordinary workflow task replay it and hold it with the reason.
            return false;
        };
        if inst.info_read() || crate::engine::continue_as_new::continues(&commands) {
            // It read `ctx.info()` for the first time just now, or it continues as new (whose
            // commit reads what the next run inherits): drop the instance, the ordinary workflow
            // task replays it.
            return false;
        }
        if inst.has_unresolved_local() {
            // A continuation commits without a workflow task to keep leased for the new local
            // activities: drop the instance, and let the ordinary workflow task run them.
            return false;
        }
        self.deliver_cancels_early(&task.workflow_id, &commands);
        let (eager, slots) = self.eager_claim(&commands);
        let cont = Continuation {
            commit: WorkflowTaskCommit {
                workflow_id: task.workflow_id.clone(),
                token: 0,
                processed_through: 0,
                task_time_ms: now,
                commands: commands.clone(),
                eager,
                local_lease: None,
            },
            delivered_through: inst.delivered_through,
            own_marker_seq: inst.own_marker_seq,
        };
        let r = self
            .store
            .backend
            .finish_activity_and_continue(
                task.task_id,
                task.token,
                resolution.clone(),
                details.clone(),
                cont,
            )
            .await;
        match r {
            Ok(FinishOutcome {
                continued: Some((seq, outcome)),
                ..
            }) => {
                inst.delivered_through = seq;
                inst.own_marker_seq = outcome.marker_seq;
                self.after_commit(
                    &task.workflow_id,
                    &task.run_id,
                    inst,
                    &commands,
                    outcome,
                    slots,
                    AfterCommit {
                        fresh: false,
                        lease_token: None,
                    },
                );
            }
            Ok(FinishOutcome { recorded, .. }) => {
                // Something else happened to the workflow meanwhile: its instance ran ahead of the
                // history, so it is dropped and the workflow task replays.
                if !recorded {
                    tracing::info!("attempt result dropped: its lease was taken over (fenced)");
                }
                self.store.hub.wake_workers();
            }
            Err(e) => {
                // Recorded the ordinary way, which waits through a short outage (if this commit
                // went through after all, that one is fenced and writes nothing).
                tracing::warn!(error = %e, "could not record the attempt's result with the workflow's next step; recording it alone");
                return false;
            }
        }
        true
    }

    pub(super) async fn handle_expired(self: &Arc<Self>, e: ExpiredActivity) {
        self.store
            .hub
            .cancel_running(&e.task.workflow_id, e.task.activity_seq);
        let now = self.now_ms();
        let resolution = resolve_timeout(&e, now);
        report::attempt_outcome(&e.task, &resolution, now);
        // (A task that never started, timed out schedule-to-start, ran for nothing.)
        let started = if e.task.started_ms > 0 {
            e.task.started_ms
        } else {
            now
        };
        let ran = Duration::from_millis((now - started).max(0) as u64);
        crate::telemetry::attempt(&resolution, ran, now - e.task.scheduled_ms);
        let task = e.task;
        if let Err(err) = self
            .store
            .backend
            .finish_activity(task.task_id, task.token, resolution, None)
            .await
        {
            tracing::warn!(error = %err, "could not record an activity timeout; retried later");
        }
        self.store.hub.wake_workers();
    }
}

/// How long a worker keeps trying to record an attempt's result through transient store errors.
pub(super) const RECORD_PATIENCE: Duration = Duration::from_secs(60);

/// An attempt that ends in a cancellation while its worker shuts down, with no cancel requested,
/// was interrupted by the shutdown (the cancellation is the shutdown's, not the workflow's): it
/// becomes [`ActivityError::WorkerShutdown`], which hands the activity on at once. That error
/// returned while the worker is not shutting down is an application error (retried by the policy,
/// not at once).
pub(super) fn interrupted_by_shutdown(
    flag: &CancelFlag,
    result: Result<Value, ActivityError>,
) -> Result<Value, ActivityError> {
    match result {
        Err(ActivityError::Cancelled { .. })
            if flag.is_shutting_down() && !flag.is_cancel_requested() =>
        {
            Err(ActivityError::WorkerShutdown)
        }
        Err(ActivityError::WorkerShutdown) if !flag.is_shutting_down() => {
            Err(ActivityError::application(
                "WorkerShutdown",
                "the activity returned WorkerShutdown, but its worker is not shutting down",
            ))
        }
        other => other,
    }
}

pub(super) fn panic_error(p: Box<dyn std::any::Any + Send>) -> ActivityError {
    ActivityError::application(
        "Panic",
        format!("the activity panicked: {}", panic_message(&*p)),
    )
}

/// Stores an attempt's heartbeats, throttled: the first at once, then at most one every 0.8 ×
/// heartbeat timeout, the latest details winning. A stored heartbeat extends the
/// attempt's deadline and brings back whether a cancel was requested.
pub(super) async fn heartbeat_flusher(
    store: Store,
    task: ClaimedActivity,
    rx: watch::Receiver<Option<Value>>,
    flag: CancelFlag,
) {
    let throttle = task
        .options
        .heartbeat_timeout
        .map(|d| d.mul_f64(0.8))
        .unwrap_or(Duration::from_secs(30));
    let store_one = |details: Option<Value>| {
        let (store, task) = (store.clone(), task.clone());
        async move {
            let deadline = attempt_deadline(
                &task.options,
                task.scheduled_ms,
                task.started_ms,
                store.clock.now_ms(),
            );
            store
                .backend
                .heartbeat(task.task_id, task.token, details, deadline)
                .await
        }
    };
    let clock = store.clock.clone();
    throttled_flush(&clock, throttle, rx, store_one, flag).await
}

/// The throttle of [`heartbeat_flusher`], apart from the store: `store_one` stores one heartbeat
/// and says whether a cancel was requested (`None`: the lease was lost). On `clock`, the store's:
/// under a virtual clock the throttle follows it, as the heartbeat timeout it serves does.
async fn throttled_flush<F, Fut>(
    clock: &crate::clock::Clock,
    throttle: Duration,
    mut rx: watch::Receiver<Option<Value>>,
    mut store_one: F,
    flag: CancelFlag,
) where
    F: FnMut(Option<Value>) -> Fut,
    Fut: std::future::Future<Output = crate::Result<Option<bool>>>,
{
    let throttle_ms = throttle.as_millis() as i64;
    let mut last_flush_ms: Option<i64> = None;
    loop {
        if rx.changed().await.is_err() {
            break;
        }
        if let Some(t) = last_flush_ms {
            clock.sleep_until_ms(t.saturating_add(throttle_ms)).await;
        }
        let details = rx.borrow_and_update().clone();
        match store_one(details).await {
            Ok(Some(true)) => flag.cancel(),
            Ok(Some(false)) => {}
            Ok(None) => {
                // The lease was taken over: this attempt's result will not be recorded.
                flag.cancel();
                break;
            }
            Err(e) => tracing::warn!(error = %e, "could not store a heartbeat"),
        }
        last_flush_ms = Some(clock.now_ms());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancellation_the_shutdown_caused_is_an_interruption() {
        let (shutdown, rx) = watch::channel(false);
        let flag = CancelFlag::with_shutdown(rx);
        let cancelled = || Err(ActivityError::cancelled());
        assert_eq!(interrupted_by_shutdown(&flag, cancelled()), cancelled());
        assert_eq!(
            interrupted_by_shutdown(&flag, Err(ActivityError::WorkerShutdown))
                .unwrap_err()
                .error_type(),
            "WorkerShutdown"
        );
        assert!(matches!(
            interrupted_by_shutdown(&flag, Err(ActivityError::WorkerShutdown)),
            Err(ActivityError::Application { .. })
        ));
        shutdown.send_replace(true);
        assert_eq!(
            interrupted_by_shutdown(&flag, cancelled()),
            Err(ActivityError::WorkerShutdown)
        );
        assert_eq!(interrupted_by_shutdown(&flag, Ok(1.into())), Ok(1.into()));
        // A real cancel wins over the shutdown.
        flag.cancel();
        assert_eq!(interrupted_by_shutdown(&flag, cancelled()), cancelled());
    }

    /// On a virtual clock (the store's, which the throttle follows): 125 heartbeats 40 ms apart
    /// (the last at 4.96 s), a 1.6 s throttle. Exactly five are stored: the first at once, then
    /// the latest at 1.6 s, 3.2 s and 4.8 s, and the last when the clock next moves past its turn
    /// (to 10 s here).
    #[tokio::test]
    async fn heartbeats_are_stored_throttled_the_latest_winning() {
        let clock = crate::clock::Clock::virtual_at(0);
        let (tx, rx) = watch::channel::<Option<Value>>(None);
        let stored: Arc<Mutex<Vec<(i64, Value)>>> = Arc::default();
        let log = stored.clone();
        let c = clock.clone();
        let store_one = move |details: Option<Value>| {
            let (log, c) = (log.clone(), c.clone());
            async move {
                lock(&log).push((c.now_ms(), details.unwrap_or_default()));
                Ok(Some(false))
            }
        };
        let flag = CancelFlag::with_shutdown(watch::channel(false).1);
        let flusher = tokio::spawn({
            let (clock, flag) = (clock.clone(), flag.clone());
            async move {
                throttled_flush(&clock, Duration::from_millis(1600), rx, store_one, flag).await
            }
        });
        let settle = || async {
            for _ in 0..20 {
                tokio::task::yield_now().await;
            }
        };
        settle().await;
        for i in 1..=125u64 {
            tx.send_replace(Some(i.into()));
            settle().await;
            clock.advance_to(clock.now_ms() + 40);
            settle().await;
        }
        drop(tx);
        // The last heartbeats wait for their turn at 6.4 s.
        clock.advance_to(10_000);
        flusher.await.unwrap();
        assert_eq!(
            *lock(&stored),
            vec![
                (0, 1.into()),
                (1600, 40.into()),
                (3200, 80.into()),
                (4800, 120.into()),
                (10_000, 125.into())
            ]
        );
        assert!(!flag.is_cancelled());
    }
}
