//! Workers: take workflow and activity tasks from the store and run the registered definitions.

use crate::activity_ctx::{ActivityContext, ActivityInfo, CancelFlag};
use crate::engine::activity::{attempt_deadline, resolve_failure, resolve_result, resolve_timeout};
use crate::engine::EagerClaim;
use crate::error::{ActivityError, WorkflowError};
use crate::executor::{panic_message, TaskFailure, WorkflowInstance};
use crate::history::{EventKind, HistoryEvent};
use crate::registry::{Register, Registry};
use crate::store::{
    now_ms, ActivityResolution, ClaimedActivity, ClaimedWorkflowTask, CommitOutcome, Continuation,
    ExpiredActivity, FinishOutcome, Store, WorkflowTaskCommit,
};
use crate::workflow_ctx::WorkflowInfo;
use futures::FutureExt;
use serde_json::Value;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::AbortHandle;
use tracing::Instrument;

/// What a worker does with a workflow whose code no longer replays its history.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NondeterminismPolicy {
    /// Keep the workflow running but held: nothing is lost, and it goes on once code that matches
    /// its history runs (retried every `held_retry_interval` and at every worker start). Default.
    #[default]
    Hold,
    /// End the workflow `Failed` with [`WorkflowError::Nondeterminism`].
    Fail,
}

/// Settings of a worker.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WorkerOptions {
    /// Workflow tasks processed at once. Default 64.
    pub max_concurrent_workflow_tasks: usize,
    /// Activity attempts run at once. Default 256.
    pub max_concurrent_activities: usize,
    /// How long a taken workflow task is this worker's before another may take it. Default 10 s.
    pub workflow_task_lease: Duration,
    /// The longest a worker waits before looking at the store again when nothing woke it. Default 1 s.
    pub poll_interval: Duration,
    /// What to do when replay and history disagree. Default [`NondeterminismPolicy::Hold`].
    pub nondeterminism: NondeterminismPolicy,
    /// How often a held workflow is tried again. Default 10 s.
    pub held_retry_interval: Duration,
    /// How long `shutdown` waits for running tasks before it abandons them. Default 10 s.
    pub shutdown_grace: Duration,
    /// How many workflow instances stay in memory between tasks. Default 10,000.
    pub max_cached_workflows: usize,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            max_concurrent_workflow_tasks: 64,
            max_concurrent_activities: 256,
            workflow_task_lease: Duration::from_secs(10),
            poll_interval: Duration::from_secs(1),
            nondeterminism: NondeterminismPolicy::Hold,
            held_retry_interval: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
            max_cached_workflows: 10_000,
        }
    }
}

/// A worker: runs registered workflows and activities from task queues.
///
/// ```no_run
/// use duraflow::prelude::*;
///
/// #[activity]
/// async fn add_one(x: i64) -> Result<i64, ActivityError> { Ok(x + 1) }
///
/// # async fn demo() -> Result<(), duraflow::Error> {
/// let store = duraflow::Store::sqlite("app.db")?;
/// let worker = duraflow::Worker::new(&store).register(add_one).start();
/// // ... start workflows with a Client ...
/// worker.shutdown().await;
/// # Ok(()) }
/// ```
pub struct Worker {
    store: Store,
    registry: Registry,
    queues: Vec<String>,
    options: WorkerOptions,
}

static WORKER_COUNTER: AtomicU64 = AtomicU64::new(1);

impl Worker {
    /// A worker on `store`, polling the `default` task queue and the queues its definitions name.
    pub fn new(store: &Store) -> Self {
        Worker {
            store: store.clone(),
            registry: Registry::new(),
            queues: Vec::new(),
            options: WorkerOptions::default(),
        }
    }

    /// Registers a workflow or an activity.
    pub fn register(mut self, def: impl Register) -> Self {
        self.registry = self.registry.register(def);
        self
    }

    /// Registers every `#[activity]` and `#[workflow]` linked into the binary (see [`Registry::all`]).
    pub fn register_all(mut self) -> Self {
        self.registry = self.registry.merge(Registry::all());
        self
    }

