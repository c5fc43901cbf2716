//! The client: start workflows, await their results, cancel, describe, list, read histories.

use crate::api::registry::Registry;
use crate::definition::DEFAULT_TASK_QUEUE;
use crate::engine::start::{StartPolicy, WorkflowIdConflictPolicy, WorkflowIdReusePolicy};
use crate::error::{Error, Result};
use crate::history::HistoryEvent;
use crate::store::{
    ListFilter, NewWorkflow, RunSummary, StatusCounts, Store, WorkflowDescription, WorkflowStatus,
    WorkflowSummary,
};
use crate::workflow::definition::WorkflowDefinition;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::marker::PhantomData;
use std::time::Duration;

/// Options for starting a workflow ([`Client::start_with`], [`Client::start_by_name_with`]).
///
/// ```
/// use duraflow::{StartOptions, WorkflowIdConflictPolicy, WorkflowIdReusePolicy};
/// // An idempotent start: the running workflow's handle if there is one, a new run if the
/// // last one failed, an error if it completed.
/// let options = StartOptions::default()
///     .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
///     .id_reuse_policy(WorkflowIdReusePolicy::AllowDuplicateFailedOnly);
/// assert_eq!(options.id_conflict_policy, WorkflowIdConflictPolicy::UseExisting);
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct StartOptions {
    /// The task queue; default: the registered definition's, else `default`.
    pub task_queue: Option<String>,
    /// Longest time the workflow may run.
    pub execution_timeout: Option<Duration>,
    /// Whether the id of a workflow that **ended** may be used again (default
    /// [`WorkflowIdReusePolicy::RejectDuplicate`]: an id is used once).
    pub id_reuse_policy: WorkflowIdReusePolicy,
    /// What happens when a workflow with the id is **running** (default
    /// [`WorkflowIdConflictPolicy::Fail`]).
    pub id_conflict_policy: WorkflowIdConflictPolicy,
}

impl StartOptions {
    /// Sets [`StartOptions::id_reuse_policy`].
    pub fn id_reuse_policy(mut self, policy: WorkflowIdReusePolicy) -> Self {
        self.id_reuse_policy = policy;
        self
    }

    /// Sets [`StartOptions::id_conflict_policy`].
    pub fn id_conflict_policy(mut self, policy: WorkflowIdConflictPolicy) -> Self {
        self.id_conflict_policy = policy;
        self
    }

    /// Sets [`StartOptions::task_queue`].
    pub fn task_queue(mut self, queue: impl Into<String>) -> Self {
        self.task_queue = Some(queue.into());
        self
    }

    /// Sets [`StartOptions::execution_timeout`].
    pub fn execution_timeout(mut self, timeout: Duration) -> Self {
        self.execution_timeout = Some(timeout);
        self
    }

    fn policy(&self) -> StartPolicy {
        StartPolicy {
            reuse: self.id_reuse_policy,
            conflict: self.id_conflict_policy,
        }
    }
}

/// How a wait for a workflow's end ([`WorkflowHandle::result_with`], [`Client::wait_with`]) treats
/// a store that fails meanwhile.
///
/// ```no_run
/// # use duraflow::prelude::*;
/// # use std::time::Duration;
/// # async fn demo(handle: duraflow::WorkflowHandle<String>) -> Result<(), duraflow::Error> {
/// // Wait through an outage of the database of up to 5 minutes.
/// let opts = duraflow::WaitOptions::default().outage_tolerance(Duration::from_secs(300));
/// let out = handle.result_with(opts).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WaitOptions {
    /// How long the wait goes on through transient store errors in a row ([`Error::is_transient`]:
    /// a server restarting, a cut connection, a busy lock), retrying with backoff, before it
    /// returns the last one. A permanent error returns at once. Default: 60 s.
    pub outage_tolerance: Duration,
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions {
            outage_tolerance: Duration::from_secs(60),
        }
    }
}

impl WaitOptions {
    /// Sets [`WaitOptions::outage_tolerance`]; `Duration::ZERO` returns the first error.
    pub fn outage_tolerance(mut self, d: Duration) -> Self {
        self.outage_tolerance = d;
        self
    }
}

