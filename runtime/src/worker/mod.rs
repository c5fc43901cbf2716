//! Workers: take workflow and activity tasks from the store and run the registered definitions.
//!
//! | file | owns |
//! |---|---|
//! | `mod.rs` | `Worker`, its options and its handle |
//! | `dispatch.rs` | the polling loop: timers, expired attempts, claims, waiting |
//! | `workflow_task.rs` | running a workflow task: replay or cached instance, commit, what follows it |
//! | `cache.rs` | the instance cache and the one-commit step's hold on an instance |
//! | `attempt.rs` | activity attempts: run, heartbeats, outcome, the one-commit step, timeouts |
//! | `local.rs` | local activities |

mod attempt;
mod cache;
mod dispatch;
mod local;
mod workflow_task;

use attempt::panic_error;
use cache::CachedWorkflow;
use dispatch::dispatch;

use crate::activity::context::{ActivityContext, ActivityInfo, CancelFlag};
use crate::api::registry::{Register, Registry};
use crate::engine::activity::{attempt_deadline, resolve_failure, resolve_result, resolve_timeout};
use crate::engine::EagerClaim;
use crate::error::{ActivityError, WorkflowError};
use crate::history::{EventKind, HistoryEvent};
use crate::store::{
    now_ms, ActivityResolution, ClaimedActivity, ClaimedWorkflowTask, CommitOutcome, Continuation,
    ExpiredActivity, FinishOutcome, Store, WorkflowTaskCommit,
};
use crate::workflow::context::WorkflowInfo;
use crate::workflow::executor::{panic_message, TaskFailure, WorkflowInstance};
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