    /// Registers everything in `registry`.
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = self.registry.merge(registry);
        self
    }

    /// Adds a task queue to poll (the default queue is polled only when no queue is named).
    pub fn task_queue(mut self, queue: impl Into<String>) -> Self {
        self.queues.push(queue.into());
        self
    }

    /// Sets the worker's options.
    pub fn options(mut self, options: WorkerOptions) -> Self {
        self.options = options;
        self
    }

    /// Starts the worker on the current tokio runtime and returns its handle.
    ///
    /// # Panics
    /// Outside a tokio runtime, like `tokio::spawn`.
    pub fn start(self) -> WorkerHandle {
        let mut queues = self.queues;
        if queues.is_empty() {
            queues.push(crate::definition::DEFAULT_TASK_QUEUE.to_string());
        }
        for w in self.registry.workflows.values() {
            if let Some(q) = w.options().task_queue {
                queues.push(q);
            }
        }
        for a in self.registry.activities.values() {
            if let Some(q) = a.options().task_queue {
                queues.push(q);
            }
        }
        queues.sort();
        queues.dedup();
        let id = format!(
            "{}-{}-{}",
            std::process::id(),
            WORKER_COUNTER.fetch_add(1, Ordering::Relaxed),
            now_ms() % 100_000
        );
        let opts = self.options;
        let shared = Arc::new(Shared {
            wf_types: self.registry.workflow_names(),
            act_types: self.registry.activity_names(),
            wf_slots: Arc::new(Semaphore::new(opts.max_concurrent_workflow_tasks.max(1))),
            act_slots: Arc::new(Semaphore::new(opts.max_concurrent_activities.max(1))),
            store: self.store,
            registry: self.registry,
            queues,
            id: id.clone(),
            opts,
            cache: Mutex::new(HashMap::new()),
            cache_clock: AtomicU64::new(0),
            busy: Mutex::new(HashMap::new()),
            local_tasks: Mutex::new(HashMap::new()),
            attempts: Mutex::new(tokio::task::JoinSet::new()),
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let join = tokio::spawn(dispatch(shared.clone(), stop_rx));
        WorkerHandle {
            id,
            stop: stop_tx,
            join,
            shared,
        }
    }
}

/// A running worker.
pub struct WorkerHandle {
    id: String,
    stop: watch::Sender<bool>,
    join: tokio::task::JoinHandle<()>,
    shared: Arc<Shared>,
}

impl WorkerHandle {
    /// The worker's id, as recorded in `ActivityStarted` events.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Stops taking tasks, waits (up to `shutdown_grace`) for the running ones, then abandons the
    /// rest: their leases expire and another worker retries them. Nothing recorded is lost.
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        let _ = self.join.await;
        let grace = self.shared.opts.shutdown_grace;
        let deadline = tokio::time::Instant::now() + grace;
        let wf = self.shared.wf_slots.clone();
        let act = self.shared.act_slots.clone();
        let wf_n = self.shared.opts.max_concurrent_workflow_tasks.max(1) as u32;
        let act_n = self.shared.opts.max_concurrent_activities.max(1) as u32;
        let _ = tokio::time::timeout_at(deadline, async move {
            let _a = wf.acquire_many(wf_n).await;
            let _b = act.acquire_many(act_n).await;
        })
        .await;
        self.shared.abandon_all();
    }
}

/// Marks a workflow's instance as taken by a one-commit step; dropping it wakes waiting tasks.
struct BusyGuard {
    shared: Arc<Shared>,
    workflow_id: String,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        if let Some(n) = lock(&self.shared.busy).remove(&self.workflow_id) {
            n.notify_waiters();
        }
    }
}

struct CachedWorkflow {
    instance: WorkflowInstance,
    run_id: String,
    last_used: u64,
}

