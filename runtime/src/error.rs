//! Errors: what an activity or a workflow returns, and what the runtime reports.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// Which timeout ended an activity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeoutKind {
    /// The attempt ran longer than `start_to_close_timeout`.
    StartToClose,
    /// The activity, across all its attempts, ran past `schedule_to_close_timeout`.
    ScheduleToClose,
    /// No worker started the activity within `schedule_to_start_timeout`.
    ScheduleToStart,
    /// The attempt stopped heartbeating for longer than `heartbeat_timeout`.
    Heartbeat,
}

impl fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutKind::StartToClose => "start-to-close",
            TimeoutKind::ScheduleToClose => "schedule-to-close",
            TimeoutKind::ScheduleToStart => "schedule-to-start",
            TimeoutKind::Heartbeat => "heartbeat",
        })
    }
}

/// The error of an activity.
///
/// Inside an activity, return [`ActivityError::Cancelled`] (which `ctx.heartbeat(..)?` does for you) to
/// end cancelled, or an application error (`?` converts `std::io::Error`, `anyhow::Error` and
/// `serde_json::Error`). A workflow awaiting an activity sees [`ActivityError::Cancelled`] or
/// [`ActivityError::Failed`], which carries the attempt count and the last attempt's cause.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ActivityError {
    /// The activity was cancelled, and its code returned the cancellation.
    #[error("activity cancelled")]
    Cancelled {
        /// The last heartbeat details, if any.
        details: Option<Value>,
    },
    /// The activity's own code failed.
    #[error("{error_type}: {message}")]
    Application {
        /// A short type name, matched against `retry(non_retryable = [..])`.
        error_type: String,
        /// What went wrong.
        message: String,
        /// When true, the activity is not retried whatever its policy says.
        non_retryable: bool,
        /// Optional structured details.
        details: Option<Value>,
    },
    /// An attempt or the whole activity ran out of time.
    #[error("activity timed out ({kind} timeout)")]
    Timeout {
        /// Which timeout fired.
        kind: TimeoutKind,
        /// The last heartbeat details recorded before the timeout, if any.
        details: Option<Value>,
    },
    /// What a workflow sees when an activity failed for good: retries ran out, or the cause was not
    /// retryable.
    #[error("activity `{activity_type}` failed after {attempts} attempt(s): {cause}")]
    Failed {
        /// The registered activity name.
        activity_type: String,
        /// How many attempts ran.
        attempts: u32,
        /// The last attempt's error.
        cause: Box<ActivityError>,
    },
    /// The worker running the attempt is shutting down: what `ctx.heartbeat(..)` returns once a
    /// worker's `shutdown()` began (and no cancel was requested). An attempt that ends with it (or
    /// with a cancellation the worker's shutdown caused) is not a failure: it is handed to another
    /// worker at once, as a new attempt; a local activity starts again from attempt 1 when its
    /// workflow next runs.
    #[error("the worker is shutting down")]
    WorkerShutdown,
}

impl ActivityError {
    /// A retryable application error with a type name and a message.
    pub fn application(error_type: impl Into<String>, message: impl fmt::Display) -> Self {
        ActivityError::Application {
            error_type: error_type.into(),
            message: message.to_string(),
            non_retryable: false,
            details: None,
        }
    }

    /// An application error that is never retried.
    pub fn non_retryable(error_type: impl Into<String>, message: impl fmt::Display) -> Self {
        ActivityError::Application {
            error_type: error_type.into(),
            message: message.to_string(),
            non_retryable: true,
            details: None,
        }
    }

    /// A cancellation with no details.
    pub fn cancelled() -> Self {
        ActivityError::Cancelled { details: None }
    }

    /// True for a cancellation, also when it is the cause of a [`ActivityError::Failed`].
    pub fn is_cancelled(&self) -> bool {
        match self {
            ActivityError::Cancelled { .. } => true,
            ActivityError::Failed { cause, .. } => cause.is_cancelled(),
            _ => false,
        }
    }

    /// True when the attempt ended because its worker is shutting down
    /// ([`ActivityError::WorkerShutdown`]).
    pub fn is_worker_shutdown(&self) -> bool {
        matches!(self.cause(), ActivityError::WorkerShutdown)
    }

    /// The innermost cause: for [`ActivityError::Failed`] its last attempt's error, else `self`.
    pub fn cause(&self) -> &ActivityError {
        match self {
            ActivityError::Failed { cause, .. } => cause.cause(),
            other => other,
        }
    }

    /// How many attempts ran, where known.
    pub fn attempts(&self) -> Option<u32> {
        match self {
            ActivityError::Failed { attempts, .. } => Some(*attempts),
            _ => None,
        }
    }

