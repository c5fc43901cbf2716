//! The runtime of duraflow: definitions, event history, deterministic replay, workers, durable timers,
//! retries, timeouts, heartbeats and cancellation, over an embedded SQLite store (default), Postgres
//! (feature `postgres`) or memory.
//!
//! Users depend on the facade crate `duraflow` and write `use duraflow::prelude::*;`. See
//! `ARCHITECTURE.md` for which module owns which concept.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod activity;
mod api;
mod backoff;
mod clock;
mod definition;
mod duration;
mod engine;
mod error;
mod history;
mod message;
mod retry;
mod schedule;
mod store;
pub mod telemetry;
pub mod testing;
mod worker;
mod workflow;

/// Fuzz targets and their driver (the crate's tests, and feature `fuzzing` for `fuzz/`). Not API.
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzz;

pub use activity::context::{ActivityContext, ActivityInfo, CancelReason, TestActivityProbe};
pub use activity::definition::{ActivityDefinition, DynActivity};
pub use api::client::{Client, StartOptions, WaitOptions, WorkflowHandle};
pub use api::messages::UpdateHandle;
pub use api::registry::{AnyDefinition, Register, Registry};
pub use definition::{
    ActivityOptions, BoxFuture, CanCancel, CancelCapability, Cancellable, DefinitionKind,
    DefinitionMeta, NotCancellable, WorkflowOptions, DEFAULT_START_TO_CLOSE_TIMEOUT,
    DEFAULT_TASK_QUEUE,
};
pub use duration::parse_duration;
pub use engine::facts::WorkflowStatus;
pub use engine::start::{WorkflowIdConflictPolicy, WorkflowIdReusePolicy};
pub use error::{ActivityError, ChildWorkflowError, Error, Result, TimeoutKind, WorkflowError};
pub use history::{CancellationType, CarriedSignal, EventKind, HistoryEvent, ParentClosePolicy};
pub use message::{
    AcceptsQuery, AcceptsSignal, AcceptsUpdate, MessageKind, MessageMeta, Query, Signal, Update,
};
pub use retry::RetryPolicy;
pub use schedule::{
    OverlapPolicy, Schedule, ScheduleDescription, ScheduleSpec, ScheduledStart, Triggered,
    DEFAULT_CATCHUP_WINDOW,
};
pub use store::{
    ListFilter, PendingActivity, PendingWorkflowTask, Pollers, RunSummary, StatusCounts, Store,
    WorkflowDescription, WorkflowSummary,
};
pub use worker::{NondeterminismPolicy, Worker, WorkerHandle, WorkerOptions};
pub use workflow::context::{
    ActivityCall, ActivityHandle, ChildWorkflowCall, ChildWorkflowHandle, Sleep, WorkflowCancelled,
    WorkflowContext, WorkflowInfo,
};
pub use workflow::definition::{DynWorkflow, WorkflowDefinition};
pub use workflow::messages::{Recv, SignalChannel};

/// Deterministic `join!` for workflow code: runs several calls at once and polls them in the order
/// written, on every replay. Takes anything `.await` takes (`ctx.activity(..)` calls included) and
/// returns a tuple of their outputs.
///
/// ```no_run
/// # use duraflow::prelude::*;
/// # #[activity] async fn add_one(x: i64) -> Result<i64, ActivityError> { Ok(x + 1) }
/// # #[workflow] async fn wf(ctx: WorkflowContext) -> Result<i64, WorkflowError> {
/// let (a, b) = join!(ctx.activity(add_one, 1), ctx.activity(add_one, 2));
/// Ok(a? + b?)
/// # }
/// ```
#[macro_export]
macro_rules! join {
    ($($e:expr),+ $(,)?) => {
        $crate::__private::futures::join!($(::core::future::IntoFuture::into_future($e)),+)
    };
}

/// Deterministic `select!` for workflow code: the first branch (in the order written) that is ready
/// wins, on every replay. It is `tokio::select!` with `biased;`.
#[macro_export]
macro_rules! select {
    ($($t:tt)*) => { $crate::__private::tokio::select! { biased; $($t)* } };
}

/// What the macros' generated code names. Not public API.
#[doc(hidden)]
pub mod __private;
