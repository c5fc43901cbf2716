//! The store boundary: every durable state transition of the runtime is one method of
//! [`StoreBackend`], atomic on its own. The SQLite store (default), the in-memory store (SQLite in
//! memory, for tests) and the Postgres store implement it with the same semantics.

pub(crate) use crate::engine::liveness::WorkerLease;
pub(crate) use crate::engine::schedule::{ScheduleChange, SchedulePlan};
pub(crate) use crate::engine::signal::{DirectClaim, NewSignal};
pub(crate) use crate::engine::start::{NewWorkflow, StartOutcome, StartPolicy};
pub(crate) use crate::engine::update::NewUpdate;
pub(crate) use crate::engine::{
    ActivityResolution, ClaimedActivity, ClaimedWorkflowTask, CommitOutcome, Continuation,
    ExpiredActivity, FinishOutcome, LeaseRequest, LeaseState, WorkflowStatus, WorkflowTaskCommit,
};
use crate::error::{ActivityError, Result, TimeoutKind, WorkflowError};
use crate::history::HistoryEvent;
use crate::schedule::{ScheduleDescription, Triggered};
pub(crate) use hub::LocalHub;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

pub(crate) mod ask;
#[cfg(test)]
mod conformance;
pub(crate) mod hub;
mod waiting;
pub(crate) use waiting::{decode_last_failure, Poll, PollKind, PollerRecord, QueueDepth};
pub use waiting::{PendingWorkflowTask, Pollers};
#[cfg(test)]
mod model;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
pub(crate) mod sqlite;

/// Whether a store error's source is a failure that may pass by itself (see
/// [`Error::is_transient`](crate::Error::is_transient)).
pub(crate) fn transient_source(e: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    if let Some(e) = e.downcast_ref::<rusqlite::Error>() {
        use sqlite::Cause;
        return matches!(sqlite::classify(e), Cause::Lock | Cause::Io);
    }
    #[cfg(feature = "postgres")]
    if let Some(t) = postgres::transient(e) {
        return t;
    }
    false
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> i64 {
    crate::clock::real_now_ms()
}

/// A workflow run as `describe` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WorkflowDescription {
    /// The workflow id.
    pub workflow_id: String,
    /// The run id.
    pub run_id: String,
    /// The registered workflow name.
    pub workflow_type: String,
    /// The task queue.
    pub task_queue: String,
    /// Its state.
    pub status: WorkflowStatus,
    /// The result, once completed.
    pub result: Option<Value>,
    /// The error, once failed.
    pub error: Option<WorkflowError>,
    /// When it started (ms since the epoch).
    pub started_ms: i64,
    /// When it ended (ms since the epoch).
    pub closed_ms: Option<i64>,
    /// How many events its history has.
    pub history_length: u64,
    /// Why its progress is held (a replay that no longer matches the history), if it is.
    pub held_reason: Option<String>,
    /// Whether a client asked to cancel it.
    pub cancel_requested: bool,
    /// Its activities that have not ended.
    pub pending_activities: Vec<PendingActivity>,
    /// Its workflow task, while one waits for a worker or runs.
    #[serde(default)]
    pub pending_task: Option<PendingWorkflowTask>,
    /// When workers last polled its task queue, and for its type.
    #[serde(default)]
    pub pollers: Pollers,
    /// Why it, or one of its activities, waits, in words, when something is amiss: no worker
    /// serves its type or task queue, or none has polled recently. Empty when all is well.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// An activity that has not ended, in a [`WorkflowDescription`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PendingActivity {
    /// Its command number within the run (shared with timers and side effects).
    pub activity_seq: u64,
    /// The registered activity name.
    pub activity_type: String,
    /// `pending` (waiting for a worker or a retry) or `running`.
    pub state: String,
    /// Attempts started so far.
    pub attempt: u32,
    /// Whether a cancel was requested.
    pub cancel_requested: bool,
    /// The last heartbeat details.
    pub heartbeat_details: Option<Value>,
    /// Its task queue.
    #[serde(default)]
    pub task_queue: String,
    /// When it was scheduled (ms since the epoch).
    #[serde(default)]
    pub scheduled_ms: i64,
    /// When its next attempt is due, while `pending` (ms since the epoch): after a failure, the
    /// retry's time.
    #[serde(default)]
    pub due_ms: i64,
    /// Why its last attempt failed, if one did and another follows (Temporal's `last_failure`).
    #[serde(default)]
    pub last_failure: Option<ActivityError>,
    /// When workers last polled its task queue, and for its type.
    #[serde(default)]
    pub pollers: Pollers,
}

