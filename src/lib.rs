//! duraflow: durable workflows for Rust, embedded.
//!
//! Everything a user needs comes from this crate and one import:
//!
//! ```
//! use duraflow::prelude::*; // activity, workflow, ActivityContext, WorkflowContext, ActivityError,
//!                           // WorkflowError, RetryPolicy, CancellationType, Duration, Serialize, Deserialize, ...
//! ```
//!
//! # Defining activities
//!
//! [`#[activity]`](macro@activity) on an async fn makes a definition: a value with the fn's name that a
//! workflow calls (`ctx.activity(run_activity, args)`) and a worker registers.
//!
//! ```
//! use duraflow::prelude::*;
//!
//! #[derive(Clone, Debug, Serialize, Deserialize)]
//! pub struct ComposeArgs { pub arg1: i64, pub arg2: i64 }
//!
//! /// A plain activity: retried by the default policy, not cancellable (it sends no heartbeats).
//! #[activity]
//! pub async fn run_activity(ctx: ActivityContext, input: ComposeArgs) -> Result<i64, ActivityError> {
//!     Ok(input.arg1 + input.arg2)
//! }
//!
//! /// A heartbeating activity: it can be cancelled, and it can resume from its last heartbeat.
//! #[activity(heartbeat_timeout = "30s", start_to_close_timeout = "5m")]
//! pub async fn cancellable_activity(ctx: ActivityContext, input: ComposeArgs) -> Result<(), ActivityError> {
//!     let mut done: u64 = ctx.heartbeat_details().unwrap_or(0); // progress of an earlier attempt
//!     loop {
//!         tokio::time::sleep(Duration::from_millis(500)).await;
//!         done += 1;
//!         ctx.heartbeat(&done)?; // Err(ActivityError::Cancelled { .. }) once a cancel has reached it
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! An activity's body can be called directly in a unit test, with a test context:
//!
//! ```
//! use duraflow::prelude::*;
//! # #[derive(Clone, Debug, Serialize, Deserialize)]
//! # pub struct ComposeArgs { pub arg1: i64, pub arg2: i64 }
//! # #[activity]
//! # pub async fn run_activity(ctx: ActivityContext, input: ComposeArgs) -> Result<i64, ActivityError> {
//! #     Ok(input.arg1 + input.arg2)
//! # }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let (ctx, _probe) = ActivityContext::for_test("run_activity");
//! let sum = run_activity::call(ctx, ComposeArgs { arg1: 1, arg2: 2 }).await.unwrap();
//! assert_eq!(sum, 3);
//! # }
//! ```
//!
//! Options, all optional and checked at compile time:
//!
//! ```
//! use duraflow::prelude::*;
//!
//! #[activity(
//!     name = "charge-card",
//!     start_to_close_timeout = "1m30s",
//!     schedule_to_close_timeout = "1h",
//!     schedule_to_start_timeout = "250ms",
//!     retry(
//!         initial_interval = "1s",
//!         backoff_coefficient = 2.0,
//!         maximum_interval = "100s",
//!         maximum_attempts = 5,
//!         non_retryable = ["InvalidInput"],
//!     ),
//!     task_queue = "payments",
//! )]
//! pub async fn charge(cents: u64) -> Result<u64, ActivityError> {
//!     Ok(cents)
//! }
//! # fn main() {}
//! ```
//!
//! # Defining workflows
//!
//! [`#[workflow]`](macro@workflow) does the same for workflows, and rejects at compile time the calls
//! that would break replay, each with a pointer to its deterministic stand-in.
//!
//! ```
//! use duraflow::prelude::*;
//! # #[derive(Clone, Debug, Serialize, Deserialize)]
//! # pub struct ComposeArgs { pub arg1: i64, pub arg2: i64 }
//! # #[activity]
//! # pub async fn run_activity(ctx: ActivityContext, input: ComposeArgs) -> Result<i64, ActivityError> {
//! #     Ok(input.arg1 + input.arg2)
//! # }
//! # #[activity(heartbeat_timeout = "30s", start_to_close_timeout = "5m")]
//! # pub async fn cancellable_activity(ctx: ActivityContext, input: ComposeArgs) -> Result<(), ActivityError> {
//! #     loop {
//! #         tokio::time::sleep(Duration::from_millis(500)).await;
//! #         ctx.heartbeat(&())?;
//! #     }
//! # }
//!
//! #[workflow]
//! pub async fn greeting_workflow(ctx: WorkflowContext, input: ComposeArgs) -> Result<i64, WorkflowError> {
//!     let handle = ctx
//!         .activity(cancellable_activity, input.clone())
//!         .start_to_close_timeout(Duration::from_secs(300))
//!         .heartbeat_timeout(Duration::from_secs(30))
//!         .start();                                           // ActivityHandle: a Future with .cancel()
//!     ctx.sleep(Duration::from_secs(3)).await?;               // durable timer
//!     handle.cancel();
//!     let sum = ctx.activity(run_activity, input).await?;    // awaiting the call executes it
//!     Ok(sum)
//! }
//!
//! # fn main() {
//! // Registration: explicit, or every definition linked into the binary.
//! let registry = Registry::new()
//!     .register(run_activity)
//!     .register(cancellable_activity)
//!     .register(greeting_workflow);
//! let json = registry.to_json(); // names, kinds, options, type names
//! assert_eq!(json["workflows"][0]["name"], "greeting_workflow");
//! assert_eq!(json["workflows"][0]["input_type"], "ComposeArgs");
//! let all = Registry::all();
//! assert!(all.workflow_names().contains(&"greeting_workflow".to_string()));
//! # }
//! ```
//!
//! Workflow options: `name`, `task_queue`, `execution_timeout`.
//!
//! ```
//! use duraflow::prelude::*;
//!
//! #[workflow(name = "orders.place", task_queue = "orders", execution_timeout = "1d")]
//! pub async fn place_order(ctx: WorkflowContext, order_id: u64, cents: u64) -> Result<u64, WorkflowError> {
//!     Ok(order_id + cents)
//! }
//! # fn main() {}
//! ```
//!
//! A `cancel()` on a handle whose activity cannot hear a cancellation does not compile:
//!
//! ```compile_fail
//! use duraflow::prelude::*;
//!
//! #[activity]
//! pub async fn no_heartbeats(x: i64) -> Result<i64, ActivityError> { Ok(x) }
//!
//! #[workflow]
//! pub async fn cancels(ctx: WorkflowContext) -> Result<(), WorkflowError> {
//!     let handle = ctx.activity(no_heartbeats, 1).start();
//!     handle.cancel(); // error: this activity cannot be cancelled: it sends no heartbeats, ..
//!     Ok(())
//! }
//! # fn main() {}
//! ```
//!
//! Nor does a call that breaks replay:
//!
//! ```compile_fail
//! use duraflow::prelude::*;
//!
//! #[workflow]
//! pub async fn wall_clock(ctx: WorkflowContext) -> Result<u64, WorkflowError> {
//!     let now = std::time::SystemTime::now(); // error: .. use `ctx.now()`
//!     Ok(now.elapsed().map(|d| d.as_secs()).unwrap_or(0))
//! }
//! # fn main() {}
//! ```
//!
//! The check is syntactic. It sees the paths the body writes (`SystemTime::now()`, `<Instant>::now()`,
//! a fn named without a call such as `let f = SystemTime::now;`), the `use` items and `as` renames
//! declared inside the body (`use std::time::Instant as I; I::now()`, `use tokio::select; select!`),
//! `.elapsed()` on anything, and the arguments of macros, even those that are not plain expressions
//! (`tracing::info!(at = ?SystemTime::now())`). It cannot see imports and renames at module level
//! (`use std::time::Instant as Clock;` above the fn), calls hidden in helper fns or other crates, nor
//! the types of values; and it leaves a bare `fs::..`, `net::..` or `process::..` alone unless the body
//! imports that module from `std` or `tokio`, since it may be a module of your own. The
//! [`macro@workflow`] docs list the rules.
//!
//! What the compile-time check misses, the replay check catches at run time: when a workflow's
//! commands no longer match its recorded history, the worker holds it ([`NondeterminismPolicy`]);
//! nothing recorded is lost, and it goes on once code that matches its history is deployed.
//!
//! A statement a person has reviewed can be exempted, with a reason:
//!
//! ```
//! use duraflow::prelude::*;
//!
//! #[workflow]
//! pub async fn logs(ctx: WorkflowContext) -> Result<(), WorkflowError> {
//!     #[allow_nondeterminism(reason = "only logged; the value never reaches the history")]
//!     let wall = std::time::SystemTime::now();
//!     println!("workflow step at {wall:?}, workflow time {:?}", ctx.now());
//!     Ok(())
//! }
//! # fn main() {}
//! ```
//!
//! # Workflow cancellation
//!
//! A client's cancel of a workflow (`client.cancel(id)`) surfaces at the workflow's current `.await`:
//! its pending activities are cancelled by their cancellation types, its sleeps end, and from then on an
//! activity or sleep started through its context resolves `Cancelled` at once, without being scheduled.
//! Cleanup that must run all the same goes through [`WorkflowContext::detached`], whose documentation
//! has a saga.
//!
//! # Operating
//!
//! [`Client::describe`] says what a workflow does and why it waits: its pending workflow task and
//! activities (attempts, last failure, next attempt), and notes when no worker polls its task queue
//! or registers its type. Workers log at start what they serve and log each failed attempt at
//! `WARN`. Metrics go through the `metrics` facade and traces through `tracing`: [`telemetry`] lists
//! every metric with its labels, and shows how to get one OpenTelemetry trace per run.
//!
//! # Messages
//!
//! A workflow can be told things after it starts. Message types are declared once with a macro
//! and named in the workflow's attribute; every send is checked at compile time.
//!
//! - A **signal** (`#[signal]`) is durable and fire-and-forget: `client.signal(..)` returns once
//!   it is in the history; the workflow reads signals in order through
//!   `ctx.signal_channel::<T>()` (`recv().await` in `select!` beside timers and activities, or
//!   `try_recv()`), each once, the same on replay. Retries with the same request id
//!   (`signal_with_request_id`) record it once. `signal_with_start` starts the workflow if it does
//!   not exist, in the same transaction. When a worker of the client's process (on the same
//!   [`Store`] handle) holds the workflow idle in its cache, the signal's own transaction hands it
//!   the workflow task, and the workflow runs at once: one commit from `signal()` to the code.
//! - A **query** (`#[query(output = T)]`) reads the workflow's state and writes nothing. The
//!   workflow registers its handler with `ctx.on_query`. When a worker of the client's process
//!   holds the workflow idle in its cache (and no task was committed since, elsewhere), that
//!   instance answers, without a replay. On Postgres, a running workflow that no worker of this
//!   process holds is asked of the workers of the other processes (over `NOTIFY`); the one that
//!   holds it answers. Otherwise (no answer within 250 ms, a workflow that ended, the SQLite
//!   store) the client answers it by replaying the history with the workflow's code, read-only,
//!   so it works for a workflow no worker holds (in any process, on any store), and one that
//!   ended.
//! - An **update** (`#[update(output = T)]`) is validated, applied and answered: the validator
//!   registered with `ctx.on_update` judges it against the current state (a rejection records
//!   nothing and is returned as [`Error::UpdateRejected`]); an accepted update is recorded, the
//!   handler applies it when the workflow sees it, and its answer is recorded before
//!   `client.update(..)` returns it. A repeated update id returns the same answer.
//!
//! Handlers are synchronous closures: they read and change state the workflow shares with them,
//! and cannot start activities or timers (a query or update handler that tries gets an error and
//! records nothing). A signal that the workflow has not read when it returns stays in its history
//! and is not delivered (read the channel with `try_recv()` before returning to drain it). A
//! signal or update that arrives while the workflow's last task runs is not lost: that task's end
//! is not recorded, and the code runs again with it (as Temporal does), so a drain sees it.
//!
//! ```
//! use duraflow::prelude::*;
//! use std::sync::{Arc, Mutex};
//!
//! #[signal]
//! #[derive(Clone, Debug, Serialize, Deserialize)]
//! pub struct Approve { pub by: String }
//!
//! #[query(output = String)]
//! #[derive(Clone, Debug, Serialize, Deserialize)]
//! pub struct GetStatus;
//!
//! #[update(output = u32)]
//! #[derive(Clone, Debug, Serialize, Deserialize)]
//! pub struct SetLimit { pub limit: u32 }
//!
//! #[workflow(signals(Approve), queries(GetStatus), updates(SetLimit))]
//! async fn order(ctx: WorkflowContext, id: u64) -> Result<Option<String>, WorkflowError> {
//!     let status = Arc::new(Mutex::new(String::from("waiting")));
//!     let s = status.clone();
//!     ctx.on_query(move |_: GetStatus| s.lock().unwrap().clone());
//!     let limit = Arc::new(Mutex::new(100u32));
//!     let l = limit.clone();
//!     ctx.on_update(
//!         |u: &SetLimit| if u.limit == 0 { Err("the limit must be positive".into()) } else { Ok(()) },
//!         move |u: SetLimit| std::mem::replace(&mut *l.lock().unwrap(), u.limit),
//!     );
//!     let mut approvals = ctx.signal_channel::<Approve>();
//!     let approved = select! {
//!         a = approvals.recv() => Some(a?.by),
//!         _ = ctx.sleep(Duration::from_secs(24 * 3600)) => None,
//!     };
//!     *status.lock().unwrap() = format!("approved by {approved:?}");
//!     Ok(approved)
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), duraflow::Error> {
//! let store = Store::memory()?;
//! let worker = Worker::new(&store).register(order).start();
//! let client = Client::new(&store);
//! let handle = client.start(order, "order-1", 7).await?.with_definition(order);
//! assert_eq!(client.query(order, "order-1", GetStatus).await?, "waiting");
//! assert_eq!(client.update(order, "order-1", SetLimit { limit: 5 }).await?, 100);
//! assert!(client.update(order, "order-1", SetLimit { limit: 0 }).await.is_err());
//! handle.signal(Approve { by: "ann".into() }).await?;
//! assert_eq!(handle.result().await?, Some("ann".to_string()));
//! worker.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! By name, with JSON (tools, other languages): `signal_by_name`, `query_by_name`,
//! `update_by_name`. The name is checked against the workflow type's declared messages (in the
//! registry's JSON, under `messages`); a payload that does not deserialize as the message's type
//! fails that message (a signal is dropped with a warning, an update is rejected), never the
//! workflow.
//!
//! # Changing and testing workflow code
//!
//! [`guide::changing_workflow_code`]: what breaks replay, patching with `ctx.patched`, and the
//! [`testing::Replayer`] in CI. [`guide::testing`]: [`testing::TestEnv`] on a virtual clock,
//! activity mocks, activity unit tests.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use duraflow_macros::{activity, query, signal, update, workflow};
pub use duraflow_runtime::*;

/// Everything a workflow or activity author needs: `use duraflow::prelude::*;`.
pub mod prelude {
    pub use duraflow_macros::{activity, query, signal, update, workflow};
    pub use duraflow_runtime::{
        join, select, ActivityContext, ActivityError, ActivityHandle, CancelReason,
        CancellationType, ChildWorkflowError, ChildWorkflowHandle, Client, ParentClosePolicy,
        Registry, RetryPolicy, SignalChannel, Store, TimeoutKind, Worker, WorkflowContext,
        WorkflowError,
    };
    pub use serde::{Deserialize, Serialize};
    pub use std::time::Duration;
}

/// Guides: pages of prose with examples (compiled as doctests).
pub mod guide {
    #[doc = include_str!("../docs/changing-workflow-code.md")]
    pub mod changing_workflow_code {}
    #[doc = include_str!("../docs/testing.md")]
    pub mod testing {}
    #[doc = include_str!("../docs/schedules.md")]
    pub mod schedules {}
    #[doc = include_str!("../docs/runs.md")]
    pub mod runs {}
}

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
