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
//! # Changing and testing workflow code
//!
//! [`guide::changing_workflow_code`]: what breaks replay, patching with `ctx.patched`, and the
//! [`testing::Replayer`] in CI. [`guide::testing`]: [`testing::TestEnv`] on a virtual clock,
//! activity mocks, activity unit tests.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use duraflow_macros::{activity, workflow};
pub use duraflow_runtime::*;

/// Everything a workflow or activity author needs: `use duraflow::prelude::*;`.
pub mod prelude {
    pub use duraflow_macros::{activity, workflow};
    pub use duraflow_runtime::{
        join, select, ActivityContext, ActivityError, ActivityHandle, CancelReason,
        CancellationType, Client, Registry, RetryPolicy, Store, TimeoutKind, Worker,
        WorkflowContext, WorkflowError,
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
}

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
