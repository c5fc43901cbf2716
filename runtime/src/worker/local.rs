//! Local activities: run in the workflow's worker, retried in process, recorded as markers; and
//! the lease their workflow task keeps meanwhile.
//!
//! Nothing of a local activity is stored until it ends, so while one runs its workflow task stays
//! leased to the worker (`WorkflowTaskCommit::local_lease`), renewed by a keeper task. When the
//! workflow has something new (an outcome of its local activities, a fired timer, another
//! activity's outcome, a cancel request) the keeper gives the task up, due now, and it runs. When
//! the worker stops (a shutdown, or a crash: the lease then expires), any worker takes the task,
//! replays the workflow and starts the local activities that did not end again, from attempt 1.

use super::*;

/// How often a keeper looks for news at most, when woken by an unrelated wake-up.
const CHECK_GAP: Duration = Duration::from_millis(25);

/// The lease a workflow task keeps for this worker's local activities.
pub(super) struct LeaseKeeper {
    /// The token of the task the lease belongs to.
    token: i64,
    /// Pokes the keeper: a local activity of the workflow ended here.
    poke: Arc<tokio::sync::Notify>,
}

/// A local activity waiting for its retry on a virtual clock (see `Shared::wait_local`).
struct LocalWait<'a> {
    shared: &'a Shared,
    local: (String, u64),
    key: String,
}

impl Drop for LocalWait<'_> {
    fn drop(&mut self) {
        lock(&self.shared.local_waits).remove(&self.local);
        self.shared.store.hub.release_time(&self.key);
    }
}

