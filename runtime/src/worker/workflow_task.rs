//! Running a workflow task: the cached instance or a replay, the commit, and what follows it.

use super::*;
use crate::telemetry::TaskOutcome;

impl Shared {
    pub(super) async fn process_workflow_task(self: Arc<Self>, task: ClaimedWorkflowTask) {
        let began = std::time::Instant::now();
        // The task's span is a child of the run's (the cached instance's, or a new root that the
        // replayed instance takes over): one trace per run.
        let run_span = lock(&self.cache)
            .get(&task.workflow_id)
            .filter(|c| c.run_id == task.run_id)
            .map(|c| c.instance.span.clone())
            .unwrap_or_else(|| crate::workflow::executor::run_span(&task_info(&task)));
        let span = tracing::info_span!(
            parent: &run_span,
            "workflow_task",
            workflow_id = %task.workflow_id,
            run_id = %task.run_id,
            workflow_type = %task.workflow_type,
        );
        async {
            // At the end of a shutdown's grace the task is dropped: its lease expires and another
            // worker replays it.
            let r = tokio::select! {
                r = self.clone().run_workflow_task(&task, run_span) => r,
                _ = self.kill.cancelled() => Ok(()),
            };
            crate::telemetry::workflow_task_time(began.elapsed());
            let Err(e) = r else {
                return;
            };
            let Some(reason) = holds_the_workflow(&e) else {
                crate::telemetry::workflow_task(TaskOutcome::Error);
                tracing::warn!(error = %e, "workflow task failed; it is retried when its lease ends");
                return;
            };
            crate::telemetry::workflow_task(TaskOutcome::Held);
            // Damaged stored data: hold the workflow with the reason, so `describe` shows it, and
            // try again later; nothing is changed or lost.
            tracing::error!(%reason, "workflow held: its stored data cannot be read");
            let retry = crate::duration::after_ms(self.now_ms(), self.opts.held_retry_interval);
            if let Err(e) = self
                .store
                .backend
                .hold_workflow_task(&task.workflow_id, task.token, reason, retry)
                .await
            {
                tracing::warn!(error = %e, "could not hold the workflow task");
            }
        }
        .instrument(span)
        .await
    }

