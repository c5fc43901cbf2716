//! Workers: take workflow and activity tasks from the store and run the registered definitions.
//!
//! | file | owns |
//! |---|---|
//! | `mod.rs` | `Worker`, its options and its handle |
//! | `dispatch.rs` | the polling loop: timers, expired attempts, claims, waiting |
//! | `workflow_task.rs` | running a workflow task: replay or cached instance, commit, what follows it |
//! | `cache.rs` | the instance cache and the one-commit step's hold on an instance |
//! | `attempt.rs` | activity attempts: run, heartbeats, outcome, the one-commit step, timeouts |
//! | `local.rs` | local activities, and the lease their workflow task keeps while they run |
//! | `shutdown.rs` | the worker's shutdown: the notice, the grace, stopping what still runs |
//! | `report.rs` | what it says: its start line, failed attempts, poller heartbeats, sampled metrics |
//!
//! Every task a worker spawns (workflow tasks, attempts and their heartbeat flushers, local
//! activities, their lease keepers and recorders) is tracked in `Shared::tasks`: `shutdown()`
//! returns only once each has ended.

mod attempt;
mod cache;
mod dispatch;
mod holder;
mod liveness;
mod local;
mod report;
mod shutdown;
mod workflow_task;

use attempt::{interrupted_by_shutdown, panic_error};
use cache::CachedWorkflow;
use dispatch::dispatch;
use workflow_task::AfterCommit;

use crate::activity::context::{ActivityContext, ActivityInfo, CancelFlag};
use crate::api::registry::{Register, Registry};
use crate::engine::activity::{attempt_deadline, resolve_failure, resolve_result, resolve_timeout};
use crate::engine::{EagerClaim, LeaseRequest, LeaseState, LocalLease};
use crate::error::{ActivityError, WorkflowError};
use crate::history::{EventKind, HistoryEvent};
use crate::store::{
    ActivityResolution, ClaimedActivity, ClaimedWorkflowTask, CommitOutcome, Continuation,
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
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
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
    /// How long `shutdown` waits for running workflow tasks, activity attempts and local
    /// activities (told at once that the worker is shutting down) before it stops what still runs.
    /// Default 10 s.
    pub shutdown_grace: Duration,
    /// How many workflow instances stay in memory between tasks. Default 10,000.
    pub max_cached_workflows: usize,
    /// The worker's liveness lease, renewed in the background every third of it. When a worker
    /// dies, the others hand its running activity attempts on once its lease has expired and
    /// stayed so for one more lease period (or at once when its process, on the same machine, is
    /// seen gone), instead of at the attempts' `start_to_close_timeout`. Default 5 s; at least
    /// 300 ms (a shorter one is raised to that, with a warning).
    pub liveness_lease: Duration,
}

/// The shortest liveness lease a worker takes.
const MIN_LIVENESS_LEASE: Duration = Duration::from_millis(300);

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
            liveness_lease: Duration::from_secs(5),
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
    /// Whether its liveness lease names its process (always, but in tests of the lease alone).
    process_identity: bool,
}

static WORKER_COUNTER: AtomicU64 = AtomicU64::new(1);

impl Worker {
    /// A worker on `store`, polling the `default` task queue and the queues its definitions name.
    ///
    /// ```no_run
    /// # use duraflow::prelude::*;
    /// # #[activity] async fn add_one(x: i64) -> Result<i64, ActivityError> { Ok(x + 1) }
    /// # async fn demo(store: duraflow::Store) -> Result<(), duraflow::Error> {
    /// let worker = duraflow::Worker::new(&store).register(add_one).start();
    /// # Ok(()) }
    /// ```
    pub fn new(store: &Store) -> Self {
        Worker {
            store: store.clone(),
            registry: Registry::new(),
            queues: Vec::new(),
            options: WorkerOptions::default(),
            process_identity: true,
        }
    }

    /// A worker whose liveness lease does not name its process, so that other workers judge it
    /// by its lease alone (as they judge a worker on another machine). For tests of the lease
    /// (`__private::worker_without_process_identity`).
    pub(crate) fn without_process_identity(mut self) -> Self {
        self.process_identity = false;
        self
    }