/// One line of `list`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WorkflowSummary {
    /// The workflow id.
    pub workflow_id: String,
    /// The run id.
    pub run_id: String,
    /// The registered workflow name.
    pub workflow_type: String,
    /// Its state.
    pub status: WorkflowStatus,
    /// When it started (ms since the epoch).
    pub started_ms: i64,
    /// When it ended (ms since the epoch).
    pub closed_ms: Option<i64>,
}

/// One run of a workflow id, as [`crate::Client::runs`] lists them: the current run, or an
/// earlier run that another replaced (continue-as-new, a reset, a reused id).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunSummary {
    /// The workflow id.
    pub workflow_id: String,
    /// The run id.
    pub run_id: String,
    /// The registered workflow name.
    pub workflow_type: String,
    /// The task queue.
    pub task_queue: String,
    /// How it ended (`continued_as_new` for a run another continued), or `running`.
    pub status: WorkflowStatus,
    /// The result, if it completed.
    pub result: Option<Value>,
    /// The error, if it failed (a reset run ends failed, `Terminated`).
    pub error: Option<WorkflowError>,
    /// When it started (ms since the epoch).
    pub started_ms: i64,
    /// When it ended (ms since the epoch).
    pub closed_ms: Option<i64>,
    /// How many events its history has.
    pub history_length: u64,
    /// The run that followed it, if one did.
    pub next_run_id: Option<String>,
}

/// Which workflows `list` returns.
///
/// ```
/// use duraflow::{ListFilter, WorkflowStatus};
/// let hour_ago = 1_700_000_000_000 - 3_600_000;
/// let page = ListFilter::all()
///     .status(WorkflowStatus::Failed)
///     .workflow_type("place_order")
///     .id_prefix("order-")
///     .started_after_ms(hour_ago)
///     .started_before_ms(hour_ago + 3_600_000)
///     .offset(50)
///     .limit(50); // the second page of 50
/// assert_eq!(page.limit, Some(50));
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ListFilter {
    /// Only this status.
    pub status: Option<WorkflowStatus>,
    /// Only this workflow name.
    pub workflow_type: Option<String>,
    /// Only workflow ids that start with this.
    pub id_prefix: Option<String>,
    /// Only workflows started at or after this time (ms since the epoch).
    pub started_after_ms: Option<i64>,
    /// Only workflows started before this time (ms since the epoch).
    pub started_before_ms: Option<i64>,
    /// At most this many (default 1,000).
    pub limit: Option<usize>,
    /// Skip this many of the matching workflows first (paging: newest first, so page `n` of size
    /// `k` is `.offset(n * k).limit(k)`).
    pub offset: Option<usize>,
}