/// Starts workflows and looks at them. Cheap to clone.
///
/// ```no_run
/// use duraflow::prelude::*;
///
/// #[workflow]
/// async fn hello(ctx: WorkflowContext, name: String) -> Result<String, WorkflowError> {
///     Ok(format!("hello, {name}"))
/// }
///
/// # async fn demo() -> Result<(), duraflow::Error> {
/// let store = duraflow::Store::sqlite("app.db")?;
/// let worker = duraflow::Worker::new(&store).register(hello).start();
/// let client = duraflow::Client::new(&store);
/// let handle = client.start(hello, "hello-1", "world".to_string()).await?;
/// assert_eq!(handle.result().await?, "hello, world");
/// worker.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    store: Store,
    registry: Option<Registry>,
}

impl Client {
    /// A client on `store`.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), duraflow::Error> {
    /// let store = duraflow::Store::sqlite("app.db")?;
    /// let client = duraflow::Client::new(&store);
    /// # Ok(()) }
    /// ```
    pub fn new(store: &Store) -> Self {
        Client {
            store: store.clone(),
            registry: None,
        }
    }

    /// A client that checks names given to [`Client::start_by_name`] against `registry`, and takes each
    /// workflow's task queue from it.
    ///
    /// ```no_run
    /// # use duraflow::prelude::*;
    /// # #[workflow] async fn hello(ctx: WorkflowContext, name: String) -> Result<String, WorkflowError> { Ok(name) }
    /// # async fn demo(client: duraflow::Client) -> Result<(), duraflow::Error> {
    /// let client = client.with_registry(Registry::new().register(hello));
    /// // A name no worker of this registry knows is refused at once:
    /// assert!(client.start_by_name("helo", "hello-2", "x".into()).await.is_err());
    /// # Ok(()) }
    /// ```
    pub fn with_registry(mut self, registry: Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Starts a workflow, typed: the input type is the definition's.
    ///
    /// ```no_run
    /// # use duraflow::prelude::*;
    /// # #[workflow] async fn hello(ctx: WorkflowContext, name: String) -> Result<String, WorkflowError> { Ok(name) }
    /// # async fn demo(client: duraflow::Client) -> Result<(), duraflow::Error> {
    /// let handle = client.start(hello, "hello-1", "world".to_string()).await?;
    /// let greeting: String = handle.result().await?;
    /// # Ok(()) }
    /// ```
    pub async fn start<W: WorkflowDefinition>(
        &self,
        workflow: W,
        workflow_id: impl Into<String>,
        input: W::Input,
    ) -> Result<WorkflowHandle<W::Output>> {
        self.start_with(workflow, workflow_id, input, StartOptions::default())
            .await
    }

    /// [`Client::start`] with options: the id reuse and conflict policies (an idempotent start,
    /// a new run of an id whose last run ended), a task queue or execution timeout other than the
    /// definition's.
    ///
    /// ```no_run
    /// # use duraflow::prelude::*;
    /// # #[workflow] async fn nightly(ctx: WorkflowContext, day: u32) -> Result<(), WorkflowError> { Ok(()) }
    /// # async fn demo(client: duraflow::Client) -> Result<(), duraflow::Error> {
    /// use duraflow::{StartOptions, WorkflowIdConflictPolicy, WorkflowIdReusePolicy};
    /// // Safe to retry: a second call returns the running workflow's handle.
    /// let options = StartOptions::default()
    ///     .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
    ///     .id_reuse_policy(WorkflowIdReusePolicy::AllowDuplicate); // and again tomorrow
    /// let handle = client.start_with(nightly, "nightly-report", 17, options).await?;
    /// # Ok(()) }
    /// ```
    pub async fn start_with<W: WorkflowDefinition>(
        &self,
        workflow: W,
        workflow_id: impl Into<String>,
        input: W::Input,
        mut options: StartOptions,
    ) -> Result<WorkflowHandle<W::Output>> {
        let input = serde_json::to_value(&input).map_err(|e| Error::Payload {
            type_name: std::any::type_name::<W::Input>().to_string(),
            message: e.to_string(),
        })?;
        let opts = workflow.options();
        options.task_queue = options.task_queue.or(opts.task_queue);
        options.execution_timeout = options.execution_timeout.or(opts.execution_timeout);
        self.start_raw(workflow.name(), workflow_id.into(), input, options)
            .await
            .map(|h| h.typed())
    }

    /// Starts a workflow by its registered name, with JSON input. The input is checked by the workflow
    /// when it runs: a mismatch fails the workflow with a message that names the expected type.
    ///
    /// ```no_run
    /// # async fn demo(client: duraflow::Client) -> Result<(), duraflow::Error> {
    /// let handle = client.start_by_name("hello", "hello-2", serde_json::json!("world")).await?;
    /// let output: serde_json::Value = handle.result().await?;
    /// # Ok(()) }
    /// ```
    pub async fn start_by_name(
        &self,
        name: &str,
        workflow_id: impl Into<String>,
        input: Value,
    ) -> Result<WorkflowHandle<Value>> {
        self.start_by_name_with(name, workflow_id, input, StartOptions::default())
            .await
    }

    /// [`Client::start_by_name`] with options.
    ///
    /// ```no_run
    /// # async fn demo(client: duraflow::Client) -> Result<(), duraflow::Error> {
    /// let mut options = duraflow::StartOptions::default();
    /// options.task_queue = Some("greetings".into());
    /// options.execution_timeout = Some(std::time::Duration::from_secs(60));
    /// client.start_by_name_with("hello", "hello-3", serde_json::json!("world"), options).await?;
    /// # Ok(()) }
    /// ```
    pub async fn start_by_name_with(
        &self,
        name: &str,
        workflow_id: impl Into<String>,
        input: Value,
        mut options: StartOptions,
    ) -> Result<WorkflowHandle<Value>> {
        if let Some(reg) = &self.registry {
            match reg.workflow(name) {
                None => {
                    return Err(Error::UnknownWorkflowType {
                        name: name.to_string(),
                        known: reg.workflow_names().join(", "),
                    })
                }
                Some(w) => {
                    let o = w.options();
                    options.task_queue = options.task_queue.or(o.task_queue);
                    options.execution_timeout = options.execution_timeout.or(o.execution_timeout);
                }
            }
        }
        self.start_raw(name, workflow_id.into(), input, options)
            .await
    }

    pub(crate) async fn start_raw(
        &self,
        name: &str,
        workflow_id: String,
        input: Value,
        options: StartOptions,
    ) -> Result<WorkflowHandle<Value>> {
        let policy = options.policy();
        let new = new_workflow(
            name,
            workflow_id.clone(),
            input,
            options,
            self.store.clock.now_ms(),
        )?;
        if policy.is_default() {
            self.store.backend.create_workflow(new).await?;
        } else if !self
            .store
            .backend
            .start_workflow(new, policy)
            .await?
            .started
        {
            // `UseExisting`: the running workflow's handle; nothing was recorded.
            return Ok(self.handle(workflow_id));
        }
        self.store.hub.wake_workers();
        Ok(WorkflowHandle {
            client: self.clone(),
            workflow_id,
            _marker: PhantomData,
        })
    }

    /// A handle to an existing workflow, with its output type.
    ///
    /// ```no_run
    /// # async fn demo(client: duraflow::Client) -> Result<(), duraflow::Error> {
    /// let handle = client.handle::<String>("hello-1");
    /// let greeting = handle.result().await?;
    /// # Ok(()) }
    /// ```
    pub fn handle<O>(&self, workflow_id: impl Into<String>) -> WorkflowHandle<O> {
        WorkflowHandle {
            client: self.clone(),
            workflow_id: workflow_id.into(),
            _marker: PhantomData,
        }
    }

    /// The store this client uses.
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// The registry name-based calls check against: the client's own, else every definition
    /// linked into this binary.
    pub(crate) fn registry(&self) -> Registry {
        self.registry.clone().unwrap_or_else(Registry::all)
    }

    /// Describes a workflow: its state, its pending workflow task and activities (attempts, last
    /// failure, when the next attempt is due), and, in [`WorkflowDescription::notes`], why it
    /// waits when no worker serves its type or task queue ("no pollers").
    ///
    /// ```no_run
    /// # async fn demo(client: duraflow::Client) -> Result<(), duraflow::Error> {
    /// let d = client.describe("order-17").await?;
    /// for a in &d.pending_activities {
    ///     if let Some(failure) = &a.last_failure {
    ///         println!("{} attempt {} failed: {failure}", a.activity_type, a.attempt);
    ///     }
    /// }
    /// for note in &d.notes {
    ///     println!("{note}"); // e.g. "no pollers: no worker has polled task queue `orders` ..."
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn describe(&self, workflow_id: &str) -> Result<WorkflowDescription> {
        let mut d = self.describe_row(workflow_id).await?;
        crate::api::waiting::explain(&self.store, &mut d, self.store.clock.now_ms()).await?;
        Ok(d)
    }

    /// The stored description alone (no poller reads), for the waits on a workflow's end.
    async fn describe_row(&self, workflow_id: &str) -> Result<WorkflowDescription> {
        self.store
            .backend
            .describe(workflow_id)
            .await?
            .ok_or_else(|| Error::WorkflowNotFound(workflow_id.to_string()))
    }

    /// Lists workflows, newest first.
    ///
    /// ```no_run
    /// # use duraflow::{Client, ListFilter, WorkflowStatus};
    /// # async fn demo(client: Client) -> Result<(), duraflow::Error> {
    /// let hour_ago = std::time::SystemTime::now()
    ///     .duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64 - 3_600_000;
    /// let page = client
    ///     .list(
    ///         ListFilter::all()
    ///             .status(WorkflowStatus::Running)
    ///             .id_prefix("order-")
    ///             .started_after_ms(hour_ago)
    ///             .offset(50) // the second page of 50
    ///             .limit(50),
    ///     )
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// ```no_run
    /// # async fn demo(client: duraflow::Client) -> Result<(), duraflow::Error> {
    /// use duraflow::{ListFilter, WorkflowStatus};
    /// let running = client
    ///     .list(ListFilter::all().status(WorkflowStatus::Running).limit(50))
    ///     .await?;
    /// for w in &running {
    ///     println!("{} {} since {}", w.workflow_id, w.workflow_type, w.started_ms);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list(&self, filter: ListFilter) -> Result<Vec<WorkflowSummary>> {
        self.store.backend.list(&filter).await
    }

