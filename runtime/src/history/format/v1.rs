//! Version 1 of the stored format: frozen mirror types of the public ones, and the conversions.

use super::*;

// ---------------------------------------------------------------------------------------------
// Version 1: frozen. Durations are whole milliseconds (u64); `Cow` lets encoding borrow from the
// public value (no copy of inputs and results) while decoding owns what it reads.

#[derive(Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(super) enum StoredEventV1<'a> {
    WorkflowStarted {
        workflow_type: Cow<'a, str>,
        input: Cow<'a, Value>,
        task_queue: Cow<'a, str>,
        run_id: Cow<'a, str>,
    },
    WorkflowTaskCompleted {
        processed_through: u64,
        task_time_ms: i64,
    },
    ActivityScheduled {
        activity_seq: u64,
        activity_type: Cow<'a, str>,
        input: Cow<'a, Value>,
        options: StoredOptionsV1<'a>,
        task_queue: Cow<'a, str>,
        local: bool,
        cancellation_type: StoredCancellationTypeV1,
    },
    ActivityStarted {
        activity_seq: u64,
        attempt: u32,
        worker: Cow<'a, str>,
    },
    ActivityCompleted {
        activity_seq: u64,
        result: Cow<'a, Value>,
    },
    ActivityFailed {
        activity_seq: u64,
        error: StoredActivityErrorV1<'a>,
    },
    ActivityTimedOut {
        activity_seq: u64,
        error: StoredActivityErrorV1<'a>,
    },
    ActivityCancelRequested {
        activity_seq: u64,
    },
    ActivityCancelled {
        activity_seq: u64,
        details: Option<Cow<'a, Value>>,
    },
    LocalActivityMarker {
        activity_seq: u64,
        result: StoredResultV1<'a>,
    },
    TimerStarted {
        timer_seq: u64,
        fire_at_ms: i64,
    },
    TimerFired {
        timer_seq: u64,
    },
    TimerCancelled {
        timer_seq: u64,
    },
    WorkflowCancelRequested {},
    WorkflowCompleted {
        result: Cow<'a, Value>,
    },
    WorkflowFailed {
        error: StoredWorkflowErrorV1<'a>,
    },
    WorkflowCancelled {},
}

/// A local activity's outcome: serde's form of a `Result`, `{"Ok": ..}` or `{"Err": ..}`.
#[derive(Serialize, Deserialize)]
pub(super) enum StoredResultV1<'a> {
    Ok(Cow<'a, Value>),
    Err(StoredActivityErrorV1<'a>),
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum StoredActivityErrorV1<'a> {
    Cancelled {
        details: Option<Cow<'a, Value>>,
    },
    Application {
        error_type: Cow<'a, str>,
        message: Cow<'a, str>,
        non_retryable: bool,
        details: Option<Cow<'a, Value>>,
    },
    Timeout {
        kind: StoredTimeoutKindV1,
        details: Option<Cow<'a, Value>>,
    },
    Failed {
        activity_type: Cow<'a, str>,
        attempts: u32,
        cause: Box<StoredActivityErrorV1<'a>>,
    },
}

#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum StoredTimeoutKindV1 {
    StartToClose,
    ScheduleToClose,
    ScheduleToStart,
    Heartbeat,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", content = "detail", rename_all = "snake_case")]
pub(super) enum StoredWorkflowErrorV1<'a> {
    Cancelled,
    Activity(StoredActivityErrorV1<'a>),
    Application {
        error_type: Cow<'a, str>,
        message: Cow<'a, str>,
    },
    Nondeterminism(Cow<'a, str>),
}

#[derive(Serialize, Deserialize)]
pub(super) struct StoredOptionsV1<'a> {
    start_to_close_timeout: Option<u64>,
    schedule_to_close_timeout: Option<u64>,
    schedule_to_start_timeout: Option<u64>,
    heartbeat_timeout: Option<u64>,
    retry_policy: StoredRetryPolicyV1<'a>,
    task_queue: Option<Cow<'a, str>>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct StoredRetryPolicyV1<'a> {
    initial_interval: u64,
    backoff_coefficient: f64,
    maximum_interval: Option<u64>,
    maximum_attempts: u32,
    non_retryable_error_types: Cow<'a, [String]>,
}

#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum StoredCancellationTypeV1 {
    TryCancel,
    WaitCancellationCompleted,
    Abandon,
}

// ---------------------------------------------------------------------------------------------
// Version 1 <-> the public types: `From<&public>` for a stored type, `IntoPublic` back.

/// A stored type's conversion to the public type it mirrors. A private trait rather than `From` on
/// the public types: rustc lists every `From` impl of a type in the diagnostics users see (e.g. when
/// their error type does not convert into `ActivityError`), and private types have no place there.
pub(super) trait IntoPublic {
    type Public;
    fn into_public(self) -> Self::Public;
}

/// Whole milliseconds, as version 1 stores a duration (sub-millisecond parts are dropped).
pub(super) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub(super) fn opt_ms(d: Option<Duration>) -> Option<u64> {
    d.map(ms)
}

pub(super) fn from_opt_ms(ms: Option<u64>) -> Option<Duration> {
    ms.map(Duration::from_millis)
}

pub(super) fn borrowed_opt(v: &Option<Value>) -> Option<Cow<'_, Value>> {
    v.as_ref().map(Cow::Borrowed)
}