impl ListFilter {
    /// Every workflow (up to the default limit).
    pub fn all() -> Self {
        Self::default()
    }
    /// Only workflows with this status.
    pub fn status(mut self, s: WorkflowStatus) -> Self {
        self.status = Some(s);
        self
    }
    /// Only workflows of this registered name.
    pub fn workflow_type(mut self, t: impl Into<String>) -> Self {
        self.workflow_type = Some(t.into());
        self
    }
    /// At most `n` workflows.
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }
    /// Only workflows whose id starts with `prefix`.
    pub fn id_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.id_prefix = Some(prefix.into());
        self
    }
    /// Only workflows started at or after `ms` (ms since the epoch).
    pub fn started_after_ms(mut self, ms: i64) -> Self {
        self.started_after_ms = Some(ms);
        self
    }
    /// Only workflows started before `ms` (ms since the epoch).
    pub fn started_before_ms(mut self, ms: i64) -> Self {
        self.started_before_ms = Some(ms);
        self
    }
    /// Skip the first `n` matching workflows (newest first): the next page after `n`.
    pub fn offset(mut self, n: usize) -> Self {
        self.offset = Some(n);
        self
    }

    /// The limit as the stores bind it.
    pub(crate) fn limit_i64(&self) -> i64 {
        self.limit.unwrap_or(1000).min(i64::MAX as usize) as i64
    }

    /// The offset as the stores bind it.
    pub(crate) fn offset_i64(&self) -> i64 {
        self.offset.unwrap_or(0).min(i64::MAX as usize) as i64
    }
}

/// How many workflows have each status, as [`crate::Client::count`] returns them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StatusCounts {
    /// Not ended yet.
    pub running: u64,
    /// Returned a result.
    pub completed: u64,
    /// Returned an error, or could not run.
    pub failed: u64,
    /// Ended cancelled.
    pub cancelled: u64,
}

impl StatusCounts {
    /// All of them.
    pub fn total(&self) -> u64 {
        self.running + self.completed + self.failed + self.cancelled
    }

    /// Adds `n` workflows of `status`.
    pub(crate) fn add(&mut self, status: WorkflowStatus, n: u64) {
        match status {
            WorkflowStatus::Running => self.running += n,
            WorkflowStatus::Completed => self.completed += n,
            WorkflowStatus::Failed => self.failed += n,
            WorkflowStatus::Cancelled => self.cancelled += n,
            // Only an earlier run has it, and workflows are counted by their current run.
            WorkflowStatus::ContinuedAsNew => {}
        }
    }
}