    /// Registers a workflow or an activity.
    ///
    /// ```no_run
    /// # use duraflow::prelude::*;
    /// # #[activity] async fn add_one(x: i64) -> Result<i64, ActivityError> { Ok(x + 1) }
    /// # async fn demo(store: duraflow::Store) -> Result<(), duraflow::Error> {
    /// let worker = duraflow::Worker::new(&store).register(add_one).start();
    /// # Ok(()) }
    /// ```
    pub fn register(mut self, def: impl Register) -> Self {
        self.registry = self.registry.register(def);
        self
    }

    /// Registers a workflow alone, without the activities and child workflows its body calls
    /// (see [`Registry::register_alone`]): for a worker that runs workflows while other workers
    /// run their activities.
    ///
    /// ```no_run
    /// # use duraflow::prelude::*;
    /// # #[activity] async fn add_one(x: i64) -> Result<i64, ActivityError> { Ok(x + 1) }
    /// # #[workflow] async fn adds(ctx: WorkflowContext, x: i64) -> Result<i64, WorkflowError> {
    /// #     Ok(ctx.activity(add_one, x).await?)
    /// # }
    /// # async fn demo(store: duraflow::Store) -> Result<(), duraflow::Error> {
    /// let workflows = duraflow::Worker::new(&store).register_alone(adds).start();
    /// let activities = duraflow::Worker::new(&store).register(add_one).start();
    /// # Ok(()) }
    /// ```
    pub fn register_alone(mut self, def: impl Register) -> Self {
        self.registry = self.registry.register_alone(def);
        self
    }

    /// Registers every `#[activity]` and `#[workflow]` linked into the binary (see [`Registry::all`]).
    ///
    /// ```no_run
    /// # async fn demo(store: duraflow::Store) -> Result<(), duraflow::Error> {
    /// // Every #[activity] and #[workflow] linked into this binary.
    /// let worker = duraflow::Worker::new(&store).register_all().start();
    /// # Ok(()) }
    /// ```
    pub fn register_all(mut self) -> Self {
        self.registry = self.registry.merge(Registry::all());
        self
    }

    /// Registers everything in `registry`.
    ///
    /// ```no_run
    /// # use duraflow::prelude::*;
    /// # #[activity] async fn add_one(x: i64) -> Result<i64, ActivityError> { Ok(x + 1) }
    /// # async fn demo(store: duraflow::Store) -> Result<(), duraflow::Error> {
    /// let registry = Registry::new().register(add_one);
    /// let worker = duraflow::Worker::new(&store).registry(registry).start();
    /// # Ok(()) }
    /// ```
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = self.registry.merge(registry);
        self
    }

    /// Adds a task queue to poll (the default queue is polled only when no queue is named).
    ///
    /// ```no_run
    /// # use duraflow::prelude::*;
    /// # #[activity] async fn add_one(x: i64) -> Result<i64, ActivityError> { Ok(x + 1) }
    /// # async fn demo(store: duraflow::Store) -> Result<(), duraflow::Error> {
    /// let worker = duraflow::Worker::new(&store)
    ///     .task_queue("payments")
    ///     .register(add_one)
    ///     .start();
    /// # Ok(()) }
    /// ```
    pub fn task_queue(mut self, queue: impl Into<String>) -> Self {
        self.queues.push(queue.into());
        self
    }

    /// Sets the worker's options.
    ///
    /// ```no_run
    /// # use duraflow::prelude::*;
    /// # #[activity] async fn add_one(x: i64) -> Result<i64, ActivityError> { Ok(x + 1) }
    /// # async fn demo(store: duraflow::Store) -> Result<(), duraflow::Error> {
    /// let mut options = duraflow::WorkerOptions::default();
    /// options.max_concurrent_activities = 16;
    /// options.shutdown_grace = std::time::Duration::from_secs(30);
    /// let worker = duraflow::Worker::new(&store).options(options).register(add_one).start();
    /// # Ok(()) }
    /// ```
    pub fn options(mut self, options: WorkerOptions) -> Self {
        self.options = options;
        self
    }

    /// Starts the worker on the current tokio runtime and returns its handle.
    ///
    /// # Panics
    /// Outside a tokio runtime, like `tokio::spawn`.
    ///
    /// ```no_run
    /// # use duraflow::prelude::*;
    /// # #[activity] async fn add_one(x: i64) -> Result<i64, ActivityError> { Ok(x + 1) }
    /// # async fn demo(store: duraflow::Store) -> Result<(), duraflow::Error> {
    /// let worker = duraflow::Worker::new(&store).register(add_one).start();
    /// // ... it runs until:
    /// worker.shutdown().await;
    /// # Ok(()) }
    /// ```
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
        // Random bits too: in containers every process may be pid 1, and two workers with one id
        // would share a liveness lease (one could take the other's attempts as lost).
        let id = format!(
            "{}-{}-{:016x}",
            std::process::id(),
            WORKER_COUNTER.fetch_add(1, Ordering::Relaxed),
            crate::api::client::rand_u64()
        );
        let mut opts = self.options;
        if opts.liveness_lease < MIN_LIVENESS_LEASE {
            tracing::warn!(
                asked = ?opts.liveness_lease,
                using = ?MIN_LIVENESS_LEASE,
                "WorkerOptions::liveness_lease is below its minimum; the minimum is used (a \
                 shorter lease would let a busy but live worker be judged lost)"
            );
            opts.liveness_lease = MIN_LIVENESS_LEASE;
        }
        let mut shared = Shared {
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
            local_waits: Mutex::new(Default::default()),
            leases: Mutex::new(HashMap::new()),
            tasks: TaskTracker::new(),
            draining: watch::channel(false).0,
            kill: CancellationToken::new(),
            polls: Vec::new(),
            process_identity: self.process_identity,
        };
        shared.polls = shared.served_polls();
        let shared = Arc::new(shared);
        if shared.store.clock.is_virtual() {
            let probe: Arc<dyn crate::store::hub::IdleProbe> = shared.clone();
            shared
                .store
                .hub
                .watch_worker(&shared.id, Arc::downgrade(&probe));
        }
        shared
            .store
            .hub
            .add_holder(Arc::new(holder::Holder(Arc::downgrade(&shared))));
        let (stop_tx, stop_rx) = watch::channel(false);
        let join = tokio::spawn(dispatch(shared.clone(), stop_rx));
        WorkerHandle {
            id,
            running: Some(Running {
                stop: stop_tx,
                join,
                shared,
            }),
        }
    }
}