pub(super) fn owned_opt(v: Option<Cow<'_, Value>>) -> Option<Value> {
    v.map(Cow::into_owned)
}

impl<'a> StoredEventV1<'a> {
    /// The version-1 form of an event; `None` for kinds added later (see `added.rs`).
    pub(super) fn from_public(kind: &'a EventKind) -> Option<Self> {
        use Cow::Borrowed as B;
        Some(match kind {
            EventKind::WorkflowStarted {
                workflow_type,
                input,
                task_queue,
                run_id,
            } => StoredEventV1::WorkflowStarted {
                workflow_type: B(workflow_type),
                input: B(input),
                task_queue: B(task_queue),
                run_id: B(run_id),
            },
            EventKind::WorkflowTaskCompleted {
                processed_through,
                task_time_ms,
            } => StoredEventV1::WorkflowTaskCompleted {
                processed_through: *processed_through,
                task_time_ms: *task_time_ms,
            },
            EventKind::ActivityScheduled {
                activity_seq,
                activity_type,
                input,
                options,
                task_queue,
                local,
                cancellation_type,
            } => StoredEventV1::ActivityScheduled {
                activity_seq: *activity_seq,
                activity_type: B(activity_type),
                input: B(input),
                options: options.into(),
                task_queue: B(task_queue),
                local: *local,
                cancellation_type: (*cancellation_type).into(),
            },
            EventKind::ActivityStarted {
                activity_seq,
                attempt,
                worker,
            } => StoredEventV1::ActivityStarted {
                activity_seq: *activity_seq,
                attempt: *attempt,
                worker: B(worker),
            },
            EventKind::ActivityCompleted {
                activity_seq,
                result,
            } => StoredEventV1::ActivityCompleted {
                activity_seq: *activity_seq,
                result: B(result),
            },
            EventKind::ActivityFailed {
                activity_seq,
                error,
            } => StoredEventV1::ActivityFailed {
                activity_seq: *activity_seq,
                error: error.into(),
            },
            EventKind::ActivityTimedOut {
                activity_seq,
                error,
            } => StoredEventV1::ActivityTimedOut {
                activity_seq: *activity_seq,
                error: error.into(),
            },
            EventKind::ActivityCancelRequested { activity_seq } => {
                StoredEventV1::ActivityCancelRequested {
                    activity_seq: *activity_seq,
                }
            }
            EventKind::ActivityCancelled {
                activity_seq,
                details,
            } => StoredEventV1::ActivityCancelled {
                activity_seq: *activity_seq,
                details: borrowed_opt(details),
            },
            EventKind::LocalActivityMarker {
                activity_seq,
                result,
            } => StoredEventV1::LocalActivityMarker {
                activity_seq: *activity_seq,
                result: match result {
                    Ok(v) => StoredResultV1::Ok(B(v)),
                    Err(e) => StoredResultV1::Err(e.into()),
                },
            },
            EventKind::TimerStarted {
                timer_seq,
                fire_at_ms,
            } => StoredEventV1::TimerStarted {
                timer_seq: *timer_seq,
                fire_at_ms: *fire_at_ms,
            },
            EventKind::TimerFired { timer_seq } => StoredEventV1::TimerFired {
                timer_seq: *timer_seq,
            },
            EventKind::TimerCancelled { timer_seq } => StoredEventV1::TimerCancelled {
                timer_seq: *timer_seq,
            },
            EventKind::WorkflowCancelRequested {} => StoredEventV1::WorkflowCancelRequested {},
            EventKind::WorkflowCompleted { result } => {
                StoredEventV1::WorkflowCompleted { result: B(result) }
            }
            EventKind::WorkflowFailed { error } => StoredEventV1::WorkflowFailed {
                error: error.into(),
            },
            EventKind::WorkflowCancelled {} => StoredEventV1::WorkflowCancelled {},
            EventKind::PatchMarker { .. } | EventKind::SideEffectMarker { .. } => return None,
            EventKind::SignalReceived { .. }
            | EventKind::UpdateAccepted { .. }
            | EventKind::UpdateCompleted { .. }
            | EventKind::WorkflowContinuedAsNew { .. }
            | EventKind::RunContinued { .. }
            | EventKind::WorkflowReset { .. } => return None,
            EventKind::ChildWorkflowInitiated { .. }
            | EventKind::ChildWorkflowStarted { .. }
            | EventKind::ChildWorkflowStartFailed { .. }
            | EventKind::ChildWorkflowCompleted { .. }
            | EventKind::ChildWorkflowFailed { .. }
            | EventKind::ChildWorkflowCancelled { .. }
            | EventKind::ChildWorkflowTerminated { .. }
            | EventKind::ChildWorkflowCancelRequested { .. } => return None,
        })
    }
}