    /// How many workflows match `filter`, by status; the filter's status, limit and offset do not
    /// apply.
    ///
    /// ```no_run
    /// # use duraflow::{Client, ListFilter};
    /// # async fn demo(client: Client) -> Result<(), duraflow::Error> {
    /// let counts = client.count(ListFilter::all().workflow_type("order")).await?;
    /// println!("{} running of {}", counts.running, counts.total());
    /// # Ok(()) }
    /// ```
    pub async fn count(&self, filter: ListFilter) -> Result<StatusCounts> {
        self.store.backend.count_by_status(&filter).await
    }

    /// A workflow's event history.
    ///
    /// ```no_run
    /// # async fn demo(client: duraflow::Client) -> Result<(), duraflow::Error> {
    /// for event in client.history("hello-1").await? {
    ///     println!("#{} {}", event.seq, event.kind.name());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn history(&self, workflow_id: &str) -> Result<Vec<HistoryEvent>> {
        let h = self.store.backend.read_history(workflow_id, 1).await?;
        if h.is_empty() {
            return Err(Error::WorkflowNotFound(workflow_id.to_string()));
        }
        Ok(h)
    }

    /// Every run of a workflow id, oldest first, the current run last: a workflow that continued
    /// as new (or was reset, or whose id was reused) has several, each with its own history. An
    /// earlier run's `next_run_id` names the run that followed it.
    ///
    /// ```no_run
    /// # async fn demo(client: duraflow::Client) -> Result<(), duraflow::Error> {
    /// for run in client.runs("subscription-7").await? {
    ///     println!("{} {} ({} events)", run.run_id, run.status.as_str(), run.history_length);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn runs(&self, workflow_id: &str) -> Result<Vec<RunSummary>> {
        let current = self.describe_row(workflow_id).await?;
        let mut runs = chain_order(self.store.backend.earlier_runs(workflow_id).await?);
        runs.push(RunSummary {
            workflow_id: current.workflow_id,
            run_id: current.run_id,
            workflow_type: current.workflow_type,
            task_queue: current.task_queue,
            status: current.status,
            result: current.result,
            error: current.error,
            started_ms: current.started_ms,
            closed_ms: current.closed_ms,
            history_length: current.history_length,
            next_run_id: None,
        });
        Ok(runs)
    }

    /// One run of a workflow id (see [`Client::runs`]); [`Error::RunNotFound`] if it has no such
    /// run.
    ///
    /// ```no_run
    /// # async fn demo(client: duraflow::Client, run_id: &str) -> Result<(), duraflow::Error> {
    /// let run = client.describe_run("subscription-7", run_id).await?;
    /// println!("{:?}, followed by {:?}", run.status, run.next_run_id);
    /// # Ok(()) }
    /// ```
    pub async fn describe_run(&self, workflow_id: &str, run_id: &str) -> Result<RunSummary> {
        self.runs(workflow_id)
            .await?
            .into_iter()
            .find(|r| r.run_id == run_id)
            .ok_or_else(|| Error::RunNotFound {
                workflow_id: workflow_id.to_string(),
                run_id: run_id.to_string(),
            })
    }

    /// The event history of one run of a workflow id: the current one, or an earlier one (see
    /// [`Client::runs`]). [`Error::RunNotFound`] if it has no such run.
    ///
    /// ```no_run
    /// # async fn demo(client: duraflow::Client, run_id: &str) -> Result<(), duraflow::Error> {
    /// let events = client.run_history("subscription-7", run_id).await?;
    /// # Ok(()) }
    /// ```
    pub async fn run_history(&self, workflow_id: &str, run_id: &str) -> Result<Vec<HistoryEvent>> {
        let earlier = self
            .store
            .backend
            .earlier_run_history(workflow_id, run_id)
            .await?;
        if !earlier.is_empty() {
            return Ok(earlier);
        }
        let current = self.describe_row(workflow_id).await?;
        if current.run_id != run_id {
            return Err(Error::RunNotFound {
                workflow_id: workflow_id.to_string(),
                run_id: run_id.to_string(),
            });
        }
        let h = self.history(workflow_id).await?;
        // The run may have been replaced between the reads: its history is then archived.
        if self.describe_row(workflow_id).await?.run_id == run_id {
            return Ok(h);
        }
        self.store
            .backend
            .earlier_run_history(workflow_id, run_id)
            .await
    }

    /// [`Client::run_history`] as JSON, in the form of [`Client::history_json`] (what the
    /// Replayer reads): each run's history replays on its own.
    pub async fn run_history_json(&self, workflow_id: &str, run_id: &str) -> Result<Value> {
        let h = self.run_history(workflow_id, run_id).await?;
        serde_json::to_value(h).map_err(|e| Error::Store(e.to_string()))
    }

    /// A workflow's event history as JSON: an array of events, each with `seq`, `time_ms`, `event` and
    /// the event's fields.
    ///
    /// ```no_run
    /// # async fn demo(client: duraflow::Client) -> Result<(), duraflow::Error> {
    /// let json = client.history_json("hello-1").await?;
    /// std::fs::write("hello-1.json", serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    /// # Ok(()) }
    /// ```
    pub async fn history_json(&self, workflow_id: &str) -> Result<Value> {
        let h = self.history(workflow_id).await?;
        serde_json::to_value(h).map_err(|e| Error::Store(e.to_string()))
    }

    /// Asks a workflow to cancel: `ctx.cancelled()` resolves in it, its pending activities are cancelled
    /// by their cancellation types, and a durable sleep is interrupted. Returns false if it had ended.
    ///
    /// A workflow that is **held** (its code no longer replays its history) cannot run to act on a
    /// cancel: the request is not recorded, and the answer is [`Error::WorkflowHeld`] with the
    /// reason. [`Client::terminate`] ends it without running its code.
    ///
    /// ```no_run
    /// # async fn demo(client: duraflow::Client) -> Result<(), duraflow::Error> {
    /// if !client.cancel("hello-1").await? {
    ///     println!("it had already ended");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn cancel(&self, workflow_id: &str) -> Result<bool> {
        if let Some(held) = self.held(workflow_id).await? {
            return Err(held);
        }
        let r = self
            .store
            .backend
            .request_cancel_workflow(workflow_id)
            .await?;
        self.store.hub.wake_workers();
        Ok(r)
    }

    /// Ends a running workflow at once, with `reason`: it is recorded as failed with error type
    /// `Terminated` (a `workflow_failed` event with the reason), its code does not run again (no
    /// cleanup, unlike [`Client::cancel`]), its pending activities and timers are withdrawn and
    /// running attempts hear a cancel. The way out for a workflow held because its code no longer
    /// replays. Returns false if it had already ended.
    ///
    /// ```no_run
    /// # async fn demo(client: duraflow::Client) -> Result<(), duraflow::Error> {
    /// let ended = client.terminate("order-17", "held on code we no longer ship").await?;
    /// # Ok(()) }
    /// ```
    pub async fn terminate(&self, workflow_id: &str, reason: &str) -> Result<bool> {
        let r = self
            .store
            .backend
            .terminate_workflow(workflow_id, reason)
            .await?;
        if r {
            self.store.hub.notify_closed(workflow_id);
            self.store.hub.wake_workers();
        }
        Ok(r)
    }

    /// Resets the workflow to its workflow task `workflow_task` (Temporal's reset): a new run
    /// starts whose history is a copy of the current run's up to (not including) that task's
    /// decisions, followed by a `workflow_reset` event; the **current code** replays the tasks
    /// before it and makes that task's decisions again, from the same events. The way out for a
    /// run held because its code changed, or one that failed on a bug since fixed. The current
    /// run ends at once if it still runs (failed `Terminated`, with the reason) and stays readable
    /// ([`Client::runs`]). Activities and timers the copy started and did not see end start again
    /// (an activity from attempt 1); what happened after the cut is not copied. Returns the new
    /// run's id.
    ///
    /// Workflow tasks are numbered from 1 in the order their `workflow_task_completed` events
    /// appear in the history (`duraflow history ID`). A task number the history does not have is
    /// [`Error::InvalidOption`], with the range there is.
    ///
    /// ```no_run
    /// # async fn demo(client: duraflow::Client) -> Result<(), duraflow::Error> {
    /// // Task 3 made a decision with a bug (since fixed and deployed): make it again.
    /// let run_id = client.reset("order-17", 3, "charged twice; fixed in v1.4").await?;
    /// # Ok(()) }
    /// ```
    pub async fn reset(
        &self,
        workflow_id: &str,
        workflow_task: u64,
        reason: &str,
    ) -> Result<String> {
        let new_run_id = uuid::Uuid::now_v7().to_string();
        self.store
            .backend
            .reset_workflow(
                workflow_id,
                crate::engine::reset::ResetRequest {
                    workflow_task,
                    new_run_id: new_run_id.clone(),
                    reason: reason.to_string(),
                },
            )
            .await?;
        self.store.hub.notify_closed(workflow_id);
        self.store.hub.wake_workers();
        Ok(new_run_id)
    }

    /// `Some(Error::WorkflowHeld)` when the workflow runs and is held.
    async fn held(&self, workflow_id: &str) -> Result<Option<Error>> {
        let d = self.describe(workflow_id).await?;
        Ok(held_error(&d))
    }

    /// Waits until the workflow ends; returns its description then, or [`Error::WorkflowHeld`]
    /// when the workflow is held (it cannot end before code that matches its history runs). Waits through transient
    /// store errors for up to a minute (see [`Client::wait_with`]).
    ///
    /// ```no_run
    /// # async fn demo(client: duraflow::Client) -> Result<(), duraflow::Error> {
    /// let d = client.wait("hello-1").await?;
    /// println!("ended {:?} at {:?}", d.status, d.closed_ms);
    /// # Ok(()) }
    /// ```
    pub async fn wait(&self, workflow_id: &str) -> Result<WorkflowDescription> {
        self.wait_with(workflow_id, WaitOptions::default()).await
    }

    /// [`Client::wait`] with options: how long to wait through an outage of the store.
    pub async fn wait_with(
        &self,
        workflow_id: &str,
        opts: WaitOptions,
    ) -> Result<WorkflowDescription> {
        let mut external = self.store.backend.external_wakeups();
        let waiter = self.store.hub.closed_waiter(workflow_id);
        let mut backoff = crate::backoff::Backoff::store();
        let mut outage_since: Option<tokio::time::Instant> = None;
        let result = loop {
            let notified = waiter.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let d = match self.describe_row(workflow_id).await {
                Ok(d) => {
                    if outage_since.take().is_some() {
                        tracing::info!(
                            workflow_id,
                            "the store answers again; still waiting for the workflow"
                        );
                        backoff.reset();
                    }
                    d
                }
                Err(e) if e.is_transient() => {
                    let since = *outage_since.get_or_insert_with(tokio::time::Instant::now);
                    if since.elapsed() >= opts.outage_tolerance {
                        break Err(e);
                    }
                    let wait = backoff.next_delay();
                    tracing::warn!(workflow_id, error = %e, retry_in = ?wait, "could not read the workflow's status; waiting through the outage");
                    tokio::time::sleep(wait).await;
                    continue;
                }
                Err(e) => break Err(e),
            };
            // A run that continued as new is never the current run (the transaction that ends it
            // starts the next): the wait goes on through the chain to the last run's end.
            if !matches!(
                d.status,
                WorkflowStatus::Running | WorkflowStatus::ContinuedAsNew
            ) {
                break Ok(d);
            }
            if let Some(held) = held_error(&d) {
                break Err(held);
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = crate::store::next_external(&mut external) => {}
            }
        };
        self.store.hub.forget_closed_waiter(workflow_id, waiter);
        result
    }
}