/// One atomic state transition per method. Implemented by the SQLite and Postgres stores.
#[async_trait::async_trait]
pub(crate) trait StoreBackend: Send + Sync + 'static {
    /// A short name for logs and benchmarks, e.g. `sqlite-wal-full`.
    fn kind(&self) -> &'static str;

    /// Records a new run: the workflow row, its `WorkflowStarted` event and its first workflow task.
    async fn create_workflow(&self, wf: NewWorkflow) -> Result<()>;

    /// Starts a workflow under start policies (`engine::start::decide`): a free id is created as
    /// [`StoreBackend::create_workflow`] does; a taken one is refused, answered with the running
    /// run (`UseExisting`), or, once its last run ended, archived and replaced by the new run, in
    /// one transaction.
    async fn start_workflow(&self, wf: NewWorkflow, policy: StartPolicy) -> Result<StartOutcome>;

    /// Takes up to `max` workflow tasks of these queues and types: pending ones that are due, and running
    /// ones whose lease expired. Each claim bumps the task's fencing token.
    async fn claim_workflow_tasks(
        &self,
        worker_id: &str,
        queues: &[String],
        types: &[String],
        max: usize,
        lease_ms: i64,
    ) -> Result<Vec<ClaimedWorkflowTask>>;

    /// History events from `from_seq` on.
    async fn read_history(&self, workflow_id: &str, from_seq: u64) -> Result<Vec<HistoryEvent>>;

    /// Stores a workflow task's commands, the tasks they create, and the marker, atomically; `None` if
    /// the lease was lost (nothing written).
    async fn commit_workflow_task(
        &self,
        commit: WorkflowTaskCommit,
    ) -> Result<Option<CommitOutcome>>;

    /// Puts a workflow task back because its replay does not match the history: the workflow is held
    /// (not failed) with `reason`, and retried at `retry_at_ms`.
    async fn hold_workflow_task(
        &self,
        workflow_id: &str,
        token: i64,
        reason: &str,
        retry_at_ms: i64,
    ) -> Result<()>;

    /// Makes held workflow tasks due now (a worker with new code started).
    async fn release_held(&self) -> Result<u64>;

    /// Takes up to `max` due activity tasks of these queues and types; appends `ActivityStarted`.
    async fn claim_activity_tasks(
        &self,
        worker_id: &str,
        queues: &[String],
        types: &[String],
        max: usize,
    ) -> Result<Vec<ClaimedActivity>>;

    /// Takes activity tasks whose deadline passed, bumping their tokens so the late attempt is fenced.
    async fn claim_expired_activities(&self, max: usize) -> Result<Vec<ExpiredActivity>>;

    /// Stores heartbeat details and extends the attempt's deadline. `None` if the lease was lost, else
    /// whether a cancel was requested.
    async fn heartbeat(
        &self,
        task_id: i64,
        token: i64,
        details: Option<Value>,
        new_deadline: (i64, TimeoutKind),
    ) -> Result<Option<bool>>;

    /// Ends an attempt. Returns false (nothing written) if the token no longer matches.
    async fn finish_activity(
        &self,
        task_id: i64,
        token: i64,
        resolution: ActivityResolution,
        heartbeat_details: Option<Value>,
    ) -> Result<bool>;

    /// Ends an attempt like [`StoreBackend::finish_activity`] and, in the same transaction, commits
    /// `cont` as the workflow's next task when the worker's instance saw every other event; else
    /// enqueues a workflow task as `finish_activity` does. One commit per workflow step.
    async fn finish_activity_and_continue(
        &self,
        task_id: i64,
        token: i64,
        resolution: ActivityResolution,
        heartbeat_details: Option<Value>,
        cont: Continuation,
    ) -> Result<FinishOutcome>;

    /// Records a local activity's outcome (a marker, or a cancellation); false if already recorded or
    /// the workflow ended.
    async fn record_local_activity(
        &self,
        workflow_id: &str,
        activity_seq: u64,
        result: Result<Value, ActivityError>,
    ) -> Result<bool>;

    /// The lease a workflow task keeps while its worker runs the workflow's local activities
    /// (`commit.local_lease`): extends it, only checks it, or gives it up, as
    /// `engine::local::renew` decides. `seen_through`: the last event the worker's workflow saw;
    /// any later event (but an attempt's start) puts the task back as pending, due now.
    async fn renew_local_lease(
        &self,
        workflow_id: &str,
        token: i64,
        seen_through: u64,
        request: LeaseRequest,
    ) -> Result<LeaseState>;

    /// Fires due timers (and execution timeouts); returns how many.
    async fn fire_due_timers(&self, max: usize) -> Result<usize>;

    /// When the next task of these queues and types, timer, retry, lease or deadline falls due, in ms
    /// since the epoch.
    async fn next_due_ms(
        &self,
        queues: &[String],
        workflow_types: &[String],
        activity_types: &[String],
    ) -> Result<Option<i64>>;

    /// Records a client's cancel request; false if the workflow already ended.
    async fn request_cancel_workflow(&self, workflow_id: &str) -> Result<bool>;

    /// Records a client's signal once per request id (`engine::signal::send`): `recorded` when
    /// this call recorded it, not when an earlier call with the same request id had.
    /// [`crate::Error::WorkflowNotFound`] or [`crate::Error::WorkflowClosed`] otherwise. With
    /// `direct` (a worker of this process holds the workflow's instance) the same transaction may
    /// claim the workflow task for that worker: `claimed` is then its token.
    async fn signal_workflow(
        &self,
        workflow_id: &str,
        signal: NewSignal,
        direct: Option<DirectClaim>,
    ) -> Result<SignalOutcome>;

    /// Starts the workflow unless it exists, then records the signal as
    /// [`StoreBackend::signal_workflow`] does, in one transaction: `true` when this call started
    /// it. A workflow with this id that ended refuses the signal ([`crate::Error::WorkflowClosed`]).
    async fn signal_with_start(&self, wf: NewWorkflow, signal: NewSignal) -> Result<bool>;

    /// Records an update its validator accepted against the history up to
    /// `update.validated_at - 1` (`engine::update::accept`): the seq of its `UpdateAccepted`, or
    /// `None` when the history moved on since (nothing written: validate again).
    async fn accept_update(&self, workflow_id: &str, update: NewUpdate) -> Result<Option<u64>>;

    /// Resets the workflow (`engine::reset`): its current run (ended at once if it ran) is
    /// archived, and a new run whose history is a copy of the current one up to the chosen workflow
    /// task starts, in one transaction. [`crate::Error::WorkflowNotFound`], or
    /// [`crate::Error::InvalidOption`] for a task the history does not have.
    async fn reset_workflow(
        &self,
        workflow_id: &str,
        request: crate::engine::reset::ResetRequest,
    ) -> Result<()>;

    /// Ends a running workflow at once (`engine::terminate`); false if it had already ended.
    async fn terminate_workflow(&self, workflow_id: &str, reason: &str) -> Result<bool>;

    /// A workflow's description, or `None`.
    async fn describe(&self, workflow_id: &str) -> Result<Option<WorkflowDescription>>;

    /// The earlier runs of a workflow id (moved out by [`crate::engine::Effect::ArchiveRun`]),
    /// oldest first; the current run is not among them.
    async fn earlier_runs(&self, workflow_id: &str) -> Result<Vec<RunSummary>>;

    /// The history of an earlier run; empty if there is no such run.
    async fn earlier_run_history(
        &self,
        workflow_id: &str,
        run_id: &str,
    ) -> Result<Vec<HistoryEvent>>;

    /// Workflows matching the filter, newest first.
    async fn list(&self, filter: &ListFilter) -> Result<Vec<WorkflowSummary>>;

    /// How many workflows match the filter, by status (the filter's status, limit and offset are
    /// ignored).
    async fn count_by_status(&self, filter: &ListFilter) -> Result<StatusCounts>;

    /// Records that `worker_id` polls these task queues for these types, at `now_ms`: its poller
    /// heartbeat, which `describe` reads to say when no worker serves a workflow.
    async fn record_polls(&self, worker_id: &str, polls: &[Poll], now_ms: i64) -> Result<()>;

    /// The poller heartbeats of a task queue.
    async fn pollers(&self, task_queue: &str) -> Result<Vec<PollerRecord>>;

    /// The tasks due at `now_ms` in these task queues (any type), and the workflows held.
    async fn queue_depth(&self, queues: &[String], now_ms: i64) -> Result<QueueDepth>;
    /// Renews (or creates) this worker's liveness lease: it ends `lease_ms` from now; `process`
    /// is the worker's process identity (see `engine::liveness`).
    async fn renew_worker_lease(&self, worker_id: &str, process: &str, lease_ms: i64)
        -> Result<()>;

    /// Removes this worker's liveness lease (it stops).
    async fn end_worker_lease(&self, worker_id: &str) -> Result<()>;

    /// The liveness leases of the other workers that hold running attempts.
    async fn worker_leases(&self, except_worker: &str) -> Result<Vec<WorkerLease>>;

    /// Takes up to `max` running attempts of a worker judged lost, provided its lease still ends at
    /// `lease_expires_ms` (else it renewed since, lives, and nothing is taken): each token is
    /// bumped, so the lost worker's result is fenced. Its lease row goes once all are taken.
    async fn claim_lost_attempts(
        &self,
        worker_id: &str,
        lease_expires_ms: i64,
        max: usize,
    ) -> Result<Vec<ClaimedActivity>>;

    /// Records a new schedule (`engine::schedule::create`);
    /// [`crate::Error::DuplicateScheduleId`] if the id exists.
    async fn create_schedule(&self, plan: SchedulePlan) -> Result<()>;

    /// A schedule, or `None`.
    async fn read_schedule(&self, schedule_id: &str) -> Result<Option<ScheduleDescription>>;

    /// Every schedule, by id.
    async fn list_schedules(&self) -> Result<Vec<ScheduleDescription>>;

    /// A client's change to a schedule (`engine::schedule::change`), in one transaction with the
    /// starts it makes; [`crate::Error::ScheduleNotFound`] if there is no such schedule.
    async fn change_schedule(
        &self,
        schedule_id: &str,
        change: ScheduleChange,
    ) -> Result<Option<Triggered>>;

    /// Acts on up to `max` due schedules (`engine::schedule::fire`), each in one transaction with
    /// the starts it makes; a schedule another worker is acting on is left to it. Returns how
    /// many schedules were acted on.
    async fn fire_due_schedules(&self, max: usize) -> Result<usize>;

    /// When the next schedule is due, in ms since the epoch.
    async fn next_schedule_due_ms(&self) -> Result<Option<i64>>;

    /// A channel that ticks when another process wrote something workers may want (Postgres
    /// `LISTEN/NOTIFY`); `None` for single-process stores.
    fn external_wakeups(&self) -> Option<tokio::sync::broadcast::Receiver<()>> {
        None
    }

    /// Gives a store with cross-process notifications the hub of the `Store` it serves, so a
    /// cancel another process commits reaches the attempts running here at once.
    fn attach_hub(&self, _hub: std::sync::Weak<LocalHub>) {}

    /// The queries other processes ask of this process's workers (Postgres `LISTEN/NOTIFY`);
    /// `None` for single-process stores.
    fn query_asks(&self) -> Option<tokio::sync::broadcast::Receiver<ask::QueryAsk>> {
        None
    }

    /// Asks the workers of other processes a query and waits up to `wait` for the first reply;
    /// `None` when none came (or the store has no other processes).
    async fn ask_query(
        &self,
        workflow_id: &str,
        name: &str,
        input: &Value,
        wait: std::time::Duration,
    ) -> Result<Option<ask::QueryReply>> {
        let _ = (workflow_id, name, input, wait);
        Ok(None)
    }

    /// Sends a worker's reply to the process that asked.
    async fn reply_query(&self, to: &ask::QueryAsk, reply: ask::QueryReply) -> Result<()> {
        let _ = (to, reply);
        Ok(())
    }
}

