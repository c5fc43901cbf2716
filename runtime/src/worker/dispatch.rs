//! The dispatch loop: fires timers, reaps expired attempts, claims tasks, and waits for work.

use super::*;

pub(super) async fn dispatch(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let span = tracing::info_span!("worker", worker_id = %shared.id);
    async move {
        shared.log_start();
        let mut heartbeat = None;
        if let Err(e) = shared.store.backend.release_held().await {
            tracing::warn!(error = %e, "could not release held workflows");
        }
        let liveness = tokio::spawn(
            super::liveness::run(shared.clone(), stop.clone()).instrument(tracing::Span::current()),
        );
        let asks = tokio::spawn(
            super::holder::answer_asks(shared.clone(), stop.clone())
                .instrument(tracing::Span::current()),
        );
        let mut external = shared.store.backend.external_wakeups();
        // After a store error the next poll waits: a failing poll would otherwise be retried at
        // once by every queued wake-up (about 60 tries in 5 ms per worker while a server is down).
        let mut backoff = crate::backoff::Backoff::store();
        loop {
            let notified = shared.store.hub.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if *stop.borrow() {
                break;
            }
            shared.heartbeat_if_due(&mut heartbeat).await;
            let did = match shared.clone().poll_once().await {
                Ok(did) => {
                    let failures = backoff.reset();
                    if failures > 0 {
                        tracing::info!(failures, "the store answers again; polling resumes");
                    }
                    did
                }
                Err(e) => {
                    let wait = backoff.next_delay();
                    tracing::warn!(
                        error = %e,
                        failures = backoff.failures(),
                        retry_in = ?wait,
                        "store error while polling; retrying after a backoff"
                    );
                    // Wake-ups do not cut the backoff short; a stop does.
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.changed() => {}
                    }
                    continue;
                }
            };
            if did || shared.skip_time().await {
                continue;
            }
            let wait = shared.next_wait().await;
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
                _ = crate::store::next_external(&mut external) => {}
            }
        }
        let _ = liveness.await;
        if shared.store.clock.is_virtual() {
            shared.store.hub.forget_worker(&shared.id);
        }
        let _ = asks.await;
    }
    .instrument(span)
    .await
}

impl crate::store::hub::IdleProbe for Shared {
    fn idle(&self) -> bool {
        Shared::idle(self)
    }
}

impl Shared {
    /// One round of work; true if a kind of work filled its batch, so more may be due at once.
    pub(super) async fn poll_once(self: Arc<Self>) -> crate::Result<bool> {
        const TIMERS: usize = 256;
        const SCHEDULES: usize = 32;
        const EXPIRED: usize = 64;
        const BATCH: usize = 64;
        let store = &self.store.backend;
        let mut more = store.fire_due_timers(TIMERS).await? == TIMERS;
        // Due schedules start their workflows (`engine::schedule`); a schedule's failure is
        // logged and leaves the rest of the round alone.
        match store.fire_due_schedules(SCHEDULES).await {
            Ok(n) => more |= n == SCHEDULES,
            Err(e) => tracing::warn!(error = %e, "could not fire due schedules; retrying"),
        }
        let expired = store.claim_expired_activities(EXPIRED).await?;
        more |= expired.len() == EXPIRED;
        for e in expired {
            self.handle_expired(e).await;
        }
        let free = self.wf_slots.available_permits().min(BATCH);
        let wf_slots = (free > 0 && !self.wf_types.is_empty())
            .then(|| {
                self.wf_slots
                    .clone()
                    .try_acquire_many_owned(free as u32)
                    .ok()
            })
            .flatten();
        if let Some(slots) = wf_slots {
            let tasks = store
                .claim_workflow_tasks(
                    &self.id,
                    &self.queues,
                    &self.wf_types,
                    free,
                    self.opts.workflow_task_lease.as_millis() as i64,
                )
                .await?;
            more |= tasks.len() == free;
            for (task, permit) in split_slots(tasks, Some(slots)) {
                let me = self.clone();
                self.tasks.spawn(async move {
                    me.process_workflow_task(task).await;
                    drop(permit);
                });
            }
        }
        let act_slots = if self.act_types.is_empty() {
            None
        } else {
            self.reserve_activity_slots(BATCH)
        };
        if let Some(slots) = act_slots {
            let free = slots.num_permits();
            let tasks = store
                .claim_activity_tasks(&self.id, &self.queues, &self.act_types, free)
                .await?;
            more |= tasks.len() == free;
            for (task, permit) in split_slots(tasks, Some(slots)) {
                self.spawn_attempt(task, permit);
            }
        }
        Ok(more)
    }

    /// On a virtual clock (`TestEnv`), when this worker has nothing running and nothing is due,
    /// moves the clock to the next due timer, retry, lease, deadline or local activity retry:
    /// time skips while every workflow waits. Every worker of the store (in this process) must be
    /// idle, not only this one. It does not skip while a worker of the store has to
    /// act first (renew its liveness lease or a workflow task's lease, start a local activity's
    /// retry: see `TimeHold`), nor past a lease it keeps. True if it moved. The real clock never
    /// skips.
    pub(super) async fn skip_time(&self) -> bool {
        let clock = &self.store.clock;
        if !clock.is_virtual() || !self.idle() || !self.store.hub.workers_idle() {
            return false;
        }
        let next = self.next_due_ms().await;
        let now = clock.now_ms();
        let Some(cap) = self.store.hub.skip_limit(now) else {
            return false;
        };
        let to = match (next, cap) {
            (Some(t), Some(c)) => Some(t.min(c)),
            (t, c) => t.or(c),
        };
        match to {
            Some(t) if t > now && self.idle() && self.store.hub.workers_idle() => {
                tracing::debug!(to_ms = t, "virtual clock skips ahead");
                clock.advance_to(t);
                true
            }
            _ => false,
        }
    }

    /// When the next task of this worker, timer, retry, lease, deadline or schedule falls due.
    async fn next_due_ms(&self) -> Option<i64> {
        let backend = &self.store.backend;
        let work = backend
            .next_due_ms(&self.queues, &self.wf_types, &self.act_types)
            .await
            .ok()
            .flatten();
        let schedule = backend.next_schedule_due_ms().await.ok().flatten();
        match (work, schedule) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Nothing of this worker runs: no workflow task, no activity attempt, no local activity
    /// (but local activities waiting for their next attempt).
    pub(super) fn idle(&self) -> bool {
        self.wf_slots.available_permits() == self.opts.max_concurrent_workflow_tasks.max(1)
            && self.act_slots.available_permits() == self.opts.max_concurrent_activities.max(1)
            && lock(&self.local_tasks).len() == lock(&self.local_waits).len()
    }

    pub(super) async fn next_wait(&self) -> Duration {
        let poll = self.opts.poll_interval;
        let next = self.next_due_ms().await;
        match next {
            None => poll,
            Some(t) => {
                let now = self.now_ms();
                if t > now {
                    Duration::from_millis((t - now) as u64).min(poll)
                } else if self.wf_slots.available_permits() == 0
                    || self.act_slots.available_permits() == 0
                {
                    // Due work waits for a free slot; finishing tasks wake us.
                    poll
                } else {
                    // Due, but another worker holds it or it just changed: look again soon.
                    Duration::from_millis(5).min(poll)
                }
            }
        }
    }
}