/// How a local activity ended here.
enum LocalOutcome {
    /// Its outcome, to record.
    Done(Result<Value, ActivityError>),
    /// The worker's shutdown interrupted it: nothing is recorded, it starts again from attempt 1
    /// when its workflow next runs.
    Interrupted,
}

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
        let mut locals = lock(&self.local_tasks);
        if locals.contains_key(&key) {
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
        let handle = self.tasks.spawn(
            async move {
                let outcome = me.run_local(&info, seq, &activity_type, input, options).await;
                let wf = info.workflow_id.clone();
                match outcome {
                    LocalOutcome::Done(result) => {
                        match me.store.backend.record_local_activity(&wf, seq, result).await {
                            Ok(_) => me.store.hub.wake_workers(),
                            Err(e) => tracing::warn!(error = %e, "could not record a local activity's result; it runs again on replay"),
                        }
                    }
                    LocalOutcome::Interrupted => {
                        tracing::info!("local activity interrupted by the worker's shutdown; it starts again when its workflow next runs")
                    }
                }
                // Only now, its outcome recorded, does it stop counting as running here (its
                // workflow task stays leased until then).
                {
                    let mut locals = lock(&me.local_tasks);
                    let key = (wf.clone(), seq);
                    if locals.get(&key).is_some_and(|h| h.is_some()) {
                        locals.remove(&key);
                    }
                }
                me.poke_lease(&wf);
            }
            .instrument(span),
        );
        locals.insert(key, Some(handle));
    }

    async fn run_local(
        &self,
        info: &WorkflowInfo,
        seq: u64,
        activity_type: &str,
        input: Value,
        options: crate::definition::ActivityOptions,
    ) -> LocalOutcome {
        let Some(def) = self.registry.activity(activity_type).cloned() else {
            return LocalOutcome::Done(Err(ActivityError::Failed {
                activity_type: activity_type.to_string(),
                attempts: 0,
                cause: Box::new(ActivityError::non_retryable(
                    "UnknownActivity",
                    format!(
                        "local activity `{activity_type}` is not registered on the worker that runs workflow `{}`; register it there",
                        info.workflow_id
                    ),
                )),
            }));
        };
        let scheduled = self.now_ms();
        let mut attempt = 1u32;
        loop {
            if self.is_draining() {
                // No new attempt once the worker is shutting down.
                return LocalOutcome::Interrupted;
            }
            let started = self.now_ms();
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
            let flag = self.cancel_flag();
            let ctx = ActivityContext::new(ainfo, None, flag.clone(), None);
            let fut = AssertUnwindSafe(def.execute_json(ctx, input.clone())).catch_unwind();
            let budget = Duration::from_millis((deadline - started).max(0) as u64);
            // At the end of a shutdown's grace the attempt is stopped: its future is dropped here.
            let outcome = tokio::select! {
                r = self.store.clock.timeout(budget, fut) => r,
                _ = self.kill.cancelled() => return LocalOutcome::Interrupted,
            };
            let error = match outcome {
                Ok(Ok(Ok(v))) => return LocalOutcome::Done(Ok(v)),
                Ok(Ok(Err(e))) => match interrupted_by_shutdown(&flag, Err(e)) {
                    Err(ActivityError::WorkerShutdown) => return LocalOutcome::Interrupted,
                    Err(e) if e.is_cancelled() => return LocalOutcome::Done(Err(e)),
                    Err(e) => e,
                    Ok(v) => return LocalOutcome::Done(Ok(v)),
                },
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
                self.now_ms(),
            ) {
                ActivityResolution::Retry {
                    retry_at_ms,
                    last_failure,
                } => {
                    report::attempt_will_retry(
                        &info.workflow_id,
                        activity_type,
                        seq,
                        attempt,
                        last_failure.as_ref(),
                        retry_at_ms,
                        self.now_ms(),
                    );
                    let mut draining = self.draining.subscribe();
                    // On a virtual clock, time skips to the retry while it waits.
                    let _waiting = self.wait_local(&info.workflow_id, seq, retry_at_ms);
                    tokio::select! {
                        _ = self.store.clock.sleep_until_ms(retry_at_ms) => {}
                        _ = draining.wait_for(|d| *d) => return LocalOutcome::Interrupted,
                    }
                    attempt += 1;
                }
                ActivityResolution::Failed(e) | ActivityResolution::TimedOut(e) => {
                    return LocalOutcome::Done(Err(e))
                }
                _ => return LocalOutcome::Done(Err(ActivityError::cancelled())),
            }
        }
    }

    /// On a virtual clock, marks a local activity as waiting for its retry at `retry_at_ms` (the
    /// worker counts as idle, and the clock may skip to the retry but not past it) until the
    /// guard drops. Nothing on the real clock.
    fn wait_local(&self, workflow_id: &str, seq: u64, retry_at_ms: i64) -> Option<LocalWait<'_>> {
        if !self.store.clock.is_virtual() {
            return None;
        }
        let key = format!("local:{}:{workflow_id}:{seq}", self.id);
        self.store.hub.hold_time(
            key.clone(),
            crate::store::hub::TimeHold {
                due_ms: retry_at_ms,
                cap_ms: Some(retry_at_ms),
            },
        );
        lock(&self.local_waits).insert((workflow_id.to_string(), seq));
        Some(LocalWait {
            shared: self,
            local: (workflow_id.to_string(), seq),
            key,
        })
    }

    /// Stops a local activity running here whose cancel the workflow asked for, waits for its task
    /// to end (its future dropped, its `Drop` guards run), and only then records it cancelled.
    /// With `after_replay`, a local activity that no longer runs anywhere (the workflow was just
    /// replayed) is recorded cancelled too; otherwise an activity not running here is left alone
    /// (it is not a local one, or it ended).
    pub(super) fn cancel_local(self: &Arc<Self>, workflow_id: &str, seq: u64, after_replay: bool) {
        let key = (workflow_id.to_string(), seq);
        // The entry stays (empty) while the cancellation is under way: the activity still counts
        // as running here, so its workflow task stays leased until the cancellation is recorded.
        let running = {
            let mut locals = lock(&self.local_tasks);
            match locals.get_mut(&key) {
                Some(slot) => match slot.take() {
                    Some(handle) => Some(handle),
                    None => return, // already being cancelled
                },
                None if after_replay => {
                    locals.insert(key.clone(), None);
                    None
                }
                None => return,
            }
        };
        let me = self.clone();
        let workflow_id = workflow_id.to_string();
        self.tasks.spawn(async move {
            if let Some(handle) = running {
                handle.abort();
                let _ = handle.await;
            }
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
            {
                let mut locals = lock(&me.local_tasks);
                if locals.get(&key).is_some_and(|h| h.is_none()) {
                    locals.remove(&key);
                }
            }
            me.poke_lease(&workflow_id);
        });
    }

    fn lease_hold_key(&self, workflow_id: &str) -> String {
        format!("lease:{}:{workflow_id}", self.id)
    }

    /// On a virtual clock: the lease of `workflow_id`'s task, extended at `extended_ms`, is to be
    /// extended again a third of the lease later, and time must not skip to its end.
    fn hold_lease_time(&self, workflow_id: &str, extended_ms: i64) {
        if !self.store.clock.is_virtual() {
            return;
        }
        let lease_ms = self.opts.workflow_task_lease.as_millis() as i64;
        let renew_ms = (lease_ms / 3).max(1);
        self.store.hub.hold_time(
            self.lease_hold_key(workflow_id),
            crate::store::hub::TimeHold {
                due_ms: extended_ms.saturating_add(renew_ms),
                cap_ms: Some(
                    extended_ms
                        .saturating_add(lease_ms - 1)
                        .max(extended_ms + renew_ms),
                ),
            },
        );
    }

    fn has_local_here(&self, workflow_id: &str) -> bool {
        lock(&self.local_tasks)
            .keys()
            .any(|(wf, _)| wf == workflow_id)
    }

    fn poke_lease(&self, workflow_id: &str) {
        if let Some(k) = lock(&self.leases).get(workflow_id) {
            k.poke.notify_one();
        }
    }

    /// Keeps the workflow task leased (claimed with `token`, committed with its marker at
    /// `seen_through`) while local activities of the workflow run here.
    pub(super) fn keep_lease(self: &Arc<Self>, workflow_id: &str, token: i64, seen_through: u64) {
        let poke = Arc::new(tokio::sync::Notify::new());
        {
            let mut leases = lock(&self.leases);
            if leases.get(workflow_id).is_some_and(|k| k.token == token) {
                return;
            }
            leases.insert(
                workflow_id.to_string(),
                LeaseKeeper {
                    token,
                    poke: poke.clone(),
                },
            );
        }
        let me = self.clone();
        let wf = workflow_id.to_string();
        // Before the keeper runs: time must not skip past the lease it is to extend.
        self.hold_lease_time(&wf, self.now_ms());
        let span = tracing::info_span!("local_lease", workflow_id = %wf);
        self.tasks.spawn(
            async move {
                me.run_lease(&wf, token, seen_through, poke).await;
                let mut leases = lock(&me.leases);
                if leases.get(&wf).is_some_and(|k| k.token == token) {
                    leases.remove(&wf);
                    if me.store.clock.is_virtual() {
                        me.store.hub.release_time(&me.lease_hold_key(&wf));
                    }
                }
            }
            .instrument(span),
        );
    }

    async fn run_lease(
        &self,
        wf: &str,
        token: i64,
        seen_through: u64,
        poke: Arc<tokio::sync::Notify>,
    ) {
        let lease = self.opts.workflow_task_lease;
        let renew_every = (lease / 3).max(Duration::from_millis(1));
        let renew_every_ms = renew_every.as_millis() as i64;
        let clock = &self.store.clock;
        // The last extension on the real clock (tokio's), and on the store's (virtual or not).
        let mut extended = tokio::time::Instant::now();
        let mut extended_ms = self.now_ms();
        let mut external = self.store.backend.external_wakeups();
        loop {
            let woken = self.store.hub.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let request = if !self.has_local_here(wf) {
                LeaseRequest::Release
            } else if extended.elapsed() >= renew_every
                || self.now_ms().saturating_sub(extended_ms) >= renew_every_ms
            {
                LeaseRequest::Extend(LocalLease {
                    worker_id: self.id.clone(),
                    until_ms: self.now_ms().saturating_add(lease.as_millis() as i64),
                })
            } else {
                LeaseRequest::Check
            };
            let extending = matches!(request, LeaseRequest::Extend(_));
            let checked = tokio::time::Instant::now();
            let checked_ms = self.now_ms();
            match self
                .store
                .backend
                .renew_local_lease(wf, token, seen_through, request)
                .await
            {
                Ok(LeaseState::Held) => {
                    if extending {
                        extended = checked;
                        extended_ms = checked_ms;
                        self.hold_lease_time(wf, checked_ms);
                    }
                }
                Ok(LeaseState::Released) => {
                    self.store.hub.wake_workers();
                    return;
                }
                Ok(LeaseState::Lost) => return,
                Err(e) => tracing::warn!(error = %e, "could not renew a local activity's lease"),
            }
            let next_extend = extended + renew_every;
            // On a virtual clock, a skip may bring the extension forward.
            let virtual_extend = async {
                if clock.is_virtual() {
                    clock.sleep_until_ms(extended_ms + renew_every_ms).await
                } else {
                    std::future::pending().await
                }
            };
            tokio::select! {
                _ = poke.notified() => continue,
                _ = tokio::time::sleep_until(next_extend) => continue,
                _ = virtual_extend => continue,
                _ = &mut woken => {}
                _ = crate::store::next_external(&mut external) => {}
            }
            // Woken by something that may concern the workflow: look, but not more often than
            // every CHECK_GAP.
            tokio::select! {
                _ = poke.notified() => {}
                _ = tokio::time::sleep_until(checked + CHECK_GAP) => {}
            }
        }
    }
}