/// Earlier runs in the order they followed one another: each archived run names the run that
/// replaced it, so they form one chain (runs started within the same millisecond cannot be told
/// apart by their times). Runs the chain does not reach keep the store's order, first.
fn chain_order(runs: Vec<RunSummary>) -> Vec<RunSummary> {
    let nexts: std::collections::HashSet<&str> = runs
        .iter()
        .filter_map(|r| r.next_run_id.as_deref())
        .collect();
    let Some(first) = runs.iter().position(|r| !nexts.contains(r.run_id.as_str())) else {
        return runs;
    };
    let mut by_id: std::collections::HashMap<String, RunSummary> =
        runs.iter().map(|r| (r.run_id.clone(), r.clone())).collect();
    let mut chain = Vec::with_capacity(runs.len());
    let mut at = Some(runs[first].run_id.clone());
    while let Some(id) = at {
        let Some(run) = by_id.remove(&id) else { break };
        at = run.next_run_id.clone();
        chain.push(run);
    }
    let mut out: Vec<RunSummary> = runs
        .into_iter()
        .filter(|r| by_id.contains_key(&r.run_id))
        .collect();
    out.extend(chain);
    out
}

/// A new run of `name`, as the store records it.
pub(crate) fn new_workflow(
    name: &str,
    workflow_id: String,
    input: Value,
    options: StartOptions,
    now_ms: i64,
) -> Result<NewWorkflow> {
    if workflow_id.is_empty() {
        return Err(Error::InvalidOption(
            "the workflow id is empty; give each workflow a unique, non-empty id".into(),
        ));
    }
    // UUID v7: time-ordered (runs sort by start), 74 random bits.
    let run_id = uuid::Uuid::now_v7().to_string();
    Ok(NewWorkflow {
        workflow_id,
        run_id,
        workflow_type: name.to_string(),
        task_queue: options
            .task_queue
            .unwrap_or_else(|| DEFAULT_TASK_QUEUE.to_string()),
        input,
        execution_deadline_ms: options
            .execution_timeout
            .map(|d| crate::duration::after_ms(now_ms, d)),
    })
}

