//! Procedural macros of duraflow: `#[activity]` and `#[workflow]`.
//!
//! Users depend on the facade crate `duraflow`, which re-exports these macros; the generated code
//! names only `::duraflow::__private::..`.
//!
//! Each macro runs in phases: options (`attr`), a typed model of the fn (`ast`), whole-item rules
//! such as determinism (`check`), and code generation (`expand`). Errors of every phase are
//! collected and reported together, beside the generated items, so the user's item is never dropped.

mod ast;
mod attr;
mod callees;
mod check;
mod ctxt;
mod duration;
mod expand;
mod message;

use proc_macro::TokenStream;

/// Defines an activity: a step of a workflow that may do anything (I/O, clocks, randomness), runs at
/// least once, and is retried by its policy.
///
/// ```ignore
/// #[activity(heartbeat_timeout = "30s", start_to_close_timeout = "5m")]
/// pub async fn charge_card(ctx: ActivityContext, order: Order) -> Result<Receipt, ActivityError> { .. }
/// ```
///
/// # Signature
///
/// `async fn NAME(ctx: ActivityContext, INPUTS...) -> Result<OUTPUT, E>`. The context parameter may be
/// left out. Zero or more inputs, carried as `()`, the one type, or a tuple. Inputs and output are
/// `Serialize + DeserializeOwned + Send + 'static`; `E` converts into `ActivityError`. Not generic, not a
/// method.
///
/// # Options
///
/// All optional, checked at compile time: `name = ".."` (registered name; default: the fn's name),
/// `start_to_close_timeout`, `schedule_to_close_timeout`, `schedule_to_start_timeout`,
/// `heartbeat_timeout` (durations written `"250ms"`, `"30s"`, `"5m"`, `"2h"`, `"1d"`, `"1m30s"`; not
/// zero), `retry(initial_interval = "1s", backoff_coefficient = 2.0, maximum_interval = "100s",
/// maximum_attempts = 5, non_retryable = ["InvalidInput"])` (`backoff_coefficient` at least 1.0,
/// `maximum_interval` not shorter than `initial_interval`, `maximum_attempts = 0` for unlimited), and
/// `task_queue = ".."`.
///
/// Declaring `heartbeat_timeout` makes the activity cancellable (`ActivityHandle::cancel()` compiles for
/// it). Such an activity must call `ctx.heartbeat(..)`, or pass its context on (as an argument, or a
/// clone): otherwise every attempt would time out and a cancel could never reach it, and the macro
/// rejects it.
///
/// # What this expands to
///
/// ```ignore
/// /// (the fn's docs)
/// #[allow(non_camel_case_types)]
/// #[derive(Clone, Copy, Debug, Default)]
/// pub struct charge_card;
///
/// impl charge_card {
///     /// Runs the body directly, without a worker: for unit tests.
///     pub async fn call(ctx: ActivityContext, order: Order) -> Result<Receipt, ActivityError> { .. }
/// }
///
/// impl ActivityDefinition for charge_card {
///     type Input = Order;               // `()` for no inputs, `(A, B)` for several
///     type Output = Receipt;
///     type Cancel = Cancellable;        // `NotCancellable` without `heartbeat_timeout`
///     fn name(&self) -> &'static str { "charge_card" }
///     fn options(&self) -> ActivityOptions { /* the declared options */ }
///     fn meta(&self) -> DefinitionMeta { /* name, kind, options as JSON, type names */ }
///     fn execute(&self, ctx: ActivityContext, input: Order) -> BoxFuture<'static, Result<Receipt, ActivityError>> {
///         Box::pin(async move { Self::call(ctx, input).await.map_err(Into::into) })
///     }
/// }
///
/// impl Register for charge_card { /* AnyDefinition::Activity(DynActivity::new(self)) */ }
/// inventory::submit! { Registration::Activity(|| DynActivity::new(charge_card)) } // for `Registry::all()`
/// ```
///
/// So `charge_card` is a value that names the definition: `ctx.activity(charge_card, order)`,
/// `Registry::new().register(charge_card)`, and `charge_card::call(ctx, order).await` in a test.
/// On an error, the macro still emits the struct (and, where the signature allows, everything else)
/// beside the error, so no follow-on "cannot find" errors appear. When the signature cannot become a
/// definition, the body is still checked (a `#[workflow]`'s determinism errors show beside the
/// signature's) and kept on the `call` fn, so the compiler's own errors inside it show too. Every
/// error is reported at once.
#[proc_macro_attribute]
pub fn activity(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(ast::Kind::Activity, args.into(), item.into()).into()
}