/// What [`StoreBackend::signal_workflow`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SignalOutcome {
    /// This call recorded the signal (false: an earlier call with its request id had).
    pub recorded: bool,
    /// The token of the workflow task claimed for the [`DirectClaim`]'s worker, if it was.
    pub claimed: Option<i64>,
}

/// A handle to a durable store: SQLite file (default), memory (tests) or Postgres (feature
/// `postgres`). Clone it freely; clones share the connection and the process-local wake-ups.
///
/// ```no_run
/// # fn main() -> Result<(), duraflow::Error> {
/// let store = duraflow::Store::sqlite("duraflow.db")?;   // durable: WAL + synchronous=FULL
/// let test_store = duraflow::Store::memory()?;           // for tests
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Store {
    pub(crate) backend: Arc<dyn StoreBackend>,
    pub(crate) hub: Arc<LocalHub>,
    /// The clock the store's transitions, its workers and its clients read (real, but for
    /// `TestEnv`'s in-memory store).
    pub(crate) clock: crate::clock::Clock,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("kind", &self.backend.kind())
            .finish()
    }
}

impl Store {
    fn from_backend(backend: Arc<dyn StoreBackend>) -> Self {
        let hub = Arc::new(LocalHub::default());
        backend.attach_hub(Arc::downgrade(&hub));
        Store {
            backend,
            hub,
            clock: crate::clock::Clock::default(),
        }
    }