pub(crate) fn rand_u64() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut h = RandomState::new().build_hasher();
    h.write_u64(crate::clock::real_now_ms() as u64);
    h.write_u32(std::process::id());
    h.finish()
}

/// A started workflow: await its result, cancel it, describe it, send it messages.
///
/// `O` is the workflow's output. `W` is its definition when the handle knows it
/// ([`Client::signal_with_start`], [`WorkflowHandle::with_definition`]): it lets [`WorkflowHandle::signal`],
/// [`WorkflowHandle::query`] and [`WorkflowHandle::update`] check their messages at compile time.
pub struct WorkflowHandle<O, W = ()> {
    pub(crate) client: Client,
    pub(crate) workflow_id: String,
    pub(crate) _marker: PhantomData<fn() -> (O, W)>,
}

impl<O, W> Clone for WorkflowHandle<O, W> {
    fn clone(&self) -> Self {
        WorkflowHandle {
            client: self.client.clone(),
            workflow_id: self.workflow_id.clone(),
            _marker: PhantomData,
        }
    }
}

impl<O, W> WorkflowHandle<O, W> {
    /// The same handle, knowing its workflow's definition: its `signal`, `query` and `update`
    /// are then checked against what the workflow declares.
    /// `client.start(order, id, input).await?.with_definition(order).signal(Approve { .. })`.
    pub fn with_definition<D: crate::workflow::definition::WorkflowDefinition>(
        self,
        _definition: D,
    ) -> WorkflowHandle<O, D> {
        self.typed()
    }