impl IntoPublic for StoredEventV1<'_> {
    type Public = EventKind;
    fn into_public(self) -> EventKind {
        match self {
            StoredEventV1::WorkflowStarted {
                workflow_type,
                input,
                task_queue,
                run_id,
            } => EventKind::WorkflowStarted {
                workflow_type: workflow_type.into_owned(),
                input: input.into_owned(),
                task_queue: task_queue.into_owned(),
                run_id: run_id.into_owned(),
            },
            StoredEventV1::WorkflowTaskCompleted {
                processed_through,
                task_time_ms,
            } => EventKind::WorkflowTaskCompleted {
                processed_through,
                task_time_ms,
            },
            StoredEventV1::ActivityScheduled {
                activity_seq,
                activity_type,
                input,
                options,
                task_queue,
                local,
                cancellation_type,
            } => EventKind::ActivityScheduled {
                activity_seq,
                activity_type: activity_type.into_owned(),
                input: input.into_owned(),
                options: options.into_public(),
                task_queue: task_queue.into_owned(),
                local,
                cancellation_type: cancellation_type.into_public(),
            },
            StoredEventV1::ActivityStarted {
                activity_seq,
                attempt,
                worker,
            } => EventKind::ActivityStarted {
                activity_seq,
                attempt,
                worker: worker.into_owned(),
            },
            StoredEventV1::ActivityCompleted {
                activity_seq,
                result,
            } => EventKind::ActivityCompleted {
                activity_seq,
                result: result.into_owned(),
            },
            StoredEventV1::ActivityFailed {
                activity_seq,
                error,
            } => EventKind::ActivityFailed {
                activity_seq,
                error: error.into_public(),
            },
            StoredEventV1::ActivityTimedOut {
                activity_seq,
                error,
            } => EventKind::ActivityTimedOut {
                activity_seq,
                error: error.into_public(),
            },
            StoredEventV1::ActivityCancelRequested { activity_seq } => {
                EventKind::ActivityCancelRequested { activity_seq }
            }
            StoredEventV1::ActivityCancelled {
                activity_seq,
                details,
            } => EventKind::ActivityCancelled {
                activity_seq,
                details: owned_opt(details),
            },
            StoredEventV1::LocalActivityMarker {
                activity_seq,
                result,
            } => EventKind::LocalActivityMarker {
                activity_seq,
                result: match result {
                    StoredResultV1::Ok(v) => Ok(v.into_owned()),
                    StoredResultV1::Err(e) => Err(e.into_public()),
                },
            },
            StoredEventV1::TimerStarted {
                timer_seq,
                fire_at_ms,
            } => EventKind::TimerStarted {
                timer_seq,
                fire_at_ms,
            },
            StoredEventV1::TimerFired { timer_seq } => EventKind::TimerFired { timer_seq },
            StoredEventV1::TimerCancelled { timer_seq } => EventKind::TimerCancelled { timer_seq },
            StoredEventV1::WorkflowCancelRequested {} => EventKind::WorkflowCancelRequested {},
            StoredEventV1::WorkflowCompleted { result } => EventKind::WorkflowCompleted {
                result: result.into_owned(),
            },
            StoredEventV1::WorkflowFailed { error } => EventKind::WorkflowFailed {
                error: error.into_public(),
            },
            StoredEventV1::WorkflowCancelled {} => EventKind::WorkflowCancelled {},
        }
    }
}