/// A running worker.
///
/// Stop it with [`WorkerHandle::shutdown`], which returns once everything the worker started has
/// ended. Dropping the handle without calling it stops the worker all the same, in the background:
/// it takes no new task, and what runs gets the same notice and grace (`shutdown_grace`) on the
/// tokio runtime, with nothing waiting for the end (outside a runtime, or as the runtime shuts
/// down, what runs is dropped with the runtime). Call `shutdown().await` to know when it is over.
#[must_use = "a worker stops when its handle is dropped: keep the handle, and call `shutdown().await` to stop it"]
pub struct WorkerHandle {
    id: String,
    /// `None` once shut down.
    running: Option<Running>,
}

struct Running {
    stop: watch::Sender<bool>,
    join: tokio::task::JoinHandle<()>,
    shared: Arc<Shared>,
}

impl WorkerHandle {
    /// Whether nothing of this worker runs (no workflow task, attempt or local activity).
    pub(crate) fn is_idle(&self) -> bool {
        self.running.as_ref().is_none_or(|r| r.shared.idle())
    }

    /// Whether work of this worker's queues and types is due now (on the store's clock).
    pub(crate) async fn has_due_work(&self) -> bool {
        let Some(r) = &self.running else {
            return false;
        };
        let s = &r.shared;
        let next = s
            .store
            .backend
            .next_due_ms(&s.queues, &s.wf_types, &s.act_types)
            .await;
        matches!(next, Ok(Some(t)) if t <= s.now_ms())
    }