    pub(super) async fn run_workflow_task(
        self: Arc<Self>,
        task: &ClaimedWorkflowTask,
        run_span: tracing::Span,
    ) -> crate::Result<()> {
        let Some(def) = self.registry.workflow(&task.workflow_type).cloned() else {
            return Ok(());
        };
        let store = &self.store.backend;
        self.wait_not_busy(&task.workflow_id).await;
        let cached = lock(&self.cache)
            .remove(&task.workflow_id)
            .filter(|c| c.run_id == task.run_id);
        let mut instance = None;
        if let Some(c) = cached {
            let mut inst = c.instance;
            let events = store
                .read_history(&task.workflow_id, inst.delivered_through + 1)
                .await?;
            let stale = events.iter().any(|e| {
                e.seq > inst.own_marker_seq
                    && (e.kind.is_command()
                        || matches!(e.kind, EventKind::WorkflowTaskCompleted { .. }))
            });
            if stale {
                tracing::debug!("cached instance is stale (history moved on elsewhere); replaying");
            } else {
                for e in &events {
                    inst.deliver(e);
                }
                instance = Some(inst);
            }
        }
        let fresh = instance.is_none();
        let mut inst = match instance {
            Some(i) => i,
            None => {
                let history = store.read_history(&task.workflow_id, 1).await?;
                match WorkflowInstance::replay(def, task_info(task), &history) {
                    Ok(mut i) => {
                        i.span = run_span;
                        if let Some(last) = history.last() {
                            i.delivered_through = i.delivered_through.max(last.seq);
                        }
                        i
                    }
                    Err(f) => return self.task_failed(task, f, history.last()).await,
                }
            }
        };
        let now = self.now_ms();
        let commands = match inst.activate(now) {
            Ok(c) => c,
            Err(f) => return self.task_failed(task, f, None).await,
        };
        let continues = crate::engine::continue_as_new::continues(&commands);
        if commands.iter().any(crate::engine::close::is_close)
            && !continues
            && inst.unread_signals() > 0
        {
            tracing::warn!(
                unread = inst.unread_signals(),
                "the workflow returned with signals it did not read; they stay in its history"
            );
        }
        self.deliver_cancels_early(&task.workflow_id, &commands);
        let (eager, slots) = self.eager_claim(&commands);
        // While local activities of the workflow run here, its task stays leased to this worker:
        // should the worker stop, the lease expires and another worker replays the workflow and
        // starts them again. A worker that is shutting down starts none: the lease it leaves has
        // already expired, for another worker to take at once.
        let local_lease = inst.has_unresolved_local().then(|| {
            let lease_ms = self.opts.workflow_task_lease.as_millis() as i64;
            LocalLease {
                worker_id: self.id.clone(),
                until_ms: if self.is_draining() {
                    now
                } else {
                    self.now_ms().saturating_add(lease_ms)
                },
            }
        });
        let commit = WorkflowTaskCommit {
            workflow_id: task.workflow_id.clone(),
            token: task.token,
            processed_through: inst.delivered_through,
            task_time_ms: now,
            commands: commands.clone(),
            eager,
            local_lease,
        };
        let Some(outcome) = store.commit_workflow_task(commit).await? else {
            crate::telemetry::workflow_task(TaskOutcome::LeaseLost);
            tracing::debug!("workflow task lease was lost; another worker has it");
            return Ok(());
        };
        if outcome.discarded {
            // Events arrived while the code decided to end the workflow: nothing was written, and
            // the task is due again. This instance computed the dropped commands, so it goes; the
            // next task replays the history with the new events.
            tracing::debug!("new events arrived during the closing workflow task; it runs again");
            drop(inst);
            self.store.hub.wake_workers();
            return Ok(());
        }
        crate::telemetry::workflow_task(TaskOutcome::Committed);
        inst.own_marker_seq = outcome.marker_seq;
        let leased = inst.has_unresolved_local() && !outcome.rerun;
        self.after_commit(
            &task.workflow_id,
            &task.run_id,
            inst,
            &commands,
            outcome,
            slots,
            AfterCommit {
                fresh,
                lease_token: leased.then_some(task.token),
            },
        );
        Ok(())
    }