/// Defines a workflow: deterministic code that calls activities and durable timers, replayed from its
/// event history after a restart.
///
/// ```ignore
/// #[workflow(task_queue = "orders", execution_timeout = "1d")]
/// pub async fn place_order(ctx: WorkflowContext, order: Order) -> Result<Receipt, WorkflowError> { .. }
/// ```
///
/// # Signature
///
/// `async fn NAME(ctx: WorkflowContext, INPUTS...) -> Result<OUTPUT, E>` where `E` converts into
/// `WorkflowError`; the same input rules as `#[activity]`. Options: `name = ".."`, `task_queue = ".."`,
/// `execution_timeout = "1h"`.
///
/// # Determinism checks
///
/// The body is replayed, so it must do the same thing every time. These calls are compile errors, each
/// naming its stand-in:
///
/// | call | instead |
/// |---|---|
/// | `SystemTime::now`, `Instant::now`, `chrono::{Utc, Local}::now`, `.elapsed()` | `ctx.now()` |
/// | `std::thread::sleep`, `tokio::time::{sleep, timeout, interval}` | `ctx.sleep(..)` |
/// | `tokio::spawn`, `std::thread::spawn`, `spawn_blocking` | an `#[activity]`, or `join!` |
/// | `rand::{random, thread_rng, rng}` | `ctx.random_u64()` |
/// | `Uuid::new_v4` | `ctx.uuid()` |
/// | `std::env::var`, `std::fs`, `tokio::fs`, `std::net`, `std::process`, `reqwest`, `hyper`, `ureq`, `surf` | an `#[activity]` |
/// | `tokio::select!` without `biased;`, `futures::select!` | `duraflow::select!` |
///
/// A small value that must come from outside (a random token, a wall-clock reading, an environment
/// variable) can be read inside `ctx.side_effect(|| ..)`: the closure runs once, its value is
/// recorded in the history and replayed after, so the check does not look inside it.
///
/// ## What the check sees, and what it cannot
///
/// The check is syntactic: it reads the paths the body writes, with what the body's own imports make
/// of them. It sees
///
/// - paths as written, qualified or not: `SystemTime::now()`, `::std::fs::read(..)`,
///   `<Instant>::now()`;
/// - `use` items and `as` renames declared **inside the body**, grouped or not, and globs:
///   `use std::time::Instant as I; I::now()`, `use tokio::{select, time::sleep as nap}`,
///   `use tokio::time::*; sleep(d)`. A fn or module the body defines itself shadows them;
/// - a fn named without a call: `let f = SystemTime::now;`, `.unwrap_or_else(Instant::now)`;
/// - `.elapsed()`, on whatever value it is called;
/// - the arguments of macros: as expressions where they are (`join!`, `format!`, `select!`), and
///   token by token where they are not (`tracing::info!(at = ?SystemTime::now())`, `vec![x; n]`).
///
/// It cannot see what a macro has no access to:
///
/// - imports and renames at **module level**: after `use std::time::Instant as Clock;` above the fn,
///   `Clock::now()` is not caught, nor is a bare `sleep(d)` after a module-level
///   `use tokio::time::sleep;` (write `tokio::time::sleep(d)`, or import inside the body, to have it
///   checked);
/// - calls hidden in **helper fns**, methods or other crates that the body calls;
/// - the types of values: `.elapsed()` is flagged on anything, and a method that reads the clock
///   under another name is not.
///
/// `fs`, `net` and `process` are checked as the modules of `std`, `tokio` and `async_std`:
/// `std::fs::read(..)` is flagged, and so is `fs::read(..)` after a `use std::fs;` in the body, but
/// not `crate::fs::save(..)` nor `my::net::send(..)`. A bare `fs::read(..)` with no such import in the
/// body may be a module of the user's, so it is not flagged.
///
/// The safety net for everything the check misses is the replay check of the runtime: when a
/// workflow's commands no longer match its recorded history, the worker holds the workflow (or fails
/// it, with `NondeterminismPolicy::Fail`); nothing recorded is lost, and a held workflow goes on once
/// code that matches its history runs.
///
/// A statement a person has reviewed can be exempted, with a reason (the attribute is removed before
/// the body is compiled):
///
/// ```ignore
/// #[allow_nondeterminism(reason = "only logs the wall-clock time; the value never reaches the history")]
/// tracing::info!(at = ?std::time::SystemTime::now(), "step done");
/// ```
///
/// # What this expands to
///
/// As `#[activity]`, with `WorkflowDefinition` (no `Cancel` type), `WorkflowContext`,
/// `WorkflowError`, `WorkflowOptions` and `Registration::Workflow`:
///
/// ```ignore
/// #[allow(non_camel_case_types)]
/// #[derive(Clone, Copy, Debug, Default)]
/// pub struct place_order;
/// impl place_order { pub async fn call(ctx: WorkflowContext, order: Order) -> Result<Receipt, WorkflowError> { .. } }
/// impl WorkflowDefinition for place_order { type Input = Order; type Output = Receipt; .. }
/// impl Register for place_order { .. }
/// inventory::submit! { Registration::Workflow(|| DynWorkflow::new(place_order)) }
/// ```
#[proc_macro_attribute]
pub fn workflow(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(ast::Kind::Workflow, args.into(), item.into()).into()
}