impl<'a> From<&'a ActivityError> for StoredActivityErrorV1<'a> {
    fn from(error: &'a ActivityError) -> Self {
        match error {
            ActivityError::Cancelled { details } => StoredActivityErrorV1::Cancelled {
                details: borrowed_opt(details),
            },
            ActivityError::Application {
                error_type,
                message,
                non_retryable,
                details,
            } => StoredActivityErrorV1::Application {
                error_type: Cow::Borrowed(error_type),
                message: Cow::Borrowed(message),
                non_retryable: *non_retryable,
                details: borrowed_opt(details),
            },
            ActivityError::Timeout { kind, details } => StoredActivityErrorV1::Timeout {
                kind: (*kind).into(),
                details: borrowed_opt(details),
            },
            ActivityError::Failed {
                activity_type,
                attempts,
                cause,
            } => StoredActivityErrorV1::Failed {
                activity_type: Cow::Borrowed(activity_type),
                attempts: *attempts,
                cause: Box::new(cause.as_ref().into()),
            },
            // Never stored as an outcome by the runtime (an attempt it ends is retried), but an
            // activity may return it from elsewhere: version 1 has no variant of its own for it,
            // so it is stored as the application error it reads back as.
            ActivityError::WorkerShutdown => StoredActivityErrorV1::Application {
                error_type: Cow::Borrowed("WorkerShutdown"),
                message: Cow::Borrowed("the worker is shutting down"),
                non_retryable: false,
                details: None,
            },
        }
    }
}

impl IntoPublic for StoredActivityErrorV1<'_> {
    type Public = ActivityError;
    fn into_public(self) -> ActivityError {
        match self {
            StoredActivityErrorV1::Cancelled { details } => ActivityError::Cancelled {
                details: owned_opt(details),
            },
            StoredActivityErrorV1::Application {
                error_type,
                message,
                non_retryable,
                details,
            } => ActivityError::Application {
                error_type: error_type.into_owned(),
                message: message.into_owned(),
                non_retryable,
                details: owned_opt(details),
            },
            StoredActivityErrorV1::Timeout { kind, details } => ActivityError::Timeout {
                kind: kind.into_public(),
                details: owned_opt(details),
            },
            StoredActivityErrorV1::Failed {
                activity_type,
                attempts,
                cause,
            } => ActivityError::Failed {
                activity_type: activity_type.into_owned(),
                attempts,
                cause: Box::new((*cause).into_public()),
            },
        }
    }
}

impl From<TimeoutKind> for StoredTimeoutKindV1 {
    fn from(kind: TimeoutKind) -> Self {
        match kind {
            TimeoutKind::StartToClose => StoredTimeoutKindV1::StartToClose,
            TimeoutKind::ScheduleToClose => StoredTimeoutKindV1::ScheduleToClose,
            TimeoutKind::ScheduleToStart => StoredTimeoutKindV1::ScheduleToStart,
            TimeoutKind::Heartbeat => StoredTimeoutKindV1::Heartbeat,
        }
    }
}

impl IntoPublic for StoredTimeoutKindV1 {
    type Public = TimeoutKind;
    fn into_public(self) -> TimeoutKind {
        match self {
            StoredTimeoutKindV1::StartToClose => TimeoutKind::StartToClose,
            StoredTimeoutKindV1::ScheduleToClose => TimeoutKind::ScheduleToClose,
            StoredTimeoutKindV1::ScheduleToStart => TimeoutKind::ScheduleToStart,
            StoredTimeoutKindV1::Heartbeat => TimeoutKind::Heartbeat,
        }
    }
}