    /// An in-memory store on `clock` (a virtual one: `TestEnv`).
    pub(crate) fn memory_with_clock(clock: crate::clock::Clock) -> Result<Store> {
        let mut store = Self::from_backend(Arc::new(sqlite::SqliteStore::memory_with_clock(
            clock.clone(),
        )?));
        store.clock = clock;
        Ok(store)
    }

    /// Opens (or creates) the SQLite file at `path`: WAL journal, `synchronous=FULL`, schema migrated
    /// to this build's version. A file that is not a duraflow database, or is newer than this build,
    /// or is damaged where opening looks (its header, a file cut short, both ends of every table
    /// and index: a check whose cost does not grow with the file), is refused with an error and
    /// left untouched. Damage elsewhere is reported when that data is read
    /// ([`crate::Error::StoredData`], or a database error), and nothing is written then either;
    /// `sqlite3 app.db 'PRAGMA quick_check'` checks every page, offline.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), duraflow::Error> {
    /// let store = duraflow::Store::sqlite("app.db")?;
    /// assert_eq!(store.kind(), "sqlite-wal-full");
    /// # Ok(()) }
    /// ```
    pub fn sqlite(path: impl AsRef<std::path::Path>) -> Result<Store> {
        Ok(Self::from_backend(Arc::new(sqlite::SqliteStore::open(
            path.as_ref(),
            sqlite::Durability::Full,
        )?)))
    }

