//! `TestEnv`: an in-memory store, a worker and a client on a virtual clock.

use crate::activity::context::ActivityContext;
use crate::activity::definition::{ActivityDefinition, DynActivity};
use crate::api::client::Client;
use crate::api::registry::{Register, Registry};
use crate::clock::Clock;
use crate::error::{ActivityError, Result};
use crate::store::Store;
use crate::worker::{Worker, WorkerHandle, WorkerOptions};
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A test environment: an in-memory store, one worker and a client, all on a **virtual clock**.
///
/// Time skips: whenever the worker has nothing running and nothing is due, the clock jumps to
/// the next timer, retry, deadline or lease, so a workflow that sleeps 30 days ends in
/// milliseconds. [`TestEnv::advance`] and [`TestEnv::sleep`] move it by hand (e.g. while an
/// activity hangs, to pass its heartbeat timeout). Everything time-related follows the virtual
/// clock: `ctx.now()`, durable timers, start-to-close, schedule-to-close and heartbeat timeouts,
/// retry backoff, leases, execution timeouts. Activities can be replaced by mocks for one test.
///
/// The clock starts at the real time when the environment is built (see
/// [`TestEnvBuilder::start_at`]).
///
/// # Examples
///
/// ```
/// use duraflow::prelude::*;
/// use duraflow::testing::TestEnv;
///
/// #[activity]
/// async fn charge_card(cents: u64) -> Result<String, ActivityError> {
///     unreachable!("the test replaces it with a mock")
/// }
///
/// #[workflow]
/// async fn subscription(ctx: WorkflowContext, cents: u64) -> Result<Vec<String>, WorkflowError> {
///     let mut receipts = Vec::new();
///     for _ in 0..3 {
///         receipts.push(ctx.activity(charge_card, cents).await?);
///         ctx.sleep(Duration::from_secs(30 * 24 * 3600)).await?; // a month
///     }
///     Ok(receipts)
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), duraflow::Error> {
/// let env = TestEnv::builder()
///     .register(subscription)
///     .mock_activity(charge_card, |cents| async move { Ok(format!("charged {cents}")) })
///     .start()?;
/// let started = env.now();
/// let handle = env.client().start(subscription, "sub-1", 999).await?;
/// assert_eq!(handle.result().await?, vec!["charged 999"; 3]);
/// let elapsed = env.now().duration_since(started).unwrap();
/// assert!(elapsed >= Duration::from_secs(90 * 24 * 3600), "three months passed, virtually");
/// env.shutdown().await;
/// # Ok(()) }
/// ```
pub struct TestEnv {
    store: Store,
    client: Client,
    worker: Option<WorkerHandle>,
}

impl std::fmt::Debug for TestEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestEnv")
            .field("now_ms", &self.store.clock.now_ms())
            .finish()
    }
}

/// Builds a [`TestEnv`]: its definitions, its mocks, its worker's options.
#[must_use = "call .start() to get the environment"]
pub struct TestEnvBuilder {
    registry: Registry,
    mocks: Vec<DynActivity>,
    options: WorkerOptions,
    start_ms: Option<i64>,
}

impl TestEnv {
    /// A builder: register definitions, mock activities, then `.start()`.
    pub fn builder() -> TestEnvBuilder {
        let options = WorkerOptions {
            poll_interval: Duration::from_millis(50),
            held_retry_interval: Duration::from_millis(100),
            shutdown_grace: Duration::from_secs(1),
            ..WorkerOptions::default()
        };
        TestEnvBuilder {
            registry: Registry::new(),
            mocks: Vec::new(),
            options,
            start_ms: None,
        }
    }