    /// What follows a committed workflow task: in-process cancels, local activities, eagerly claimed
    /// attempts, the cache, and wake-ups.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn after_commit(
        self: &Arc<Self>,
        workflow_id: &str,
        run_id: &str,
        inst: WorkflowInstance,
        commands: &[EventKind],
        outcome: CommitOutcome,
        slots: Option<OwnedSemaphorePermit>,
        how: AfterCommit,
    ) {
        let AfterCommit { fresh, lease_token } = how;
        // A worker that is shutting down starts no local activity: the workflow's task was left
        // with an expired lease, and the worker that takes it starts them.
        let run_locals = !self.is_draining();
        let mut closed = false;
        // A parent woken by its child's end, or children asked to cancel by their parent's.
        let mut wake = outcome.rerun || outcome.woke_others;
        let mut unclaimed = 0usize;
        for cmd in commands {
            match cmd {
                EventKind::WorkflowCompleted { .. }
                | EventKind::WorkflowFailed { .. }
                | EventKind::WorkflowCancelled { .. } => closed = true,
                // The run ended, and its next run's first task waits for a worker.
                EventKind::WorkflowContinuedAsNew { .. } => {
                    closed = true;
                    wake = true;
                }
                // A child's task, or a child's cancel request: work for this process's workers.
                EventKind::TimerStarted { .. }
                | EventKind::ChildWorkflowInitiated { .. }
                | EventKind::ChildWorkflowCancelRequested { .. } => wake = true,
                EventKind::ActivityScheduled { local: false, .. } => unclaimed += 1,
                EventKind::ActivityCancelRequested { activity_seq } => {
                    self.store.hub.cancel_running(workflow_id, *activity_seq);
                    self.cancel_local(workflow_id, *activity_seq, false);
                }
                EventKind::ActivityScheduled {
                    activity_seq,
                    activity_type,
                    input,
                    options,
                    local: true,
                    ..
                } if run_locals => self.spawn_local(
                    &inst.info(),
                    *activity_seq,
                    activity_type,
                    input.clone(),
                    options.clone(),
                ),
                _ => {}
            }
        }
        if fresh && !closed && run_locals {
            // A replay: local activities that did not end start again from attempt 1 (nothing of
            // an interrupted one is recorded), and those whose cancel the workflow waits for are
            // recorded cancelled (nothing runs them any more).
            for (seq, activity_type, input, options) in inst.pending_local_activities() {
                self.spawn_local(&inst.info(), seq, &activity_type, input, options);
            }
            for seq in inst.unresolved_local_cancels() {
                self.cancel_local(workflow_id, seq, true);
            }
        }
        if let (Some(token), false) = (lease_token, closed) {
            // (A worker that began to shut down since the commit runs none of them: its keeper
            // gives the task up at once.)
            self.keep_lease(workflow_id, token, outcome.marker_seq);
        }
        if unclaimed > outcome.eager.len() {
            wake = true;
        }
        // Each eagerly claimed attempt takes one of the slots reserved before the commit.
        for (claimed, permit) in split_slots(outcome.eager, slots) {
            self.spawn_attempt_under(claimed, permit, inst.span.clone());
        }
        if closed {
            drop(inst);
            self.end_of_workflow(workflow_id);
            self.store.hub.notify_closed(workflow_id);
        } else {
            self.cache_put(workflow_id, run_id, inst);
        }
        self.store.hub.notify_progress(workflow_id);
        if wake {
            self.store.hub.wake_workers();
        }
    }

    /// Tells attempts running in this process of the cancels the workflow just asked for, before
    /// the commit's fsync: the code asks for them on every replay too, so the request stands even if
    /// this commit is lost. Local activities are stopped after the commit.
    pub(super) fn deliver_cancels_early(&self, workflow_id: &str, commands: &[EventKind]) {
        for cmd in commands {
            if let EventKind::ActivityCancelRequested { activity_seq } = cmd {
                self.store.hub.cancel_running(workflow_id, *activity_seq);
            }
        }
    }

    /// What a commit may claim for this worker, and the activity slots reserved for it: at most
    /// as many attempts as there are free slots now (none while shutting down).
    /// The eager claim of a commit of `commands`: slots for the new activities this worker runs,
    /// reserved only for those (a slot held by a commit in flight is one no other commit or claim
    /// can use meanwhile).
    pub(super) fn eager_claim(
        &self,
        commands: &[EventKind],
    ) -> (Option<EagerClaim>, Option<OwnedSemaphorePermit>) {
        if self.act_types.is_empty() {
            return (None, None);
        }
        let want = commands
            .iter()
            .filter(|c| {
                matches!(c, EventKind::ActivityScheduled { local: false, activity_type, .. }
                    if self.act_types.contains(activity_type))
            })
            .count()
            .min(32);
        let Some(slots) = self.reserve_activity_slots(want) else {
            return (None, None);
        };
        let claim = EagerClaim {
            worker_id: self.id.clone(),
            activity_types: self.act_types.clone(),
            queues: self.queues.clone(),
            max: slots.num_permits(),
        };
        (Some(claim), Some(slots))
    }

    pub(super) async fn task_failed(
        &self,
        task: &ClaimedWorkflowTask,
        failure: TaskFailure,
        last: Option<&HistoryEvent>,
    ) -> crate::Result<()> {
        let reason = failure.to_string();
        let fail_now = matches!(failure, TaskFailure::Nondeterminism(_))
            && self.opts.nondeterminism == NondeterminismPolicy::Fail;
        crate::telemetry::workflow_task(if fail_now {
            TaskOutcome::Committed
        } else {
            TaskOutcome::Held
        });
        if fail_now {
            tracing::error!(%reason, "workflow no longer replays; failing it (NondeterminismPolicy::Fail)");
            let processed_through = match last {
                Some(l) => l.seq,
                None => self
                    .store
                    .backend
                    .describe(&task.workflow_id)
                    .await?
                    .map(|d| d.history_length)
                    .unwrap_or(0),
            };
            let commit = WorkflowTaskCommit {
                workflow_id: task.workflow_id.clone(),
                token: task.token,
                processed_through,
                task_time_ms: self.now_ms(),
                commands: vec![EventKind::WorkflowFailed {
                    error: WorkflowError::Nondeterminism(reason),
                }],
                eager: None,
                local_lease: None,
            };
            self.store.backend.commit_workflow_task(commit).await?;
            self.end_of_workflow(&task.workflow_id);
            self.store.hub.notify_closed(&task.workflow_id);
        } else {
            tracing::error!(%reason, "workflow held: its task cannot run; nothing is lost, it is retried");
            let retry = crate::duration::after_ms(self.now_ms(), self.opts.held_retry_interval);
            self.store
                .backend
                .hold_workflow_task(&task.workflow_id, task.token, &reason, retry)
                .await?;
        }
        Ok(())
    }

    /// A workflow ended: its attempts running here hear a cancellation now, its local activities stop.
    pub(super) fn end_of_workflow(&self, workflow_id: &str) {
        {
            let running = lock(&self.store.hub.running);
            for ((wf, _), (_, flag)) in running.iter() {
                if wf == workflow_id {
                    flag.cancel();
                }
            }
        }
        let mut locals = lock(&self.local_tasks);
        locals.retain(|(wf, _), h| {
            if wf == workflow_id {
                if let Some(h) = h {
                    h.abort();
                }
                false
            } else {
                true
            }
        });
    }
}