struct Shared {
    store: Store,
    registry: Registry,
    queues: Vec<String>,
    wf_types: Vec<String>,
    act_types: Vec<String>,
    id: String,
    opts: WorkerOptions,
    wf_slots: Arc<Semaphore>,
    act_slots: Arc<Semaphore>,
    cache: Mutex<HashMap<String, CachedWorkflow>>,
    cache_clock: AtomicU64,
    /// Workflows whose cached instance an activity's one-commit step has taken out: a workflow task
    /// for one of them waits for the instance instead of replaying the history.
    busy: Mutex<HashMap<String, Arc<tokio::sync::Notify>>>,
    local_tasks: Mutex<HashMap<(String, u64), AbortHandle>>,
    attempts: Mutex<tokio::task::JoinSet<()>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn ms_to_system(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

async fn dispatch(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let span = tracing::info_span!("worker", worker_id = %shared.id);
    async move {
        if let Err(e) = shared.store.backend.release_held().await {
            tracing::warn!(error = %e, "could not release held workflows");
        }
        let mut external = shared.store.backend.external_wakeups();
        loop {
            let notified = shared.store.hub.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if *stop.borrow() {
                break;
            }
            let did = match shared.clone().poll_once().await {
                Ok(did) => did,
                Err(e) => {
                    tracing::warn!(error = %e, "store error while polling; retrying");
                    false
                }
            };
            if did {
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
    }
    .instrument(span)
    .await
}

impl Shared {
    /// One round of work; true if a kind of work filled its batch, so more may be due at once.
    async fn poll_once(self: Arc<Self>) -> crate::Result<bool> {
        const TIMERS: usize = 256;
        const EXPIRED: usize = 64;
        const BATCH: usize = 64;
        let store = &self.store.backend;
        let mut more = store.fire_due_timers(TIMERS).await? == TIMERS;
        let expired = store.claim_expired_activities(EXPIRED).await?;
        more |= expired.len() == EXPIRED;
        for e in expired {
            self.handle_expired(e).await;
        }
        let free = self.wf_slots.available_permits().min(BATCH);
        if free > 0 && !self.wf_types.is_empty() {
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
            for task in tasks {
                let permit = self.wf_slots.clone().try_acquire_owned().ok();
                let me = self.clone();
                tokio::spawn(async move {
                    me.process_workflow_task(task).await;
                    drop(permit);
                });
            }
        }
        let free = self.act_slots.available_permits().min(BATCH);
        if free > 0 && !self.act_types.is_empty() {
            let tasks = store
                .claim_activity_tasks(&self.id, &self.queues, &self.act_types, free)
                .await?;
            more |= tasks.len() == free;
            for task in tasks {
                let permit = self.act_slots.clone().try_acquire_owned().ok();
                self.spawn_attempt(task, permit);
            }
        }
        Ok(more)
    }

    async fn next_wait(&self) -> Duration {
        let poll = self.opts.poll_interval;
        let next = self
            .store
            .backend
            .next_due_ms(&self.queues, &self.wf_types, &self.act_types)
            .await
            .ok()
            .flatten();
        match next {
            None => poll,
            Some(t) => {
                let now = now_ms();
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

    fn abandon_all(&self) {
        lock(&self.attempts).abort_all();
        for (_, h) in lock(&self.local_tasks).drain() {
            h.abort();
        }
    }

    // ------------------------------------------------------------------------------------------
    // Workflow tasks

    async fn process_workflow_task(self: Arc<Self>, task: ClaimedWorkflowTask) {
        let span = tracing::info_span!(
            "workflow_task",
            workflow_id = %task.workflow_id,
            run_id = %task.run_id,
            workflow_type = %task.workflow_type,
        );
        async {
            match self.clone().run_workflow_task(&task).await {
                Ok(()) => {}
                Err(crate::Error::Store(reason)) => {
                    // Damaged stored data: hold the workflow with the reason, so `describe` shows it,
                    // and try again later; nothing is changed or lost.
                    tracing::error!(%reason, "workflow held: its stored data cannot be read");
                    let retry = now_ms() + self.opts.held_retry_interval.as_millis() as i64;
                    if let Err(e) = self
                        .store
                        .backend
                        .hold_workflow_task(&task.workflow_id, task.token, &reason, retry)
                        .await
                    {
                        tracing::warn!(error = %e, "could not hold the workflow task");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "workflow task failed; it is retried when its lease ends")
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn run_workflow_task(self: Arc<Self>, task: &ClaimedWorkflowTask) -> crate::Result<()> {
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
                let info = WorkflowInfo {
                    workflow_id: task.workflow_id.clone(),
                    run_id: task.run_id.clone(),
                    workflow_type: task.workflow_type.clone(),
                    task_queue: task.task_queue.clone(),
                };
                match WorkflowInstance::replay(def, info, &history) {
                    Ok(mut i) => {
                        if let Some(last) = history.last() {
                            i.delivered_through = i.delivered_through.max(last.seq);
                        }
                        i
                    }
                    Err(f) => return self.task_failed(task, f, history.last()).await,
                }
            }
        };
        let now = now_ms();
        let commands = match inst.activate(now) {
            Ok(c) => c,
            Err(f) => return self.task_failed(task, f, None).await,
        };
        self.deliver_cancels_early(&task.workflow_id, &commands);
        let eager = self.eager_claim();
        let commit = WorkflowTaskCommit {
            workflow_id: task.workflow_id.clone(),
            token: task.token,
            processed_through: inst.delivered_through,
            task_time_ms: now,
            commands: commands.clone(),
            eager,
        };
        let Some(outcome) = store.commit_workflow_task(commit).await? else {
            tracing::debug!("workflow task lease was lost; another worker has it");
            return Ok(());
        };
        inst.own_marker_seq = outcome.marker_seq;
        self.after_commit(
            &task.workflow_id,
            &task.run_id,
            inst,
            &commands,
            outcome,
            fresh,
        );
        Ok(())
    }

    /// What follows a committed workflow task: in-process cancels, local activities, eagerly claimed
    /// attempts, the cache, and wake-ups.
    fn after_commit(
        self: &Arc<Self>,
        workflow_id: &str,
        run_id: &str,
        inst: WorkflowInstance,
        commands: &[EventKind],
        outcome: CommitOutcome,
        fresh: bool,
    ) {
        let mut closed = false;
        let mut wake = outcome.rerun;
        let mut unclaimed = 0usize;
        for cmd in commands {
            match cmd {
                EventKind::WorkflowCompleted { .. }
                | EventKind::WorkflowFailed { .. }
                | EventKind::WorkflowCancelled { .. } => closed = true,
                EventKind::TimerStarted { .. } => wake = true,
                EventKind::ActivityScheduled { local: false, .. } => unclaimed += 1,
                EventKind::ActivityCancelRequested { activity_seq } => {
                    self.store.hub.cancel_running(workflow_id, *activity_seq);
                    self.cancel_local(workflow_id, *activity_seq);
                }
                EventKind::ActivityScheduled {
                    activity_seq,
                    activity_type,
                    input,
                    options,
                    local: true,
                    ..
                } => self.spawn_local(
                    &inst.info(),
                    *activity_seq,
                    activity_type,
                    input.clone(),
                    options.clone(),
                ),
                _ => {}
            }
        }
        if fresh && !closed {
            for (seq, activity_type, input, options) in inst.pending_local_activities() {
                self.spawn_local(&inst.info(), seq, &activity_type, input, options);
            }
        }
        if unclaimed > outcome.eager.len() {
            wake = true;
        }
        for claimed in outcome.eager {
            let permit = self.act_slots.clone().try_acquire_owned().ok();
            self.spawn_attempt(claimed, permit);
        }
        if closed {
            drop(inst);
            self.end_of_workflow(workflow_id);
            self.store.hub.notify_closed(workflow_id);
        } else {
            self.cache_put(workflow_id, run_id, inst);
        }
        if wake {
            self.store.hub.wake_workers();
        }
    }

    /// Tells attempts running in this process of the cancels the workflow just asked for, before
    /// the commit's fsync: the code asks for them on every replay too, so the request stands even if
    /// this commit is lost. Local activities are stopped after the commit.
    fn deliver_cancels_early(&self, workflow_id: &str, commands: &[EventKind]) {
        for cmd in commands {
            if let EventKind::ActivityCancelRequested { activity_seq } = cmd {
                self.store.hub.cancel_running(workflow_id, *activity_seq);
            }
        }
    }

    fn eager_claim(&self) -> Option<EagerClaim> {
        if self.act_types.is_empty() {
            return None;
        }
        let free = self.act_slots.available_permits().min(32);
        (free > 0).then(|| EagerClaim {
            worker_id: self.id.clone(),
            activity_types: self.act_types.clone(),
            queues: self.queues.clone(),
            max: free,
        })
    }

    /// Takes a workflow's cached instance out of the cache for a one-commit step, if it is there for
    /// this run, and marks the workflow busy until the returned guard drops.
    fn cache_take_busy(
        self: &Arc<Self>,
        workflow_id: &str,
        run_id: &str,
    ) -> Option<(WorkflowInstance, BusyGuard)> {
        let mut cache = lock(&self.cache);
        let inst = match cache.get(workflow_id) {
            Some(c) if c.run_id == run_id => cache.remove(workflow_id).map(|c| c.instance),
            _ => None,
        }?;
        lock(&self.busy).insert(
            workflow_id.to_string(),
            Arc::new(tokio::sync::Notify::new()),
        );
        Some((
            inst,
            BusyGuard {
                shared: self.clone(),
                workflow_id: workflow_id.to_string(),
            },
        ))
    }

    /// Waits while a one-commit step holds the workflow's instance.
    async fn wait_not_busy(&self, workflow_id: &str) {
        loop {
            let Some(n) = lock(&self.busy).get(workflow_id).cloned() else {
                return;
            };
            let released = n.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            let still = lock(&self.busy)
                .get(workflow_id)
                .is_some_and(|m| Arc::ptr_eq(m, &n));
            if !still {
                continue;
            }
            released.await;
        }
    }

    async fn task_failed(
        &self,
        task: &ClaimedWorkflowTask,
        failure: TaskFailure,
        last: Option<&HistoryEvent>,
    ) -> crate::Result<()> {
        let reason = failure.to_string();
        let fail_now = matches!(failure, TaskFailure::Nondeterminism(_))
            && self.opts.nondeterminism == NondeterminismPolicy::Fail;
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
                task_time_ms: now_ms(),
                commands: vec![EventKind::WorkflowFailed {
                    error: WorkflowError::Nondeterminism(reason),
                }],
                eager: None,
            };
            self.store.backend.commit_workflow_task(commit).await?;
            self.end_of_workflow(&task.workflow_id);
            self.store.hub.notify_closed(&task.workflow_id);
        } else {
            tracing::error!(%reason, "workflow held: its task cannot run; nothing is lost, it is retried");
            let retry = now_ms() + self.opts.held_retry_interval.as_millis() as i64;
            self.store
                .backend
                .hold_workflow_task(&task.workflow_id, task.token, &reason, retry)
                .await?;
        }
        Ok(())
    }

    fn cache_put(&self, workflow_id: &str, run_id: &str, instance: WorkflowInstance) {
        let mut cache = lock(&self.cache);
        let tick = self.cache_clock.fetch_add(1, Ordering::Relaxed);
        if cache.len() >= self.opts.max_cached_workflows {
            // Evict the least recently used tenth.
            let mut ages: Vec<(u64, String)> = cache
                .iter()
                .map(|(k, v)| (v.last_used, k.clone()))
                .collect();
            ages.sort_unstable();
            let n = (self.opts.max_cached_workflows / 10).max(1);
            for (_, k) in ages.into_iter().take(n) {
                cache.remove(&k);
            }
        }
        if self.opts.max_cached_workflows > 0 {
            cache.insert(
                workflow_id.to_string(),
                CachedWorkflow {
                    instance,
                    run_id: run_id.to_string(),
                    last_used: tick,
                },
            );
        }
    }

    /// A workflow ended: its attempts running here hear a cancellation now, its local activities stop.
    fn end_of_workflow(&self, workflow_id: &str) {
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
                h.abort();
                false
            } else {
                true
            }
        });
    }

    // ------------------------------------------------------------------------------------------
    // Local activities

    fn spawn_local(
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

    async fn run_local(
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

    fn cancel_local(self: &Arc<Self>, workflow_id: &str, seq: u64) {
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

    // ------------------------------------------------------------------------------------------
    // Activity attempts

    fn spawn_attempt(
        self: &Arc<Self>,
        task: ClaimedActivity,
        permit: Option<OwnedSemaphorePermit>,
    ) {
        let me = self.clone();
        let span = tracing::info_span!(
            "activity_attempt",
            workflow_id = %task.workflow_id,
            run_id = %task.run_id,
            activity_type = %task.activity_type,
            activity_seq = task.activity_seq,
            attempt = task.attempt,
        );
        lock(&self.attempts).spawn(
            async move {
                me.run_attempt(task).await;
                drop(permit);
            }
            .instrument(span),
        );
        // Reap finished attempts so the set does not grow.
        let mut set = lock(&self.attempts);
        while set.try_join_next().is_some() {}
    }

    async fn run_attempt(self: Arc<Self>, task: ClaimedActivity) {
        let Some(def) = self.registry.activity(&task.activity_type).cloned() else {
            return;
        };
        let key = (task.workflow_id.clone(), task.activity_seq);
        let flag = CancelFlag::new();
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
            tokio::spawn(heartbeat_flusher(
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
        let budget = Duration::from_millis((hard_deadline - now_ms()).max(0) as u64);
        let outcome = tokio::time::timeout(budget, fut).await;
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
            Err(_) => Err(ActivityError::Timeout {
                kind: hard_kind,
                details: details.clone(),
            }),
            Ok(Err(p)) => Err(panic_error(p)),
            Ok(Ok(r)) => r,
        };
        let resolution = resolve_result(&task, result, details.clone(), now_ms());
        if self.try_continue(&task, &resolution, &details).await {
            return;
        }
        match self
            .store
            .backend
            .finish_activity(task.task_id, task.token, resolution, details)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!("attempt result dropped: its lease was taken over (fenced)")
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not record the attempt's result; it is retried after its timeout")
            }
        }
        self.store.hub.wake_workers();
    }

    /// The one-commit step: when this worker holds the workflow's instance, it runs the workflow's
    /// next task in memory with the activity's outcome and stores both in one transaction. Returns
    /// false when it did not apply (the caller records the outcome the ordinary way).
    async fn try_continue(
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
        inst.deliver_kind(&event);
        let now = now_ms();
        let Ok(commands) = inst.activate(now) else {
            // Let the ordinary workflow task replay it and hold it with the reason.
            return false;
        };
        self.deliver_cancels_early(&task.workflow_id, &commands);
        let cont = Continuation {
            commit: WorkflowTaskCommit {
                workflow_id: task.workflow_id.clone(),
                token: 0,
                processed_through: 0,
                task_time_ms: now,
                commands: commands.clone(),
                eager: self.eager_claim(),
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
                    false,
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
                tracing::warn!(error = %e, "could not record the attempt's result; it is retried after its timeout");
                self.store.hub.wake_workers();
            }
        }
        true
    }

    async fn handle_expired(self: &Arc<Self>, e: ExpiredActivity) {
        self.store
            .hub
            .cancel_running(&e.task.workflow_id, e.task.activity_seq);
        let resolution = resolve_timeout(&e, now_ms());
        tracing::info!(
            workflow_id = %e.task.workflow_id,
            activity_type = %e.task.activity_type,
            attempt = e.task.attempt,
            kind = %e.kind,
            "activity attempt timed out"
        );
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

fn panic_error(p: Box<dyn std::any::Any + Send>) -> ActivityError {
    ActivityError::application(
        "Panic",
        format!("the activity panicked: {}", panic_message(&*p)),
    )
}

/// Stores an attempt's heartbeats, throttled: the first at once, then at most one every 0.8 ×
/// heartbeat timeout, the latest details winning. A stored heartbeat extends the
/// attempt's deadline and brings back whether a cancel was requested.
async fn heartbeat_flusher(
    store: Store,
    task: ClaimedActivity,
    mut rx: watch::Receiver<Option<Value>>,
    flag: CancelFlag,
) {
    let throttle = task
        .options
        .heartbeat_timeout
        .map(|d| d.mul_f64(0.8))
        .unwrap_or(Duration::from_secs(30));
    let mut last_flush: Option<Instant> = None;
    loop {
        if rx.changed().await.is_err() {
            break;
        }
        if let Some(t) = last_flush {
            let next = t + throttle;
            let now = Instant::now();
            if next > now {
                tokio::time::sleep(next - now).await;
            }
        }
        let details = rx.borrow_and_update().clone();
        let deadline =
            attempt_deadline(&task.options, task.scheduled_ms, task.started_ms, now_ms());
        match store
            .backend
            .heartbeat(task.task_id, task.token, details, deadline)
            .await
        {
            Ok(Some(true)) => flag.cancel(),
            Ok(Some(false)) => {}
            Ok(None) => {
                // The lease was taken over: this attempt's result will not be recorded.
                flag.cancel();
                break;
            }
            Err(e) => tracing::warn!(error = %e, "could not store a heartbeat"),
        }
        last_flush = Some(Instant::now());
    }
}
