//! Definitions: what `#[activity]` and `#[workflow]` expand to.
//!
//! Each annotated fn becomes a unit struct with the fn's name that implements [`ActivityDefinition`] or
//! [`WorkflowDefinition`]. The struct is the value users pass around (`ctx.activity(run_activity, ..)`,
//! `worker.register(greeting_workflow)`); the traits carry the name, the typed input and output, the
//! options, and the body behind a boxed future.

use crate::retry::RetryPolicy;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A boxed, `Send` future, as the definitions return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The start-to-close timeout of an activity that sets none: 5 minutes.
pub const DEFAULT_START_TO_CLOSE_TIMEOUT: Duration = Duration::from_secs(300);

/// The task queue of a definition that names none.
pub const DEFAULT_TASK_QUEUE: &str = "default";

/// Options of an activity, from `#[activity(..)]`; a call can override them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ActivityOptions {
    /// Longest single attempt. Default [`DEFAULT_START_TO_CLOSE_TIMEOUT`].
    #[serde(with = "crate::duration::serde_opt_ms")]
    pub start_to_close_timeout: Option<Duration>,
    /// Longest time from scheduling to the end, across all attempts.
    #[serde(with = "crate::duration::serde_opt_ms")]
    pub schedule_to_close_timeout: Option<Duration>,
    /// Longest wait for a worker to start an attempt.
    #[serde(with = "crate::duration::serde_opt_ms")]
    pub schedule_to_start_timeout: Option<Duration>,
    /// Longest silence between heartbeats. Setting it makes the activity cancellable.
    #[serde(with = "crate::duration::serde_opt_ms")]
    pub heartbeat_timeout: Option<Duration>,
    /// How failed attempts are retried.
    pub retry_policy: RetryPolicy,
    /// The task queue; `None` means the workflow's.
    pub task_queue: Option<String>,
}

/// Options of a workflow, from `#[workflow(..)]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WorkflowOptions {
    /// The task queue; `None` means [`DEFAULT_TASK_QUEUE`].
    pub task_queue: Option<String>,
    /// Longest time the whole workflow may run; past it, it ends failed.
    #[serde(with = "crate::duration::serde_opt_ms")]
    pub execution_timeout: Option<Duration>,
}

/// What kind of definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefinitionKind {
    /// An `#[activity]`.
    Activity,
    /// A `#[workflow]`.
    Workflow,
}

/// Serializable metadata of a definition: name, kind, options, and type names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DefinitionMeta {
    /// The registered name.
    pub name: String,
    /// Activity or workflow.
    pub kind: DefinitionKind,
    /// The options, as JSON.
    pub options: serde_json::Value,
    /// The input type as written (several inputs: a tuple).
    pub input_type: String,
    /// The output type as written.
    pub output_type: String,
    /// Whether a cancel can be delivered (the activity declares `heartbeat_timeout`).
    pub cancellable: bool,
    /// The signals, queries and updates a workflow declares (`#[workflow(signals(..), ..)]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<crate::message::MessageMeta>,
}

/// Marker: an activity whose handle can be cancelled (it declares or was given a heartbeat timeout, or
/// it runs as a local activity).
#[derive(Clone, Copy, Debug)]
pub struct Cancellable;

/// Marker: an activity that has no way to hear a cancellation.
#[derive(Clone, Copy, Debug)]
pub struct NotCancellable;

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Cancellable {}
    impl Sealed for super::NotCancellable {}
}

/// Whether a handle's activity can hear a cancellation: [`Cancellable`] or [`NotCancellable`].
pub trait CancelCapability: sealed::Sealed + Send + Sync + 'static {
    /// The value as a bool.
    const CANCELLABLE: bool;
}
impl CancelCapability for Cancellable {
    const CANCELLABLE: bool = true;
}
impl CancelCapability for NotCancellable {
    const CANCELLABLE: bool = false;
}

/// Implemented only by [`Cancellable`]: `ActivityHandle::cancel()` requires it.
#[diagnostic::on_unimplemented(
    message = "this activity cannot be cancelled: it sends no heartbeats, so a cancel could never reach it",
    label = "`cancel()` needs an activity that can hear a cancellation",
    note = "do one of: declare `#[activity(heartbeat_timeout = \"30s\")]` and call `ctx.heartbeat(..)` in it; set `.heartbeat_timeout(..)` on this call; or run it with `ctx.local_activity(..)`"
)]
pub trait CanCancel: CancelCapability {}
impl CanCancel for Cancellable {}