    /// Which timeout ended the activity, if a timeout did.
    pub fn timeout_kind(&self) -> Option<TimeoutKind> {
        match self.cause() {
            ActivityError::Timeout { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// The error's type name as the retry policy matches it.
    pub fn error_type(&self) -> &str {
        match self.cause() {
            ActivityError::Cancelled { .. } => "Cancelled",
            ActivityError::Application { error_type, .. } => error_type,
            ActivityError::Timeout { .. } => "Timeout",
            ActivityError::Failed { .. } => "Failed",
            ActivityError::WorkerShutdown => "WorkerShutdown",
        }
    }

    /// Heartbeat details carried by a timeout or a cancellation, decoded.
    pub fn details<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        let v = match self.cause() {
            ActivityError::Cancelled { details }
            | ActivityError::Timeout { details, .. }
            | ActivityError::Application { details, .. } => details.as_ref(),
            ActivityError::Failed { .. } | ActivityError::WorkerShutdown => None,
        }?;
        serde_json::from_value(v.clone()).ok()
    }
}

impl From<std::io::Error> for ActivityError {
    fn from(e: std::io::Error) -> Self {
        ActivityError::application(format!("io::{:?}", e.kind()), e)
    }
}

impl From<anyhow::Error> for ActivityError {
    fn from(e: anyhow::Error) -> Self {
        match e.downcast::<ActivityError>() {
            Ok(a) => a,
            Err(e) => ActivityError::application("anyhow::Error", format!("{e:#}")),
        }
    }
}

impl From<serde_json::Error> for ActivityError {
    fn from(e: serde_json::Error) -> Self {
        ActivityError::non_retryable("serde_json::Error", e)
    }
}

/// The error of a workflow.
///
/// A workflow that returns [`WorkflowError::Cancelled`] (or an activity's cancellation, through `?`)
/// after a client cancelled it ends `Cancelled`; any other error ends it `Failed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "type", content = "detail", rename_all = "snake_case")]
#[non_exhaustive]
pub enum WorkflowError {
    /// The workflow was cancelled.
    #[error("workflow cancelled")]
    Cancelled,
    /// An activity failed and the workflow passed the failure on.
    #[error(transparent)]
    Activity(#[from] ActivityError),
    /// The workflow's own code failed.
    #[error("{error_type}: {message}")]
    Application {
        /// A short type name.
        error_type: String,
        /// What went wrong.
        message: String,
    },
    /// Replay of the workflow's code no longer matches its recorded history.
    #[error("nondeterminism: {0}")]
    Nondeterminism(String),
}

impl WorkflowError {
    /// An application error with a type name and a message.
    pub fn application(error_type: impl Into<String>, message: impl fmt::Display) -> Self {
        WorkflowError::Application {
            error_type: error_type.into(),
            message: message.to_string(),
        }
    }

    /// True for a cancellation, also an activity's cancellation passed on with `?`.
    pub fn is_cancelled(&self) -> bool {
        match self {
            WorkflowError::Cancelled => true,
            WorkflowError::Activity(a) => a.is_cancelled(),
            _ => false,
        }
    }
}

/// How a child workflow ended, when it did not return a result: what a parent's
/// [`ChildWorkflowHandle`](crate::ChildWorkflowHandle) resolves to. `?` turns it into a
/// [`WorkflowError`]: a cancellation stays [`WorkflowError::Cancelled`], the others become an
/// application error (`ChildWorkflowFailed`, `ChildWorkflowTerminated`,
/// `ChildWorkflowAlreadyStarted`) whose message has the child's id and error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChildWorkflowError {
    /// The child could not start: a workflow with its id exists (running or ended).
    #[error("child workflow `{workflow_id}` was not started: a workflow with this id exists; give `.id(..)` an id of its own")]
    AlreadyStarted {
        /// The child's workflow id.
        workflow_id: String,
    },
    /// The child returned an error, ran past its execution timeout, or could not be called
    /// (its input does not serialize: `InvalidCall`; its result does not deserialize:
    /// `PayloadError`).
    #[error("child workflow `{workflow_id}` failed: {error}")]
    Failed {
        /// The child's workflow id.
        workflow_id: String,
        /// The child's error.
        error: WorkflowError,
    },
    /// The child ended cancelled.
    #[error("child workflow `{workflow_id}` was cancelled")]
    Cancelled {
        /// The child's workflow id.
        workflow_id: String,
    },
    /// The child was terminated (by a client, or by its parent close policy).
    #[error("child workflow `{workflow_id}` was terminated: {reason}")]
    Terminated {
        /// The child's workflow id.
        workflow_id: String,
        /// Why.
        reason: String,
    },
}

impl ChildWorkflowError {
    /// True when the child ended cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, ChildWorkflowError::Cancelled { .. })
    }

    /// The child's workflow id.
    pub fn workflow_id(&self) -> &str {
        match self {
            ChildWorkflowError::AlreadyStarted { workflow_id }
            | ChildWorkflowError::Failed { workflow_id, .. }
            | ChildWorkflowError::Cancelled { workflow_id }
            | ChildWorkflowError::Terminated { workflow_id, .. } => workflow_id,
        }
    }
}

impl From<ChildWorkflowError> for WorkflowError {
    fn from(e: ChildWorkflowError) -> Self {
        let error_type = match &e {
            ChildWorkflowError::Cancelled { .. } => return WorkflowError::Cancelled,
            ChildWorkflowError::AlreadyStarted { .. } => "ChildWorkflowAlreadyStarted",
            ChildWorkflowError::Failed { .. } => "ChildWorkflowFailed",
            ChildWorkflowError::Terminated { .. } => "ChildWorkflowTerminated",
        };
        WorkflowError::application(error_type, e)
    }
}

impl From<anyhow::Error> for WorkflowError {
    fn from(e: anyhow::Error) -> Self {
        match e.downcast::<WorkflowError>() {
            Ok(w) => w,
            Err(e) => WorkflowError::application("anyhow::Error", format!("{e:#}")),
        }
    }
}

impl From<serde_json::Error> for WorkflowError {
    fn from(e: serde_json::Error) -> Self {
        WorkflowError::application("serde_json::Error", e)
    }
}

/// An error of the runtime, the client or a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A workflow with this id already exists.
    #[error("a workflow with id `{0}` already exists; choose another id, describe/await the existing one, or start with `StartOptions`: `id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)` for the running workflow's handle, `id_reuse_policy(WorkflowIdReusePolicy::AllowDuplicate)` for a new run once the last one ended")]
    DuplicateWorkflowId(String),
    /// A start's `WorkflowIdReusePolicy` refused to reuse the id of a workflow that ended.
    #[error("workflow id `{workflow_id}` belongs to a workflow that ended {status}; the id reuse policy `AllowDuplicateFailedOnly` starts a new run only after a failed, cancelled or terminated one. Pass `WorkflowIdReusePolicy::AllowDuplicate` to start it again anyway, or choose another id")]
    WorkflowIdReuseRefused {
        /// The workflow id.
        workflow_id: String,
        /// How its last run ended.
        status: String,
    },
    /// The workflow id has no run with this run id.
    #[error("workflow `{workflow_id}` has no run `{run_id}`; `Client::runs` (CLI: `duraflow describe {workflow_id} --runs`) lists its runs")]
    RunNotFound {
        /// The workflow id.
        workflow_id: String,
        /// The run id asked for.
        run_id: String,
    },
    /// No workflow with this id.
    #[error("no workflow with id `{0}` in this store; check the id (`Client::list` shows the workflows there are)")]
    WorkflowNotFound(String),
    /// The name is not registered.
    #[error("no workflow named `{name}` is registered here (registered: {known}); register it with `.register({name})` or link the crate that defines it")]
    UnknownWorkflowType {
        /// The requested name.
        name: String,
        /// The registered names, comma-separated.
        known: String,
    },
    /// A payload did not (de)serialize as the definition's type.
    #[error("payload does not match `{type_name}`: {message}")]
    Payload {
        /// The Rust type the payload was meant to be.
        type_name: String,
        /// What serde said.
        message: String,
    },
    /// The workflow ended in failure.
    #[error("workflow failed: {0}")]
    WorkflowFailed(WorkflowError),
    /// The workflow was cancelled.
    #[error("workflow cancelled")]
    WorkflowCancelled,
    /// The workflow is held: its code no longer replays its history (or its stored data cannot
    /// be read), so it makes no progress and cannot end, nor act on a cancel, until code that
    /// matches its history is deployed. `result()` and `cancel()` say so instead of waiting.
    #[error(
        "workflow `{workflow_id}` is held and makes no progress: {reason}. Deploy code that \
         matches its history (the workflow then goes on), or end it now with \
         `client.terminate(\"{workflow_id}\", reason)`"
    )]
    WorkflowHeld {
        /// The workflow id.
        workflow_id: String,
        /// Why it is held (the replay mismatch, in words).
        reason: String,
    },
    /// The database cannot be used: corrupt, foreign or newer than this build (at open), or the
    /// store failed in a way of its own (an internal error).
    #[error("store: {0}")]
    Store(String),
    /// A stored value this build cannot read: damaged, or written by a newer duraflow. Nothing was
    /// changed. A worker that meets it in a workflow's data holds the workflow (`describe` shows
    /// why) and tries again later; any other store error leaves the workflow task to be retried
    /// when its lease ends.
    #[error("store: {message}")]
    StoredData {
        /// What could not be read, and where.
        message: String,
        /// Why: the decoder's own error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// The database reported an error.
    #[error("database error: {message}")]
    Database {
        /// What the store was doing, and what went wrong.
        message: String,
        /// The database driver's own error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// An option has a value that cannot work.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// The store can no longer take calls (its writer stopped).
    #[error("the store is closed (its writer stopped); open the store again")]
    Shutdown,
    /// A signal or an update was sent to a workflow that has ended.
    #[error("workflow `{workflow_id}` has ended ({status}); it takes no more signals or updates (queries still work)")]
    WorkflowClosed {
        /// The workflow id.
        workflow_id: String,
        /// How it ended: `completed`, `failed` or `cancelled`.
        status: String,
    },
    /// A message sent by name that the workflow's type does not declare.
    #[error("workflow type `{workflow_type}` declares no {kind} named `{name}` (its {kind}s: {declared}); declare it in `#[workflow({kind}s({name}))]` or check the name")]
    UnknownMessage {
        /// The workflow's registered name.
        workflow_type: String,
        /// `signal`, `query` or `update`.
        kind: &'static str,
        /// The requested name.
        name: String,
        /// The names it declares, comma-separated (`none` if none).
        declared: String,
    },
    /// The workflow refused an update: its validator returned this reason (nothing was recorded),
    /// or, when the workflow saw the accepted update, its validator or its payload failed then
    /// (recorded as the update's outcome).
    #[error("update `{update}` rejected: {reason}")]
    UpdateRejected {
        /// The update's name.
        update: String,
        /// Why, as the validator (or the payload's decoder) said.
        reason: String,
    },
    /// A query could not be answered: no handler, a payload that does not decode, a handler
    /// that panicked or tried to start work, or a history that no longer replays.
    #[error("query `{query}` failed: {reason}")]
    QueryFailed {
        /// The query's name.
        query: String,
        /// Why.
        reason: String,
    },
    /// No schedule with this id.
    #[error("no schedule with id `{0}` in this store; check the id (`Client::list_schedules` shows the schedules there are)")]
    ScheduleNotFound(String),
    /// A schedule with this id already exists.
    #[error("a schedule with id `{0}` already exists; choose another id, or delete the existing one first")]
    DuplicateScheduleId(String),
}

/// The underlying error of a store or stored-data [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl Error {
    /// True for a failure of the store that may pass by itself: the database cannot be reached,
    /// a connection was cut, the server is restarting or shutting a session down, a statement
    /// timed out, a lock was busy, a disk was full or failed. Waiting and trying again may help;
    /// [`WorkflowHandle::result`](crate::WorkflowHandle::result) waits through such errors (up to a
    /// bound), workers retry them with backoff. Any other error is permanent.
    ///
    /// ```
    /// # use duraflow::Error;
    /// assert!(!Error::WorkflowNotFound("w-1".into()).is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Database { source: None, .. } => true,
            Error::Database {
                source: Some(s), ..
            } => crate::store::transient_source(&**s),
            _ => false,
        }
    }

    /// A database error without an underlying one.
    pub(crate) fn database(message: impl Into<String>) -> Error {
        Error::Database {
            message: message.into(),
            source: None,
        }
    }

    /// A database error caused by `source`.
    pub(crate) fn database_from(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error::Database {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }

    /// Stored data that cannot be read, caused by `source` when there is one.
    pub(crate) fn stored_data(message: impl Into<String>, source: Option<BoxError>) -> Error {
        Error::StoredData {
            message: message.into(),
            source,
        }
    }
}

/// Stored data this build cannot read; nothing was changed.
pub(crate) fn corrupt(what: impl std::fmt::Display) -> Error {
    Error::stored_data(
        format!("the database holds data this build cannot read ({what}); it was left untouched"),
        None,
    )
}

/// Like [`corrupt`], keeping the decoder's error as the source.
pub(crate) fn corrupt_from(
    what: impl std::fmt::Display,
    source: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    Error::stored_data(
        format!("the database holds data this build cannot read ({what}); it was left untouched"),
        Some(Box::new(source)),
    )
}

/// A `Result` with the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