    pub(crate) fn typed<T, D>(self) -> WorkflowHandle<T, D> {
        WorkflowHandle {
            client: self.client,
            workflow_id: self.workflow_id,
            _marker: PhantomData,
        }
    }

    /// The workflow id.
    ///
    /// ```no_run
    /// # use duraflow::prelude::*;
    /// # #[workflow] async fn hello(ctx: WorkflowContext, name: String) -> Result<String, WorkflowError> { Ok(name) }
    /// # async fn demo(client: duraflow::Client) -> Result<(), duraflow::Error> {
    /// let handle = client.start(hello, "hello-1", "world".to_string()).await?;
    /// assert_eq!(handle.id(), "hello-1");
    /// # Ok(()) }
    /// ```
    pub fn id(&self) -> &str {
        &self.workflow_id
    }

    /// Asks the workflow to cancel (see [`Client::cancel`]).
    ///
    /// ```no_run
    /// # use duraflow::prelude::*;
    /// # #[workflow] async fn hello(ctx: WorkflowContext, name: String) -> Result<String, WorkflowError> { Ok(name) }
    /// # async fn demo(client: duraflow::Client) -> Result<(), duraflow::Error> {
    /// let handle = client.start(hello, "hello-1", "world".to_string()).await?;
    /// handle.cancel().await?;
    /// assert!(matches!(handle.result().await, Err(duraflow::Error::WorkflowCancelled) | Ok(_)));
    /// # Ok(()) }
    /// ```
    pub async fn cancel(&self) -> Result<bool> {
        self.client.cancel(&self.workflow_id).await
    }