    /// The client: start workflows, await results, cancel, describe, read histories.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The in-memory store (for another worker or client on the same virtual clock).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The virtual clock's time.
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.store.clock.now_ms().max(0) as u64)
    }

    /// Moves the virtual clock forward by `d` at once, and wakes the worker to run what fell
    /// due; returns without waiting for it.
    pub fn advance(&self, d: Duration) {
        let to = self
            .store
            .clock
            .now_ms()
            .saturating_add(d.as_millis() as i64);
        self.store.clock.advance_to(to);
        self.store.hub.wake_workers();
    }

    /// Moves the virtual clock forward by `d`, then waits (in real time, up to 10 s) until the
    /// worker has run what fell due and has nothing left running, and every worker of the store
    /// has caught up with the clock (renewed its liveness lease, extended the leases it keeps).
    /// Unlike [`TestEnv::advance`], two `sleep`s in a row never look to the workers like one
    /// jump: a worker that lives is not judged lost, however far the clock moves.
    pub async fn sleep(&self, d: Duration) {
        self.advance(d);
        self.settle().await;
    }

    /// Waits (in real time, up to 10 s) until the worker has nothing running and nothing due, and
    /// every worker of the store has caught up with the clock.
    pub async fn settle(&self) {
        let give_up = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::time::Instant::now() < give_up {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let Some(w) = &self.worker else {
                return;
            };
            let caught_up = self
                .store
                .hub
                .skip_limit(self.store.clock.now_ms())
                .is_some();
            if caught_up && w.is_idle() && !w.has_due_work().await {
                return;
            }
        }
    }

    /// Stops the worker (see [`WorkerHandle::shutdown`]).
    pub async fn shutdown(mut self) {
        if let Some(w) = self.worker.take() {
            w.shutdown().await;
        }
    }
}

impl TestEnvBuilder {
    /// Registers a workflow or an activity with the environment's worker.
    pub fn register(mut self, def: impl Register) -> Self {
        self.registry = self.registry.register(def);
        self
    }

    /// Registers everything in `registry`.
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = self.registry.merge(registry);
        self
    }

    /// Replaces activity `activity` with `body` for this environment: workflows call it by the
    /// same name, with the same options (timeouts, retries), and the mock's input and output are
    /// the activity's types, checked at compile time. The activity need not be registered.
    pub fn mock_activity<A, F, Fut>(self, activity: A, body: F) -> Self
    where
        A: ActivityDefinition,
        F: Fn(A::Input) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<A::Output, ActivityError>> + Send + 'static,
    {
        self.mock_activity_with_context(activity, move |_ctx, input| body(input))
    }

    /// [`TestEnvBuilder::mock_activity`] with the attempt's context: its info (attempt number),
    /// heartbeats, cancellation.
    pub fn mock_activity_with_context<A, F, Fut>(mut self, activity: A, body: F) -> Self
    where
        A: ActivityDefinition,
        F: Fn(ActivityContext, A::Input) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<A::Output, ActivityError>> + Send + 'static,
    {
        self.mocks.push(DynActivity::mock(activity, body));
        self
    }

    /// The worker's options (the defaults poll every 50 ms, retry held workflows every 100 ms).
    pub fn worker_options(mut self, options: WorkerOptions) -> Self {
        self.options = options;
        self
    }

    /// Where the virtual clock starts, in ms since the Unix epoch (default: the real time).
    pub fn start_at(mut self, ms_since_epoch: i64) -> Self {
        self.start_ms = Some(ms_since_epoch);
        self
    }

    /// Opens the in-memory store on the virtual clock and starts the worker.
    ///
    /// # Panics
    /// Outside a tokio runtime, like [`Worker::start`].
    pub fn start(self) -> Result<TestEnv> {
        let clock = Clock::virtual_at(self.start_ms.unwrap_or_else(crate::clock::real_now_ms));
        let store = Store::memory_with_clock(clock)?;
        let mut registry = self.registry;
        for m in self.mocks {
            registry = registry.replace_activity(m);
        }
        let worker = Worker::new(&store)
            .registry(registry)
            .options(self.options)
            .start();
        Ok(TestEnv {
            client: Client::new(&store),
            store,
            worker: Some(worker),
        })
    }
}