/// Declares a signal: a durable, fire-and-forget message into a workflow.
///
/// ```ignore
/// #[signal]                       // registered as "Approve"; `#[signal(name = "approve")]` to rename
/// #[derive(Clone, Debug, Serialize, Deserialize)]
/// pub struct Approve { pub by: String }
/// ```
///
/// The type must derive `Serialize` and `Deserialize`. A workflow receives it once it declares it,
/// `#[workflow(signals(Approve))]`, through `ctx.signal_channel::<Approve>()`; clients send it
/// with `client.signal(workflow, id, Approve { .. })`.
///
/// # What this expands to
///
/// The type as written, and `impl duraflow::Signal for Approve { const NAME: &str = "Approve"; }`.
#[proc_macro_attribute]
pub fn signal(args: TokenStream, item: TokenStream) -> TokenStream {
    message::expand(message::Kind::Signal, args.into(), item.into()).into()
}

/// Declares a query: a read of a workflow's state that writes no history. `output` is the
/// answer's type.
///
/// ```ignore
/// #[query(output = OrderStatus)]   // `name = ".."` renames it (default: the type's name)
/// #[derive(Clone, Debug, Serialize, Deserialize)]
/// pub struct GetStatus;
/// ```
///
/// A workflow answers it once it declares it, `#[workflow(queries(GetStatus))]`, with
/// `ctx.on_query(|q: GetStatus| ..)`; clients ask with `client.query(workflow, id, GetStatus)`.
///
/// # What this expands to
///
/// The type as written, and `impl duraflow::Query for GetStatus { const NAME: &str = "GetStatus";
/// type Output = OrderStatus; }`.
#[proc_macro_attribute]
pub fn query(args: TokenStream, item: TokenStream) -> TokenStream {
    message::expand(message::Kind::Query, args.into(), item.into()).into()
}

/// Declares an update: a request the workflow validates, applies and answers, durably. `output`
/// is the answer's type.
///
/// ```ignore
/// #[update(output = u32)]
/// #[derive(Clone, Debug, Serialize, Deserialize)]
/// pub struct SetLimit { pub limit: u32 }
/// ```
///
/// A workflow handles it once it declares it, `#[workflow(updates(SetLimit))]`, with
/// `ctx.on_update(validator, handler)`; clients send it with `client.update(workflow, id, ..)`.
///
/// # What this expands to
///
/// The type as written, and `impl duraflow::Update for SetLimit { const NAME: &str = "SetLimit";
/// type Output = u32; }`.
#[proc_macro_attribute]
pub fn update(args: TokenStream, item: TokenStream) -> TokenStream {
    message::expand(message::Kind::Update, args.into(), item.into()).into()
}
