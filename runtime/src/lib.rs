//! The runtime of duraflow: definitions, event history, deterministic replay, workers, durable timers,
//! retries, timeouts, heartbeats and cancellation, over an embedded SQLite store (default), Postgres
//! (feature `postgres`) or memory.
//!
//! Users depend on the facade crate `duraflow` and write `use duraflow::prelude::*;`. See
//! `ARCHITECTURE.md` for which module owns which concept.
#![warn(missing_docs)]

mod activity_ctx;
mod client;
mod definition;
mod duration;
mod error;
mod executor;
mod history;
mod registry;
mod retry;
mod store;
mod worker;
mod workflow_ctx;

pub use activity_ctx::{ActivityContext, ActivityInfo, TestActivityProbe};
pub use definition::{
    ActivityDefinition, ActivityOptions, BoxFuture, CanCancel, CancelCapability, Cancellable,
    DefinitionKind, DefinitionMeta, NotCancellable, WorkflowDefinition, WorkflowOptions,
    DEFAULT_START_TO_CLOSE_TIMEOUT, DEFAULT_TASK_QUEUE,
};
pub use duration::parse_duration;
pub use error::{ActivityError, Error, Result, TimeoutKind, WorkflowError};
pub use history::{CancellationType, EventKind, HistoryEvent};
pub use registry::{AnyDefinition, DynActivity, DynWorkflow, Register, Registry};
pub use client::{Client, StartOptions, WorkflowHandle};
pub use retry::RetryPolicy;
pub use worker::{NondeterminismPolicy, Worker, WorkerHandle, WorkerOptions};
pub use store::{ListFilter, PendingActivity, Store, WorkflowDescription, WorkflowStatus, WorkflowSummary};
pub use workflow_ctx::{
    ActivityCall, ActivityHandle, Sleep, WorkflowCancelled, WorkflowContext, WorkflowInfo,
};

/// Deterministic `join!` for workflow code: polls its futures in the order written.
pub use futures::join;

/// Deterministic `select!` for workflow code: the first branch (in the order written) that is ready
/// wins, on every replay. It is `tokio::select!` with `biased;`.
#[macro_export]
macro_rules! select {
    ($($t:tt)*) => { $crate::__private::tokio::select! { biased; $($t)* } };
}

/// What the macros' generated code names. Not public API.
#[doc(hidden)]
pub mod __private;