    /// Opens the SQLite file with `synchronous=NORMAL`: faster, but the last commits may be lost on
    /// power failure (not on a process crash). Not the default.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), duraflow::Error> {
    /// let store = duraflow::Store::sqlite_relaxed("scratch.db")?;
    /// assert_eq!(store.kind(), "sqlite-wal-normal");
    /// # Ok(()) }
    /// ```
    pub fn sqlite_relaxed(path: impl AsRef<std::path::Path>) -> Result<Store> {
        Ok(Self::from_backend(Arc::new(sqlite::SqliteStore::open(
            path.as_ref(),
            sqlite::Durability::Normal,
        )?)))
    }

    /// An in-memory store for tests: SQLite in memory, so it has exactly the semantics of the file
    /// store, and nothing survives the process.
    ///
    /// ```
    /// # fn main() -> Result<(), duraflow::Error> {
    /// let store = duraflow::Store::memory()?;
    /// assert_eq!(store.kind(), "memory");
    /// # Ok(()) }
    /// ```
    pub fn memory() -> Result<Store> {
        Ok(Self::from_backend(Arc::new(sqlite::SqliteStore::memory()?)))
    }

    /// Connects to Postgres (e.g. `postgres://user@host:5432/db`) and migrates the schema. Workers on
    /// many machines share one database this way.
    ///
    /// ```no_run
    /// # #[cfg(feature = "postgres")]
    /// # async fn demo() -> Result<(), duraflow::Error> {
    /// let store = duraflow::Store::postgres("postgres://app@db.internal:5432/app").await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub async fn postgres(url: &str) -> Result<Store> {
        Ok(Self::from_backend(Arc::new(
            postgres::PostgresStore::connect(url, None).await?,
        )))
    }

    /// Like [`Store::postgres`], with every table in the given schema (created if missing).
    ///
    /// ```no_run
    /// # #[cfg(feature = "postgres")]
    /// # async fn demo() -> Result<(), duraflow::Error> {
    /// let store =
    ///     duraflow::Store::postgres_in_schema("postgres://app@db.internal:5432/app", "orders").await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub async fn postgres_in_schema(url: &str, schema: &str) -> Result<Store> {
        Ok(Self::from_backend(Arc::new(
            postgres::PostgresStore::connect(url, Some(schema)).await?,
        )))
    }

    /// The store's kind, e.g. `sqlite-wal-full`, `memory`, `postgres`.
    ///
    /// ```
    /// # fn main() -> Result<(), duraflow::Error> {
    /// let store = duraflow::Store::memory()?;
    /// println!("running on {}", store.kind());
    /// # Ok(()) }
    /// ```
    pub fn kind(&self) -> &'static str {
        self.backend.kind()
    }
}