    /// The worker's id, as recorded in `ActivityStarted` events.
    ///
    /// ```no_run
    /// # use duraflow::prelude::*;
    /// # #[activity] async fn add_one(x: i64) -> Result<i64, ActivityError> { Ok(x + 1) }
    /// # async fn demo(store: duraflow::Store) -> Result<(), duraflow::Error> {
    /// let worker = duraflow::Worker::new(&store).register(add_one).start();
    /// println!("worker {} started", worker.id());
    /// # Ok(()) }
    /// ```
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Stops the worker, as Temporal's worker shutdown does:
    ///
    /// 1. It takes no new task.
    /// 2. Its running activity attempts and local activities are told at once: `ctx.cancelled()`
    ///    resolves, `ctx.cancel_reason()` is [`CancelReason::WorkerShutdown`](crate::CancelReason)
    ///    and `ctx.heartbeat(..)` returns [`ActivityError::WorkerShutdown`] (details are still
    ///    stored). A cancel requested meanwhile still arrives, and then wins.
    /// 3. It waits up to `shutdown_grace` for its workflow tasks, attempts and local activities to
    ///    end; what finishes is recorded as usual.
    /// 4. What still runs then is stopped: its future is dropped (its `Drop` guards run), and the
    ///    method returns once each has ended.
    ///
    /// An attempt that ended because of the shutdown (returning `WorkerShutdown`, or the
    /// cancellation the shutdown caused, or stopped at the end of the grace) is not a failure: its
    /// activity is handed to another worker at once, as its next attempt. A local activity that did
    /// not finish is recorded nowhere: its workflow task is given up at once, and the worker that
    /// takes it replays the workflow and starts the local activity again from attempt 1. Nothing
    /// recorded is lost.
    ///
    /// ```no_run
    /// # use duraflow::prelude::*;
    /// # #[activity] async fn add_one(x: i64) -> Result<i64, ActivityError> { Ok(x + 1) }
    /// # async fn demo(store: duraflow::Store) -> Result<(), duraflow::Error> {
    /// let worker = duraflow::Worker::new(&store).register(add_one).start();
    /// tokio::signal::ctrl_c().await.ok();
    /// worker.shutdown().await; // running attempts hear it and get `shutdown_grace` to finish
    /// # Ok(()) }
    /// ```
    pub async fn shutdown(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop.send_replace(true);
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(running.shutdown());
            }
        }
    }
}

/// Local activities running here, by (workflow id, activity seq).
type LocalTasks = HashMap<(String, u64), Option<JoinHandle<()>>>;

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
    /// Local activities running here, by (workflow id, activity seq); `None` while one is being
    /// cancelled (until its cancellation is recorded).
    local_tasks: Mutex<LocalTasks>,
    /// On a virtual clock, the local activities of `local_tasks` waiting for their next attempt
    /// (time may skip while they wait).
    local_waits: Mutex<std::collections::HashSet<(String, u64)>>,
    /// Workflow tasks this worker keeps leased while it runs their local activities.
    leases: Mutex<HashMap<String, local::LeaseKeeper>>,
    /// Every task the worker spawns: `shutdown()` waits for them all.
    tasks: TaskTracker,
    /// True once `shutdown()` began: running activities hear [`ActivityError::WorkerShutdown`].
    draining: watch::Sender<bool>,
    /// Cancelled at the end of the shutdown grace: what still runs stops.
    kill: CancellationToken,
    /// What it serves (task queue and type), recorded as its poller heartbeat.
    polls: Vec<crate::store::Poll>,
    /// Whether its liveness lease names its process (see `Worker::without_process_identity`).
    process_identity: bool,
}

impl Shared {
    /// Now, on the store's clock (real, or `TestEnv`'s virtual one).
    fn now_ms(&self) -> i64 {
        self.store.clock.now_ms()
    }

    /// Whether the worker is shutting down.
    fn is_draining(&self) -> bool {
        *self.draining.borrow()
    }

    /// A cancel flag for an attempt of this worker: it also reports the worker's shutdown.
    fn cancel_flag(&self) -> CancelFlag {
        CancelFlag::with_shutdown(self.draining.subscribe())
    }

    /// Takes up to `want` activity slots now (none when the worker is shutting down): a claim
    /// takes at most that many attempts, each of which keeps one of the slots.
    fn reserve_activity_slots(&self, want: usize) -> Option<OwnedSemaphorePermit> {
        if want == 0 || self.is_draining() {
            return None;
        }
        let n = self.act_slots.available_permits().min(want);
        if n == 0 {
            return None;
        }
        self.act_slots.clone().try_acquire_many_owned(n as u32).ok()
    }
}

/// Splits one slot off `slots` for each claimed item, in order; the unused rest is dropped.
fn split_slots<T>(
    items: Vec<T>,
    mut slots: Option<OwnedSemaphorePermit>,
) -> Vec<(T, Option<OwnedSemaphorePermit>)> {
    items
        .into_iter()
        .map(|item| {
            let one = slots.as_mut().and_then(|s| s.split(1));
            (item, one)
        })
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn ms_to_system(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}