    /// Describes the workflow.
    ///
    /// ```no_run
    /// # use duraflow::prelude::*;
    /// # #[workflow] async fn hello(ctx: WorkflowContext, name: String) -> Result<String, WorkflowError> { Ok(name) }
    /// # async fn demo(client: duraflow::Client) -> Result<(), duraflow::Error> {
    /// let handle = client.start(hello, "hello-1", "world".to_string()).await?;
    /// let d = handle.describe().await?;
    /// println!("{:?}, {} events", d.status, d.history_length);
    /// # Ok(()) }
    /// ```
    pub async fn describe(&self) -> Result<WorkflowDescription> {
        self.client.describe(&self.workflow_id).await
    }

    /// The workflow's event history.
    ///
    /// ```no_run
    /// # use duraflow::prelude::*;
    /// # #[workflow] async fn hello(ctx: WorkflowContext, name: String) -> Result<String, WorkflowError> { Ok(name) }
    /// # async fn demo(client: duraflow::Client) -> Result<(), duraflow::Error> {
    /// let handle = client.start(hello, "hello-1", "world".to_string()).await?;
    /// handle.result().await?;
    /// assert!(handle.history().await?.len() >= 2);
    /// # Ok(()) }
    /// ```
    pub async fn history(&self) -> Result<Vec<HistoryEvent>> {
        self.client.history(&self.workflow_id).await
    }
}