/// Waits for the next wake-up from another process. Never returns when there is no such channel, or
/// once it closed (the other wake-ups then do the work).
pub(crate) async fn next_external(rx: &mut Option<tokio::sync::broadcast::Receiver<()>>) {
    if let Some(r) = rx.as_mut() {
        match r.recv().await {
            Err(tokio::sync::broadcast::error::RecvError::Closed) => *rx = None,
            _ => return,
        }
    }
    std::future::pending::<()>().await
}

// ---------------------------------------------------------------------------------------------
// Helpers both SQL stores use.

pub(crate) fn kind_str(k: TimeoutKind) -> &'static str {
    match k {
        TimeoutKind::StartToClose => "start_to_close",
        TimeoutKind::ScheduleToClose => "schedule_to_close",
        TimeoutKind::ScheduleToStart => "schedule_to_start",
        TimeoutKind::Heartbeat => "heartbeat",
    }
}

/// A stored timeout kind; an unknown or missing one is an error, never a default.
pub(crate) fn kind_parse(s: Option<&str>) -> Result<TimeoutKind> {
    match s {
        Some("start_to_close") => Ok(TimeoutKind::StartToClose),
        Some("schedule_to_close") => Ok(TimeoutKind::ScheduleToClose),
        Some("schedule_to_start") => Ok(TimeoutKind::ScheduleToStart),
        Some("heartbeat") => Ok(TimeoutKind::Heartbeat),
        other => Err(corrupt(format!(
            "an activity task's deadline kind is {}",
            other.map_or("missing".to_string(), |k| format!("`{k}`"))
        ))),
    }
}

pub(crate) fn to_json(v: &impl serde::Serialize) -> String {
    // Serializing our own types to a String cannot fail: no maps with non-string keys.
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// Whether one of `candidates` (the stored signals of `workflow_id` whose request id hashes as
/// `request_id`'s does: `(seq, payload)`) was sent with `request_id` (`engine::signal` decides).
pub(crate) fn signal_among(
    candidates: impl IntoIterator<Item = Result<(i64, String)>>,
    workflow_id: &str,
    request_id: &str,
) -> Result<bool> {
    for c in candidates {
        let (seq, payload) = c?;
        let event = crate::history::format::decode_event(&payload).map_err(|e| {
            corrupt_from(
                format!("history event #{seq} of workflow `{workflow_id}`: {e}"),
                e,
            )
        })?;
        if crate::engine::signal::same_request(&event, request_id) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A stored schedule, its spec checked.
pub(crate) fn decode_schedule(
    schedule_id: &str,
    body: &str,
) -> Result<crate::schedule::ScheduleDescription> {
    let record: crate::schedule::ScheduleDescription =
        from_json(body, &format!("schedule `{schedule_id}`"))?;
    record
        .spec
        .check()
        .map_err(|e| corrupt(format!("schedule `{schedule_id}`: {e}")))?;
    Ok(record)
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(s: &str, what: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| corrupt_from(format!("{what}: {e}"), e))
}

pub(crate) use crate::error::{corrupt, corrupt_from};

/// The result and error columns of a run, as its status says to read them.
pub(crate) fn run_outcome(
    workflow_id: &str,
    status: WorkflowStatus,
    result: Option<String>,
) -> Result<(Option<Value>, Option<WorkflowError>)> {
    Ok(match (status, result) {
        (WorkflowStatus::Completed, Some(r)) => (Some(from_json(&r, "workflow result")?), None),
        (WorkflowStatus::Failed, Some(e)) => (
            None,
            Some(
                crate::history::format::decode_workflow_error(&e).map_err(|err| {
                    corrupt_from(format!("the error of workflow `{workflow_id}`: {err}"), err)
                })?,
            ),
        ),
        _ => (None, None),
    })
}

/// The error of a message sent to a workflow that ended.
pub(crate) fn closed(workflow_id: &str, status: WorkflowStatus) -> crate::Error {
    crate::Error::WorkflowClosed {
        workflow_id: workflow_id.to_string(),
        status: status.as_str().to_string(),
    }
}