/// The reason to hold a workflow whose task failed with `e`: only stored data this build cannot
/// read ([`crate::Error::StoredData`]). Any other failure (the database unreachable or busy, an
/// internal error of the store) leaves the task to be retried when its lease ends.
pub(super) fn holds_the_workflow(e: &crate::Error) -> Option<&str> {
    match e {
        crate::Error::StoredData { message, .. } => Some(message),
        _ => None,
    }
}

/// What the workflow code of `task` learns about its run.
fn task_info(task: &ClaimedWorkflowTask) -> WorkflowInfo {
    WorkflowInfo {
        workflow_id: task.workflow_id.clone(),
        run_id: task.run_id.clone(),
        workflow_type: task.workflow_type.clone(),
        task_queue: task.task_queue.clone(),
        history_length: 0,
        previous_run_id: None,
    }
}

/// How a commit came about, for [`Shared::after_commit`].
pub(super) struct AfterCommit {
    /// The instance was just replayed: local activities that did not end start again.
    pub(super) fresh: bool,
    /// The commit kept the workflow task leased (with this token) for its local activities.
    pub(super) lease_token: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::holds_the_workflow;
    use crate::Error;

    #[test]
    fn only_unreadable_stored_data_holds_a_workflow() {
        let unreadable = crate::store::corrupt("history event #3 of workflow `w`: bad");
        assert!(holds_the_workflow(&unreadable).is_some_and(|r| r.contains("event #3")));
        for other in [
            Error::Store("internal error: a store job panicked".into()),
            Error::database("database is locked"),
            Error::Shutdown,
            Error::Payload {
                type_name: "u32".into(),
                message: "invalid type".into(),
            },
        ] {
            assert_eq!(holds_the_workflow(&other), None, "{other:?}");
        }
    }
}