impl<O: DeserializeOwned, W> WorkflowHandle<O, W> {
    /// Waits for the workflow to end. Its result, or [`Error::WorkflowFailed`] /
    /// [`Error::WorkflowCancelled`]; [`Error::WorkflowHeld`] (with the reason) instead of waiting
    /// forever when the workflow is held because its code no longer replays its history (call
    /// again once code that matches runs, or terminate it). Waits through transient store errors (a database restarting,
    /// a cut connection) for up to a minute; [`WorkflowHandle::result_with`] sets that bound.
    ///
    /// ```no_run
    /// # use duraflow::prelude::*;
    /// # #[workflow] async fn hello(ctx: WorkflowContext, name: String) -> Result<String, WorkflowError> { Ok(name) }
    /// # async fn demo(client: duraflow::Client) -> Result<(), duraflow::Error> {
    /// let handle = client.start(hello, "hello-1", "world".to_string()).await?;
    /// match handle.result().await {
    ///     Ok(greeting) => println!("{greeting}"),
    ///     Err(duraflow::Error::WorkflowFailed(e)) => println!("failed: {e}"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn result(&self) -> Result<O> {
        self.result_with(WaitOptions::default()).await
    }

    /// [`WorkflowHandle::result`] with options: how long to wait through an outage of the store.
    pub async fn result_with(&self, opts: WaitOptions) -> Result<O> {
        let d = self.client.wait_with(&self.workflow_id, opts).await?;
        match d.status {
            WorkflowStatus::Completed => {
                let v = d.result.unwrap_or(Value::Null);
                serde_json::from_value(v).map_err(|e| Error::Payload {
                    type_name: std::any::type_name::<O>().to_string(),
                    message: e.to_string(),
                })
            }
            WorkflowStatus::Failed => Err(Error::WorkflowFailed(d.error.unwrap_or_else(|| {
                crate::error::WorkflowError::application("Unknown", "no error recorded")
            }))),
            WorkflowStatus::Cancelled => Err(Error::WorkflowCancelled),
            WorkflowStatus::Running | WorkflowStatus::ContinuedAsNew => {
                Err(Error::Store("the workflow is still running".into()))
            }
        }
    }
}

/// The error of a running workflow that is held.
fn held_error(d: &WorkflowDescription) -> Option<Error> {
    match (&d.status, &d.held_reason) {
        (WorkflowStatus::Running, Some(reason)) => Some(Error::WorkflowHeld {
            workflow_id: d.workflow_id.clone(),
            reason: reason.clone(),
        }),
        _ => None,
    }
}