impl<'a> From<&'a WorkflowError> for StoredWorkflowErrorV1<'a> {
    fn from(error: &'a WorkflowError) -> Self {
        match error {
            WorkflowError::Cancelled => StoredWorkflowErrorV1::Cancelled,
            WorkflowError::Activity(e) => StoredWorkflowErrorV1::Activity(e.into()),
            WorkflowError::Application {
                error_type,
                message,
            } => StoredWorkflowErrorV1::Application {
                error_type: Cow::Borrowed(error_type),
                message: Cow::Borrowed(message),
            },
            WorkflowError::Nondeterminism(what) => {
                StoredWorkflowErrorV1::Nondeterminism(Cow::Borrowed(what))
            }
        }
    }
}

impl IntoPublic for StoredWorkflowErrorV1<'_> {
    type Public = WorkflowError;
    fn into_public(self) -> WorkflowError {
        match self {
            StoredWorkflowErrorV1::Cancelled => WorkflowError::Cancelled,
            StoredWorkflowErrorV1::Activity(e) => WorkflowError::Activity(e.into_public()),
            StoredWorkflowErrorV1::Application {
                error_type,
                message,
            } => WorkflowError::Application {
                error_type: error_type.into_owned(),
                message: message.into_owned(),
            },
            StoredWorkflowErrorV1::Nondeterminism(what) => {
                WorkflowError::Nondeterminism(what.into_owned())
            }
        }
    }
}

impl<'a> From<&'a ActivityOptions> for StoredOptionsV1<'a> {
    fn from(o: &'a ActivityOptions) -> Self {
        StoredOptionsV1 {
            start_to_close_timeout: opt_ms(o.start_to_close_timeout),
            schedule_to_close_timeout: opt_ms(o.schedule_to_close_timeout),
            schedule_to_start_timeout: opt_ms(o.schedule_to_start_timeout),
            heartbeat_timeout: opt_ms(o.heartbeat_timeout),
            retry_policy: (&o.retry_policy).into(),
            task_queue: o.task_queue.as_deref().map(Cow::Borrowed),
        }
    }
}

impl IntoPublic for StoredOptionsV1<'_> {
    type Public = ActivityOptions;
    fn into_public(self) -> ActivityOptions {
        ActivityOptions {
            start_to_close_timeout: from_opt_ms(self.start_to_close_timeout),
            schedule_to_close_timeout: from_opt_ms(self.schedule_to_close_timeout),
            schedule_to_start_timeout: from_opt_ms(self.schedule_to_start_timeout),
            heartbeat_timeout: from_opt_ms(self.heartbeat_timeout),
            retry_policy: self.retry_policy.into_public(),
            task_queue: self.task_queue.map(Cow::into_owned),
        }
    }
}

impl<'a> From<&'a RetryPolicy> for StoredRetryPolicyV1<'a> {
    fn from(p: &'a RetryPolicy) -> Self {
        StoredRetryPolicyV1 {
            initial_interval: ms(p.initial_interval),
            backoff_coefficient: p.backoff_coefficient,
            maximum_interval: opt_ms(p.maximum_interval),
            maximum_attempts: p.maximum_attempts,
            non_retryable_error_types: Cow::Borrowed(&p.non_retryable_error_types),
        }
    }
}

impl IntoPublic for StoredRetryPolicyV1<'_> {
    type Public = RetryPolicy;
    fn into_public(self) -> RetryPolicy {
        RetryPolicy {
            initial_interval: Duration::from_millis(self.initial_interval),
            backoff_coefficient: self.backoff_coefficient,
            maximum_interval: from_opt_ms(self.maximum_interval),
            maximum_attempts: self.maximum_attempts,
            non_retryable_error_types: self.non_retryable_error_types.into_owned(),
        }
    }
}

impl From<CancellationType> for StoredCancellationTypeV1 {
    fn from(t: CancellationType) -> Self {
        match t {
            CancellationType::TryCancel => StoredCancellationTypeV1::TryCancel,
            CancellationType::WaitCancellationCompleted => {
                StoredCancellationTypeV1::WaitCancellationCompleted
            }
            CancellationType::Abandon => StoredCancellationTypeV1::Abandon,
        }
    }
}

impl IntoPublic for StoredCancellationTypeV1 {
    type Public = CancellationType;
    fn into_public(self) -> CancellationType {
        match self {
            StoredCancellationTypeV1::TryCancel => CancellationType::TryCancel,
            StoredCancellationTypeV1::WaitCancellationCompleted => {
                CancellationType::WaitCancellationCompleted
            }
            StoredCancellationTypeV1::Abandon => CancellationType::Abandon,
        }
    }
}
